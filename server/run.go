package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/runlog"
	"github.com/modrun/modrun/internal/tracing"
)

// Run statuses and triggers.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"

	TriggerAPI      = "api"
	TriggerSchedule = "schedule"
)

// Run is one run, as GET /v1/runs/{id} shows it and the history keeps it.
type Run struct {
	ID      string          `json:"id"`
	Package string          `json:"package"`
	Version string          `json:"version"`
	Target  string          `json:"target"`
	App     string          `json:"app"`
	Trigger string          `json:"trigger"`
	Status  string          `json:"status"`
	Server  string          `json:"server,omitempty"` // the name of the server that ran it
	Result  json.RawMessage `json:"result,omitempty"`
	// ResultTruncated says why the history holds no result: it was over
	// MaxHistoryResult bytes.
	ResultTruncated string     `json:"resultTruncated,omitempty"`
	Error           *ErrorInfo `json:"error,omitempty"`
	CreatedAt       time.Time  `json:"createdAt"`
	StartedAt       *time.Time `json:"startedAt,omitempty"`
	FinishedAt      *time.Time `json:"finishedAt,omitempty"`
	DurationMs      *int64     `json:"durationMs,omitempty"`
	// Args are what the caller passed (the function's arguments, or a
	// query's params first), redacted; kept up to MaxHistoryArgs bytes.
	Args json.RawMessage `json:"args,omitempty"`
	// Log is the run's own log lines (console.*, token requests,
	// retries), redacted, at info and above whatever the server's log
	// level, with Options.RunLogs.
	Log []RunLogLine `json:"log,omitempty"`
}

// RunLogLine is one line of a run's log.
type RunLogLine = runlog.Line

// RunLogs keeps each run's own log lines for its history entry: its
// Handler wraps the logger the instances log to (modrun.Options.Logger),
// and Options.RunLogs names it to the server. Records at info and above
// are built for it whatever the level of the handler it wraps.
type RunLogs = runlog.Collector

// NewRunLogs returns a RunLogs for Options.RunLogs.
func NewRunLogs() *RunLogs { return runlog.NewCollector() }

// MaxHistoryArgs is the most bytes of a run's arguments the history keeps.
const MaxHistoryArgs = 4 << 10

// ErrorInfo is the error of a failed run or request.
type ErrorInfo struct {
	Message    string `json:"message"`
	Module     string `json:"module,omitempty"`
	StatusCode int    `json:"statusCode,omitempty"`
	// status is the HTTP status the API answers with.
	status int
}

// runIDs makes IDs that sort by creation and are unique across the
// servers sharing a store: the time in microseconds, a counter, and this
// process's random tag, all in fixed-width hex.
type runIDs struct {
	mu   sync.Mutex
	tag  string
	last int64
	n    uint32
}

func newRunIDs() runIDs {
	var b [3]byte
	rand.Read(b[:])
	return runIDs{tag: hex.EncodeToString(b[:])}
}

func (g *runIDs) next() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now().UnixMicro()
	if now <= g.last {
		now = g.last
		g.n++
	} else {
		g.last, g.n = now, 0
	}
	// "r%013x%04x%s", without fmt's reflection on every run.
	b := make([]byte, 0, 1+13+4+len(g.tag))
	b = appendHex(append(b, 'r'), uint64(now), 13)
	b = appendHex(b, uint64(g.n&0xffff), 4)
	return string(append(b, g.tag...))
}

// appendHex appends v in lower-case hex, zero-padded to width digits.
func appendHex(b []byte, v uint64, width int) []byte {
	var digits [16]byte
	d := strconv.AppendUint(digits[:0], v, 16)
	for range width - len(d) {
		b = append(b, '0')
	}
	return append(b, d...)
}

// job is a run to execute.
type job struct {
	run     *Run
	pkg     *engine.Package
	args    []json.RawMessage
	timeout time.Duration
}

// submit is the one way a run starts, whatever its trigger (the API,
// the queue, a schedule): a place among the slots or in the queue (429,
// or 503 while shutting down, otherwise), an entry in the history, then
// the run. With sync it runs on ctx and returns the finished run; else it
// runs in the background on ctx, then calls done (if not nil), and
// submit returns at once (the run's ID is set: j.run.ID).
func (s *Server) submit(ctx context.Context, j *job, sync bool, done func()) (Run, error) {
	wait, release, err := s.admit()
	if err != nil {
		return Run{}, err
	}
	// A queued run's entry is written at once: its caller gets only
	// its id, and may ask after it from another server.
	s.history.add(j.run, !sync)
	if sync {
		return s.execute(ctx, j, wait, release), nil
	}
	go func() {
		if done != nil {
			defer done()
		}
		s.execute(ctx, j, wait, release)
	}()
	return Run{}, nil
}

// admit reserves a place for a run: a slot if one is free, else a place
// in the queue. It fails with 429 when the queue is full and 503 while
// shutting down. release must be called once the run is over.
func (s *Server) admit() (wait func(context.Context) error, release func(), err error) {
	if s.draining.Load() {
		return nil, nil, &apiError{http.StatusServiceUnavailable, ErrShuttingDown.Error()}
	}
	select {
	case s.slots <- struct{}{}:
		s.runs.Add(1)
		return func(context.Context) error { return nil }, s.releaseSlot, nil
	default:
	}
	if s.opts.Queue < 0 || s.waiting.Add(1) > int64(s.opts.Queue) {
		if s.opts.Queue >= 0 {
			s.waiting.Add(-1)
		}
		s.metrics.rejected.Inc()
		return nil, nil, &apiError{http.StatusTooManyRequests, fmt.Sprintf("too many runs: %d running, %d queued; retry later", s.opts.MaxConcurrent, s.opts.Queue)}
	}
	s.runs.Add(1)
	acquired := false
	wait = func(ctx context.Context) error {
		defer s.waiting.Add(-1)
		select {
		case s.slots <- struct{}{}:
			acquired = true
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	release = func() {
		if acquired {
			<-s.slots
		}
		s.runs.Done()
	}
	return wait, release, nil
}

func (s *Server) releaseSlot() {
	<-s.slots
	s.runs.Done()
}

// execute runs j: it waits for a slot, calls the target on an instance of
// the pool, and records the outcome in the history. ctx bounds the wait
// and the call (with j.timeout); the server's base context ends both at
// the shutdown timeout. It returns the finished run: a caller answers
// with it, not with what the history holds by then (newer runs may have
// pushed it out).
func (s *Server) execute(ctx context.Context, j *job, wait func(context.Context) error, release func()) Run {
	defer release()
	r := j.run
	ctx, cancel := mergeCancel(ctx, s.base)
	defer cancel()
	if j.timeout > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeoutCause(ctx, j.timeout, engine.ErrDeadline)
		defer c()
	}
	var span trace.Span = noop.Span{}
	if tracing.On() {
		ctx, span = tracing.Tracer().Start(ctx, "run "+r.Package+" "+r.Target, trace.WithAttributes(
			attribute.String("modrun.package", r.Package), attribute.String("modrun.version", r.Version),
			attribute.String("modrun.target", r.Target), attribute.String("modrun.app", r.App),
			attribute.String("modrun.run_id", r.ID), attribute.String("modrun.trigger", r.Trigger)))
	}
	defer span.End()
	// The span says how the run ended, never why in words: an error's
	// message may quote an upstream answer.
	traced := func(run Run) Run {
		span.SetAttributes(attribute.String("modrun.status", run.Status))
		if run.Status != StatusSucceeded {
			span.SetStatus(codes.Error, "run "+run.Status)
		}
		return run
	}
	// The run's log lines: the instance logs with ctx, which names the run.
	if s.opts.RunLogs != nil {
		ctx = runlog.WithID(ctx, r.ID)
		s.opts.RunLogs.Watch(r.ID)
	}
	if err := wait(ctx); err != nil {
		return traced(s.finish(r, nil, err, nil))
	}
	inst, done, err := s.instance(j.pkg, r.App)
	if err != nil {
		return traced(s.finish(r, nil, err, nil))
	}
	s.history.update(r, func(r *Run) { r.Args = callArgs(j.args, inst.Redact) })
	defer done()
	now := time.Now()
	s.history.update(r, func(r *Run) {
		r.Status = StatusRunning
		r.StartedAt = &now
	})
	s.metrics.inFlight.Inc()
	out, err := inst.Call(ctx, r.Target, j.args...)
	s.metrics.inFlight.Dec()
	if err != nil && errors.Is(context.Cause(ctx), ErrShuttingDown) {
		err = fmt.Errorf("%s: %w", r.Target, ErrShuttingDown)
	}
	return traced(s.finish(r, out, err, inst))
}

// finish records a run's outcome, redacted by the instance that made it,
// and returns a copy of the finished run.
func (s *Server) finish(r *Run, out json.RawMessage, err error, inst engine.Instance) Run {
	now := time.Now()
	redact := func(s string) string { return s }
	if inst != nil {
		redact = inst.Redact
	}
	var info *ErrorInfo
	if err != nil {
		info = errorInfo(err, redact)
	}
	var lines []RunLogLine
	if s.opts.RunLogs != nil {
		lines = s.opts.RunLogs.End(r.ID)
		for i := range lines {
			lines[i].Message, lines[i].Attrs = redact(lines[i].Message), redact(lines[i].Attrs)
		}
	}
	var final Run
	s.history.update(r, func(r *Run) {
		// The caller gets the run whole; the history keeps its result
		// only up to MaxHistoryResult.
		defer func() {
			final = *r
			truncateResult(r)
		}()
		r.FinishedAt = &now
		r.Log = lines
		if r.StartedAt != nil {
			d := now.Sub(*r.StartedAt).Milliseconds()
			r.DurationMs = &d
		}
		if err != nil {
			r.Status, r.Error = StatusFailed, info
			return
		}
		if len(out) == 0 {
			out = json.RawMessage("null") // undefined: null, as runner run prints it
		}
		r.Status, r.Result = StatusSucceeded, json.RawMessage(redact(string(out)))
	})
	outcome := StatusSucceeded
	if err != nil {
		outcome = StatusFailed
		if info.status == http.StatusGatewayTimeout {
			outcome = "timeout"
		}
	}
	s.metrics.runs.WithLabelValues(r.Package, r.Target, outcome).Inc()
	if r.StartedAt != nil {
		s.metrics.duration.WithLabelValues(r.Package, r.Target).Observe(now.Sub(*r.StartedAt).Seconds())
	}
	return final
}

// callArgs is a run's arguments as one JSON array, redacted, or nil past
// MaxHistoryArgs bytes.
func callArgs(args []json.RawMessage, redact func(string) string) json.RawMessage {
	if args == nil {
		args = []json.RawMessage{}
	}
	b, err := json.Marshal(args)
	if err != nil || len(b) > MaxHistoryArgs {
		return nil
	}
	return json.RawMessage(redact(string(b)))
}

// errorInfo turns a run's error into what the API answers: the status
// (504 for a deadline, 503 for a shutdown, 500 for a failed run, or the
// apiError's), the message redacted, and for a failed query its module
// and upstream status.
func errorInfo(err error, redact func(string) string) *ErrorInfo {
	info := &ErrorInfo{Message: redact(err.Error()), status: http.StatusInternalServerError}
	var ae *apiError
	var re *engine.ResponseError
	switch {
	case errors.As(err, &ae):
		info.status = ae.status
	case errors.Is(err, ErrShuttingDown), errors.Is(err, engine.ErrUnavailable):
		info.status = http.StatusServiceUnavailable
	case errors.Is(err, engine.ErrDeadline), errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &re):
		info.status = http.StatusGatewayTimeout
	}
	if errors.As(err, &re) {
		info.Module = re.Module
		if re.Response != nil {
			info.StatusCode = re.Response.StatusCode
		}
	}
	return info
}

// mergeCancel returns a context of a that also ends, with its cause, when
// b does.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(a)
	stop := context.AfterFunc(b, func() { cancel(context.Cause(b)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// parseTimeout reads a request's "timeout": a Go duration, or a number of
// seconds.
func parseTimeout(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("timeout %q: want a positive duration such as \"5s\"", s)
		}
		return d, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil || secs <= 0 {
		return 0, fmt.Errorf("timeout: want a duration such as \"5s\"")
	}
	return time.Duration(secs * float64(time.Second)), nil
}
