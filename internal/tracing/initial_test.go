package tracing

import (
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestInitial: a provider or propagator installed before this package's
// init (by another package's) counts as installed; OpenTelemetry's own
// defaults do not. (That they are recognised is TestOffStartsNothing.)
func TestInitial(t *testing.T) {
	for _, v := range []any{sdktrace.NewTracerProvider(), propagation.TraceContext{}, nil} {
		if initial(v) != nil {
			t.Errorf("initial(%T) is not nil: it would count as no provider installed", v)
		}
	}
}
