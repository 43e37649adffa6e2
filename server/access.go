// Who may call (a bearer token, compared in constant time; guessing
// slowed down) and the access log.

package server

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/modrun/modrun/internal/tracing"
)

// authorized requires the bearer token, compared in constant time. A
// client address that keeps sending wrong tokens is slowed down (429
// with Retry-After) before the comparison: guessing costs time.
func (s *Server) authorized(h http.HandlerFunc) http.Handler {
	want := []byte("Bearer " + s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r)
		if wait := s.guesses.wait(addr); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
			writeError(w, "", &ErrorInfo{Message: "too many requests with a wrong token from this address; retry later", status: http.StatusTooManyRequests})
			return
		}
		got := r.Header.Get("Authorization")
		var p principal
		ok := false
		if s.opts.Token != "" && subtle.ConstantTimeCompare([]byte(got), want) == 1 {
			p, ok = principal{scopes: []string{ScopeAdmin}}, true
		} else if bearer, isBearer := strings.CutPrefix(got, "Bearer "); isBearer {
			p, ok = s.tokens.check(r.Context(), bearer)
		}
		if !ok {
			s.guesses.failed(addr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="modrun"`)
			writeError(w, "", &ErrorInfo{Message: "missing, wrong, expired or revoked bearer token (Authorization: Bearer TOKEN)", status: http.StatusUnauthorized})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// clientAddr is the request's peer address without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusWriter records the status and run id for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// accessLog writes one line per request: method, path, status, duration
// and run id. Never a header, a body or a query string. With tracing on,
// an API request is a server span, continuing the caller's traceparent.
func (s *Server) accessLog(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var span trace.Span
		if strings.HasPrefix(r.URL.Path, "/v1/") && tracing.On() {
			var ctx context.Context
			ctx, span = tracing.Tracer().Start(tracing.Extract(r.Context(), r.Header), r.Method+" /v1",
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(sw, r)
		if span != nil {
			if r.Pattern != "" {
				span.SetName(r.Pattern)
				if _, route, ok := strings.Cut(r.Pattern, " "); ok {
					span.SetAttributes(semconv.HTTPRoute(route))
				}
			}
			span.SetAttributes(semconv.HTTPResponseStatusCode(sw.status))
			if sw.status >= 500 {
				span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(sw.status))
			}
			span.End()
		}
		if !s.log.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", time.Since(start).Milliseconds()}
		if id := sw.Header().Get("X-Run-Id"); id != "" {
			attrs = append(attrs, "run", id)
		}
		s.log.InfoContext(r.Context(), "request", attrs...)
	})
}
