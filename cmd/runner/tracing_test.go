package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an in-process OTLP/HTTP trace receiver.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	svc   map[string]bool // service.name of the spans' resources
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{svc: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var msg coltrace.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &msg) != nil {
			http.Error(w, "bad export", 400)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					r.svc[a.Value.GetStringValue()] = true
				}
			}
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(nil)
	}))
	t.Cleanup(r.Close)
	return r
}

// span returns the first span whose name starts with prefix, waiting up
// to 30 s for it to be exported.
func (r *receiver) span(t *testing.T, prefix string) *tracepb.Span {
	t.Helper()
	for give := time.Now().Add(30 * time.Second); time.Now().Before(give); time.Sleep(50 * time.Millisecond) {
		r.mu.Lock()
		for _, s := range r.spans {
			if strings.HasPrefix(s.Name, prefix) {
				r.mu.Unlock()
				return s
			}
		}
		r.mu.Unlock()
	}
	var names []string
	r.mu.Lock()
	for _, s := range r.spans {
		names = append(names, s.Name)
	}
	r.mu.Unlock()
	t.Fatalf("no span %q exported; spans: %v", prefix, names)
	return nil
}

// TestTracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, runner serve (with
// workers and in-process) exports a server span continuing the caller's
// traceparent, a run span under it, and a query span and a token-request
// span under the run — the last two from the worker process when
// isolated — and the upstream gets the trace's traceparent. No attribute
// holds a secret, a token or a query string.
func TestTracing(t *testing.T) {
	const (
		secret = "client-secret-TRACE-0123456789"
		access = "at-TRACE-0123456789abcdef"
	)
	var mu sync.Mutex
	var upstreamParent string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/token":
			fmt.Fprintf(w, `{"access_token": %q, "expires_in": 3600}`, access)
		default:
			mu.Lock()
			upstreamParent = r.Header.Get("traceparent")
			mu.Unlock()
			w.Write([]byte(`{"ok": true}`))
		}
	}))
	defer upstream.Close()
	pkg := writePackage(t, map[string]string{
		"package.yaml": `name: tr
version: 1.0.0
inputs:
  baseUrl: {}
  clientSecret: {secret: true}
oauth2:
  svc: {grant: client_credentials, tokenUrl: "<<inputs.baseUrl>>/token", clientId: id, clientSecret: "<<inputs.clientSecret>>"}
`,
		"api.query.yaml": "url: <<inputs.baseUrl>>/api?key=<<inputs.clientSecret>>\nauth: {oauth2: svc}\n",
		"m.js":           `export default { async call() { return (await api.run()).ok } }`,
	})
	for _, isolate := range []string{"true", "false"} {
		t.Run("isolate="+isolate, func(t *testing.T) {
			rcv := newReceiver(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
			const token = "trace-token-0123456789abcdef"
			srv := startServe(t, token, pkg, "--store", t.TempDir()+"/s.db", "--isolate="+isolate,
				"--input", "baseUrl="+upstream.URL, "--input", "clientSecret="+secret, "--log-format", "json")
			traceID, parentID := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			req, _ := http.NewRequest("POST", srv.url+"/v1/run/tr/m.call", strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("run: %d %s", resp.StatusCode, body)
			}
			srv.stop() // flushes the spans

			server := rcv.span(t, "POST /v1/run/{package}/{target}")
			run := rcv.span(t, "run tr m.call")
			query := rcv.span(t, "query api")
			tok := rcv.span(t, "oauth2 token svc")
			id := func(b []byte) string { return hex.EncodeToString(b) }
			for _, s := range []*tracepb.Span{server, run, query, tok} {
				if id(s.TraceId) != traceID {
					t.Errorf("%s: trace %s, want the caller's %s", s.Name, id(s.TraceId), traceID)
				}
			}
			if id(server.ParentSpanId) != parentID || server.Kind != tracepb.Span_SPAN_KIND_SERVER {
				t.Errorf("server span: parent %s kind %v; want the caller's span %s, server", id(server.ParentSpanId), server.Kind, parentID)
			}
			if id(run.ParentSpanId) != id(server.SpanId) {
				t.Errorf("run span's parent %s, want the server span %s", id(run.ParentSpanId), id(server.SpanId))
			}
			if id(query.ParentSpanId) != id(run.SpanId) || query.Kind != tracepb.Span_SPAN_KIND_CLIENT {
				t.Errorf("query span's parent %s (kind %v), want the run span %s", id(query.ParentSpanId), query.Kind, id(run.SpanId))
			}
			mu.Lock()
			got := upstreamParent
			mu.Unlock()
			if !strings.Contains(got, traceID) || !strings.Contains(got, id(query.SpanId)) {
				t.Errorf("the upstream got traceparent %q; want trace %s, parent %s (the query span)", got, traceID, id(query.SpanId))
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if !rcv.svc["modrun"] || (isolate == "true" && !rcv.svc["modrun-worker"]) {
				t.Errorf("services: %v", rcv.svc)
			}
			for _, s := range rcv.spans {
				for _, a := range s.Attributes {
					v := a.Value.String()
					if strings.Contains(v, "TRACE") || strings.Contains(v, "key=") || strings.Contains(v, "Bearer") {
						t.Errorf("span %s attribute %s = %s holds a secret", s.Name, a.Key, v)
					}
				}
			}
			if !strings.Contains(srv.logText(), `"trace_id":"`+traceID+`"`) {
				t.Errorf("the JSON access log has no trace_id:\n%s", srv.logText())
			}
		})
	}
}
