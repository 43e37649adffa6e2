package tracing_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/modrun/modrun/internal/tracing"
)

// A provider installed in OpenTelemetry's global state cannot be
// uninstalled, and the other tests install one: the test of tracing off
// runs in a process of its own (this test binary again), whatever ran
// before it (-count, -run).
func TestOffStartsNothing(t *testing.T) {
	if os.Getenv("MODRUN_TRACING_OFF_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOffStartsNothing$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "MODRUN_TRACING_OFF_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestOffStartsNothing") {
			t.Fatalf("the test in a fresh process: %v\n%s", err, out)
		}
		return
	}
	if tracing.On() {
		t.Fatal("On before any provider or propagator was installed")
	}
	req, err := http.NewRequest("GET", "http://api.example/path?token=secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	end := tracing.StartClient(req, "query q", attribute.String("modrun.module", "q"))
	end(200, nil)
	if len(req.Header) != 0 {
		t.Errorf("tracing off put headers on the request: %v", req.Header)
	}
	if tp := tracing.TraceParent(context.Background()); tp != "" {
		t.Errorf("TraceParent with tracing off = %q, want empty", tp)
	}
	if n := testing.AllocsPerRun(100, func() {
		tracing.StartClient(req, "query q", attribute.String("modrun.module", "q"))(200, nil)
	}); n != 0 {
		t.Errorf("StartClient with tracing off allocates %v times, want 0", n)
	}
}

func TestOnRecordsClientSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if !tracing.On() {
		t.Fatal("On is false with a provider installed")
	}
	req, err := http.NewRequest("POST", "http://api.example:8443/token?code=secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	end := tracing.StartClient(req, "query refreshAPI", attribute.String("modrun.module", "refreshAPI"))
	if req.Header.Get("traceparent") == "" {
		t.Error("no traceparent on the outgoing request")
	}
	end(503, nil)
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans recorded, want 1", len(spans))
	}
	s := spans[0]
	if s.Name != "query refreshAPI" {
		t.Errorf("span name %q", s.Name)
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		got[kv.Key] = kv.Value
	}
	for k, want := range map[attribute.Key]string{
		"modrun.module": "refreshAPI", "http.request.method": "POST", "server.address": "api.example",
	} {
		if got[k].AsString() != want {
			t.Errorf("attribute %s = %q, want %q", k, got[k].AsString(), want)
		}
	}
	if got["server.port"].AsInt64() != 8443 || got["http.response.status_code"].AsInt64() != 503 {
		t.Errorf("port %v, status %v", got["server.port"], got["http.response.status_code"])
	}
	for k, v := range got {
		if s := v.String(); strings.Contains(s, "secret") {
			t.Errorf("attribute %s carries the URL's query: %q", k, s)
		}
	}
}

// On tells whether a provider or a propagator was installed in
// OpenTelemetry's global state (Setup does both); until then modrun builds
// no spans at all.
func ExampleOn() {
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	fmt.Println(tracing.On())
	// Output: true
}
