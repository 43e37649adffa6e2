package query_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	var hits atomic.Int64
	fails := int64(2)
	var status int
	var retryAfter string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		if n <= fails {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	sc := scope{Inputs: map[string]any{"baseUrl": srv.URL}}
	try := func(src string) error {
		hits.Store(0)
		_, err := send(t, src, sc, nil)
		return err
	}

	status = 503
	if err := try("url: <<inputs.baseUrl>>/x\nretry: {attempts: 3, backoff: 10ms}\n"); err != nil || hits.Load() != 3 {
		t.Fatalf("503, 503, 200: err %v after %d requests", err, hits.Load())
	}
	err := try("url: <<inputs.baseUrl>>/x\nretry: {attempts: 2, backoff: 10ms}\n")
	if err == nil || !strings.Contains(err.Error(), "HTTP 503: Service Unavailable (after 2 attempts)") || hits.Load() != 2 {
		t.Fatalf("two attempts: err %v after %d requests", err, hits.Load())
	}
	status = 400 // not listed: no retry
	if err := try("url: <<inputs.baseUrl>>/x\nretry: {attempts: 3, backoff: 10ms}\n"); err == nil || hits.Load() != 1 {
		t.Fatalf("400: err %v after %d requests", err, hits.Load())
	}
	status, retryAfter = 429, "1" // the server's wait wins over 10ms
	start := time.Now()
	fails = 1
	if err := try("url: <<inputs.baseUrl>>/x\nretry: {attempts: 2, backoff: 10ms, on: [429]}\n"); err != nil || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("Retry-After: err %v after %v", err, time.Since(start))
	}
	// A wait past the call's deadline is not made.
	fails, retryAfter = 5, "30"
	m := compile(t, "api", "url: <<inputs.baseUrl>>/x\nretry: {attempts: 3, on: [429]}\n")
	req, _ := m.Bind(sc, nil)
	// The wait would end past the deadline: the call fails at once, not
	// at its 10 s deadline (half of it is slack for a loaded machine).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hits.Store(0)
	start = time.Now()
	if _, err := req.Send(ctx); err == nil || time.Since(start) > 5*time.Second || hits.Load() != 1 {
		t.Fatalf("Retry-After past the deadline: err %v after %v, %d requests", err, time.Since(start), hits.Load())
	}
	// A Retry-After of more seconds than a Duration holds is a wait past
	// the deadline too, not a wrapped one that retries at once.
	fails, retryAfter = 5, "10000000000"
	hits.Store(0)
	start = time.Now()
	if _, err := req.Send(ctx); err == nil || time.Since(start) > 5*time.Second || hits.Load() != 1 {
		t.Fatalf("Retry-After of 1e10 s: err %v after %v, %d requests", err, time.Since(start), hits.Load())
	}
	// A POST that timed out may have been processed: never again.
	retryAfter, fails = "", 0
	if err := try("method: POST\nurl: <<inputs.baseUrl>>/slow\ntimeout: 100ms\nbody: {form: {grant_type: refresh_token}}\nretry: {attempts: 3, backoff: 10ms}\n"); err == nil || hits.Load() != 1 {
		t.Fatalf("POST timeout: err %v after %d requests", err, hits.Load())
	}
	time.Sleep(300 * time.Millisecond) // let the slow handler finish
}

// loggingScope is a scope with an engine.Logging ability.
type loggingScope struct {
	scope
	log *slog.Logger
}

func (s loggingScope) Logger() *slog.Logger { return s.log }

// TestRetryIsLogged: each retry is a line at info naming the module, the
// attempt and the cause, so that an API flapping shows before it fails
// (issue 32).
func TestRetryIsLogged(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var buf bytes.Buffer
	sc := loggingScope{scope: scope{Inputs: map[string]any{"baseUrl": srv.URL}},
		log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	req, err := compile(t, "api", "url: <<inputs.baseUrl>>/x\nretry: {attempts: 3, backoff: 10ms}\n").Bind(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := req.Send(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per retry (2):\n%s", len(lines), buf.String())
	}
	for i, l := range lines {
		for _, want := range []string{"level=INFO", `msg="query failed; retrying"`, "module=api", fmt.Sprintf("attempt=%d of=3", i+1), "HTTP 503"} {
			if !strings.Contains(l, want) {
				t.Errorf("line %d lacks %s: %s", i+1, want, l)
			}
		}
	}
}

func TestRetryWhenNeverSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: every dial is refused
	sc := scope{Inputs: map[string]any{"baseUrl": "http://" + addr}}
	start := time.Now()
	_, err = send(t, "method: POST\nurl: <<inputs.baseUrl>>/x\nretry: {attempts: 3, backoff: 50ms}\n", sc, nil)
	if err == nil || !strings.Contains(err.Error(), "(after 3 attempts)") || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("refused: err %v after %v", err, time.Since(start))
	}
}

func TestRetryValidation(t *testing.T) {
	for src, want := range map[string]string{
		"url: http://h/x\nretry: {attempts: 11}\n":      "retry.attempts 11: want 1 to 10",
		"url: http://h/x\nretry: {backoff: soon}\n":     `retry.backoff "soon"`,
		"url: http://h/x\nretry: {backoff: 31s}\n":      `retry.backoff "31s": want at most 30s`,
		"url: http://h/x\nretry: {on: [200]}\n":         "retry.on: 200 is not an HTTP error status",
		"url: http://h/x\nretry: {attempts: 2, x: 1}\n": `unknown field "x"`,
	} {
		if _, err := compileErr(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", src, err, want)
		}
	}
}
