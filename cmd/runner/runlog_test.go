package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestServeRunDetailHasArgsAndLog: a run's history entry holds what the
// caller passed and the run's own log lines — console output, a retried
// query, redacted — at info whatever the server's log level, in both
// isolation modes; another run's lines never land in it (issue 32: the
// inspector's run detail was bare).
func TestServeRunDetailHasArgsAndLog(t *testing.T) {
	var hits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1)%2 == 1 { // every other request fails once: one retry per run
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"ok": true}`))
	}))
	defer api.Close()
	dir := writePackage(t, map[string]string{
		"package.yaml":     "name: lg\nversion: 1.0.0\ninputs:\n  baseUrl: {required: true}\n  apiKey: {secret: true}\n",
		"flaky.query.yaml": "url: <<inputs.baseUrl>>/flaky\nretry: {attempts: 3, backoff: 10ms}\n",
		"m.js": `export default {
	async greet(name) {
		console.log("hello " + name + " with " + inputs.apiKey);
		const r = await flaky.run();
		console.warn("done for " + name);
		return r;
	},
};`,
	})
	for _, isolate := range []string{"true", "false"} {
		t.Run("isolate="+isolate, func(t *testing.T) {
			srv := startServe(t, "tok-runlog-0123456789", dir, "--store", filepath.Join(t.TempDir(), "s.db"), "--input", "baseUrl="+api.URL, "--input", "apiKey=k-0123456789abcdef", "--isolate="+isolate, "--log-level", "warn")
			var runs []map[string]any
			for _, name := range []string{"ada", "grace"} {
				code, body, _ := srv.call("POST", "/v1/run/lg/m.greet", `{"args": ["`+name+`"]}`)
				if code != 200 {
					t.Fatalf("run: %d %v\n%s", code, body, srv.logText())
				}
				code, run, _ := srv.call("GET", "/v1/runs/"+body["id"].(string), "")
				if code != 200 {
					t.Fatalf("GET run: %d %v", code, run)
				}
				runs = append(runs, run)
			}
			for i, name := range []string{"ada", "grace"} {
				run := runs[i]
				if args, _ := json.Marshal(run["args"]); string(args) != `["`+name+`"]` {
					t.Errorf("args %s, want [%q]", args, name)
				}
				raw, _ := json.Marshal(run["log"])
				var lines []struct{ Level, Message, Attrs string }
				json.Unmarshal(raw, &lines)
				var got []string
				for _, l := range lines {
					got = append(got, l.Level+" "+l.Message)
				}
				want := []string{"INFO hello " + name + " with [REDACTED]", "INFO query failed; retrying", "WARN done for " + name}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("run %s's log:\n%s\nwant:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if len(lines) == 3 && !strings.Contains(lines[1].Attrs, "module=flaky") {
					t.Errorf("the retry line's attrs %q lack the module", lines[1].Attrs)
				}
			}
			if strings.Contains(srv.logText(), "k-0123456789abcdef") {
				t.Errorf("the secret input in the server's log:\n%s", srv.logText())
			}
			if !strings.Contains(srv.logText(), "done for ada") || strings.Contains(srv.logText(), "hello ada") {
				t.Errorf("the server's own log at warn should hold the warning and not the info lines:\n%s", srv.logText())
			}
		})
	}
}
