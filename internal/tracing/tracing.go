// Package tracing is modrun's OpenTelemetry tracing (DESIGN §20): Setup
// exports spans over OTLP/HTTP when the environment asks for it, and the
// helpers start the spans the server, the query modules and the OAuth2
// client make. With tracing off (no endpoint configured) the tracer is
// OpenTelemetry's no-op and nothing is injected into requests.
//
// No span attribute ever holds a URL's query, a header, a body or an
// error message: those may carry secrets. Spans name hosts, methods,
// status codes, packages, targets, modules and credentials.
package tracing

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Enabled reports whether the environment configures an exporter:
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, and
// not OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs, when Enabled, an OTLP/HTTP exporter (configured by the
// standard OTEL_EXPORTER_OTLP_* variables) behind a batching tracer
// provider for service, and the W3C trace-context propagator. shutdown
// flushes and stops it; without tracing it does nothing.
func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	if !Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp.Shutdown, nil
}

// Tracer is modrun's tracer from the global provider.
func Tracer() trace.Tracer { return otel.Tracer("github.com/modrun/modrun") }

// The global provider and propagator as OpenTelemetry starts them: no-ops
// that delegate to ones installed later. Each is a single value, replaced
// in the global state when one is installed. (nil if one was installed
// before this package's init, by another package's init.)
var (
	unsetProvider   = initial(otel.GetTracerProvider())
	unsetPropagator = initial(otel.GetTextMapPropagator())
)

// initial returns v if it is one of OpenTelemetry's own global defaults
// (its internal/global package's delegating no-ops), else nil.
func initial(v any) any {
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global" {
		return v
	}
	return nil
}

// On reports whether a tracer provider or a propagator has been installed
// (by Setup, or by a program embedding modrun). While neither is, a span
// records nothing and propagation injects and extracts nothing, so the
// helpers here and their callers skip building spans altogether: a
// server with tracing off pays two atomic loads per span, not a no-op
// span's allocations.
func On() bool {
	return any(otel.GetTracerProvider()) != unsetProvider || any(otel.GetTextMapPropagator()) != unsetPropagator
}

// TraceParent is ctx's span context as a W3C traceparent, or "".
func TraceParent(ctx context.Context) string {
	if !On() {
		return ""
	}
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent continues the trace of a W3C traceparent in ctx.
func WithTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// Extract continues the trace of an incoming request's headers.
func Extract(ctx context.Context, h http.Header) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(h))
}

// StartClient starts a client span for an outgoing request and puts its
// traceparent on req. The span names the method and the host, never the
// path or query (a binding may have put a secret there). end records the
// response's status (0: none) and whether it failed.
func StartClient(req *http.Request, name string, attrs ...attribute.KeyValue) (end func(status int, err error)) {
	if !On() {
		return noEnd
	}
	ctx, span := Tracer().Start(req.Context(), name, trace.WithSpanKind(trace.SpanKindClient))
	if !span.IsRecording() && !span.SpanContext().IsValid() {
		return func(int, error) {}
	}
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[req.URL.Scheme]
	}
	p, _ := strconv.Atoi(port)
	// A copy, so that attrs does not escape: the caller's slice stays on
	// its stack when tracing is off.
	all := make([]attribute.KeyValue, 0, len(attrs)+4)
	span.SetAttributes(append(append(all, attrs...),
		semconv.HTTPRequestMethodKey.String(req.Method),
		semconv.ServerAddress(host),
		semconv.ServerPort(p),
		semconv.URLScheme(req.URL.Scheme),
	)...)
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	return func(status int, err error) {
		if status > 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		}
		if err != nil || status >= 400 {
			span.SetStatus(codes.Error, statusText(status, err))
		}
		span.End()
	}
}

// noEnd ends a span that was never started.
func noEnd(int, error) {}

// statusText says why a span failed without the error's message.
func statusText(status int, err error) string {
	switch {
	case status > 0:
		return "HTTP " + strconv.Itoa(status)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "no response"
}

// LogHandler adds trace_id and span_id to records logged with a context
// holding a span, so that JSON logs join their traces.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(as)}
}
func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }
