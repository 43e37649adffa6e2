package server

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/oauth2"
)

// metrics are the server's Prometheus metrics (DESIGN §11), in a registry
// of its own: two servers in one process do not share them.
type metrics struct {
	onRefreshFailure func() // nil: none
	reg              *prometheus.Registry
	runs             *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	queries          *prometheus.CounterVec
	tokens           *prometheus.CounterVec
	refreshFailures  *prometheus.CounterVec
	inFlight         prometheus.Gauge
	rejected         prometheus.Counter
	skipped          *prometheus.CounterVec
	schedules        *prometheus.CounterVec
	restarts         *prometheus.CounterVec
	instances        prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modrun_runs_total", Help: "Runs finished, by package, target and outcome (succeeded, failed, timeout).",
		}, []string{"package", "target", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "modrun_run_duration_seconds", Help: "How long runs took, from start to finish.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"package", "target"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modrun_queries_total", Help: "Query module requests, by package, module and HTTP status (0: no response).",
		}, []string{"package", "module", "code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modrun_oauth2_token_requests_total", Help: "OAuth2 token requests, by package, credential, grant and outcome.",
		}, []string{"package", "credential", "grant", "outcome"}),
		refreshFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modrun_oauth2_refresh_failures_total", Help: "Failed OAuth2 token requests (after their retries), by package, credential, app and reason: an RFC 6749 error code (invalid_grant, invalid_client, …), http_429, http_5xx, http_4xx, network or other.",
		}, []string{"package", "credential", "app", "reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modrun_runs_in_flight", Help: "Runs executing now.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modrun_runs_rejected_total", Help: "Runs refused with 429 because the queue was full.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modrun_schedule_skipped_total", Help: "Scheduled runs skipped because the previous run of the schedule was still going.",
		}, []string{"package", "schedule"}),
		schedules: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modrun_schedule_runs_total", Help: "Scheduled runs started.",
		}, []string{"package", "schedule"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modrun_worker_restarts_total", Help: "Worker processes replaced, by reason (memory, deadline, crash).",
		}, []string{"reason"}),
		instances: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modrun_instances", Help: "Instances (a package version bound to an app) held; idle ones are released after --idle-instance.",
		}),
	}
	m.reg.MustRegister(m.runs, m.duration, m.queries, m.tokens, m.refreshFailures, m.inFlight, m.rejected, m.skipped, m.schedules, m.restarts, m.instances,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observer counts the queries and token requests of one package's
// instances for app.
func (m *metrics) observer(pkg, app string) engine.Observer {
	return &queryObserver{m: m, pkg: pkg, app: app}
}

type queryObserver struct {
	m        *metrics
	pkg, app string
}

func (o *queryObserver) Query(module string, status int) {
	o.m.queries.WithLabelValues(o.pkg, module, strconv.Itoa(status)).Inc()
}

// TokenRequest counts one OAuth2 token request (engine.TokenObserver).
// A failure's outcome is "error:REASON" (oauth2.FailureReason): it counts
// as an error request and as a refresh failure of its app.
func (o *queryObserver) TokenRequest(credential, grant, outcome string) {
	if reason, failed := strings.CutPrefix(outcome, "error:"); failed {
		outcome = "error"
		o.m.refreshFailures.WithLabelValues(o.pkg, credential, o.app, reason).Inc()
		if o.m.onRefreshFailure != nil {
			o.m.onRefreshFailure()
		}
	}
	o.m.tokens.WithLabelValues(o.pkg, credential, grant, outcome).Inc()
}

func (m *metrics) inFlightValue() float64 {
	var d dto.Metric
	m.inFlight.Write(&d)
	return d.GetGauge().GetValue()
}

// credentialCollector reads the OAuth2 credentials' health from the store
// at each scrape (DESIGN §18): state, access and refresh token expiry.
type credentialCollector struct {
	st                      engine.Store
	state, expiry, rtExpiry *prometheus.Desc
}

func newCredentialCollector(st engine.Store) *credentialCollector {
	labels := []string{"package", "credential", "app"}
	return &credentialCollector{st: st,
		state: prometheus.NewDesc("modrun_oauth2_credential_state", "1 for the credential's current state in the app (none, fresh, expiring, refresh_failing, needs_login), 0 for the others.",
			append(labels, "state"), nil),
		expiry:   prometheus.NewDesc("modrun_oauth2_token_expiry_timestamp_seconds", "When the credential's access token expires (only where it is known).", labels, nil),
		rtExpiry: prometheus.NewDesc("modrun_oauth2_refresh_token_expiry_timestamp_seconds", "When the credential's refresh token expires (only where it is known).", labels, nil),
	}
}

func (c *credentialCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.expiry
	ch <- c.rtExpiry
}

func (c *credentialCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	all, err := oauth2.Credentials(ctx, c.st, nil)
	if err != nil {
		return // the store is down: /readyz says so
	}
	for _, h := range all {
		for _, st := range oauth2.States {
			v := 0.0
			if st == h.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, h.Package, h.Credential, h.App, st)
		}
		if h.ExpiresAt != nil {
			ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(*h.ExpiresAt)/1000, h.Package, h.Credential, h.App)
		}
		if h.RefreshTokenExpiresAt != nil {
			ch <- prometheus.MustNewConstMetric(c.rtExpiry, prometheus.GaugeValue, float64(*h.RefreshTokenExpiresAt)/1000, h.Package, h.Credential, h.App)
		}
	}
}
