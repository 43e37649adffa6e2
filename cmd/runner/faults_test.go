package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/etcdtest"
	"github.com/modrun/modrun/internal/testbin"
)

// The service faults of DESIGN §16, each against a real runner serve.

// TestServeSurvivesWorkerKills: SIGKILL the worker nine times, calls with
// a 2 s deadline in between; the first call after the last kill succeeds,
// and so does every call for 2 s after it. (Before: the restart backoff
// grew to 10 s, and a call that waited past its deadline got the new
// worker killed, which grew it again.)
func TestServeSurvivesWorkerKills(t *testing.T) {
	const token = "fault-token-0123456789abcdef"
	srv := startServe(t, token, servePackage(t, ""), "--store", t.TempDir()+"/s.db", "--workers", "1")
	defer srv.stop()
	hello := func() (int, map[string]any) {
		code, body, _ := srv.call("POST", "/v1/run/svc/m.hello", `{"args": ["k"], "timeout": "2s"}`)
		return code, body
	}
	for i := range 9 {
		if code, body := hello(); code != 200 || body["result"] != "hello k" {
			t.Fatalf("before kill %d: %d %v\n%s", i+1, code, body, srv.logText())
		}
		workers := testbin.Children(t, srv.cmd.Process.Pid)
		if len(workers) != 1 {
			t.Fatalf("before kill %d the server runs %d workers", i+1, len(workers))
		}
		syscall.Kill(workers[0], syscall.SIGKILL)
	}
	last := time.Now()
	n, failed := 0, 0
	for time.Since(last) < 2*time.Second || n < 20 {
		code, body := hello()
		if code != 200 || body["result"] != "hello k" {
			if n == 0 {
				t.Fatalf("the first call after the last kill: %d %v\n%s", code, body, srv.logText())
			}
			failed++
			t.Logf("call %d after the kills: %d %v", n+1, code, body)
		}
		n++
	}
	if failed*100 > n {
		t.Fatalf("%d of %d calls within 2 s of the last kill failed; want at most 1%%", failed, n)
	}
}

// TestServeAnswersEachRunItsOwnResult: with --history 10 and 64 clients,
// each sync run is answered with its own result, never with an error
// because newer runs pushed it out of the history meanwhile.
func TestServeAnswersEachRunItsOwnResult(t *testing.T) {
	const token = "fault-token-0123456789abcdef"
	srv := startServe(t, token, servePackage(t, ""), "--store", t.TempDir()+"/s.db", "--history", "10", "--isolate=false")
	defer srv.stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrong := 0
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				name := fmt.Sprintf("c%d-%d", c, i)
				code, body, _ := srv.call("POST", "/v1/run/svc/m.hello", `{"args": ["`+name+`"]}`)
				if code != 200 || body["result"] != "hello "+name || body["id"] == nil {
					mu.Lock()
					if wrong < 5 {
						t.Errorf("run %s: %d %v", name, code, body)
					}
					wrong++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if wrong > 0 {
		t.Fatalf("%d of 2560 runs were not answered with their own result", wrong)
	}
	code, _, _ := srv.call("GET", "/v1/runs?limit=100", "")
	if code != 200 {
		t.Fatalf("GET /v1/runs: %d", code)
	}
}

// TestServeReleasesIdleInstances: one instance per distinct app, released
// once idle for --idle-instance, here and in the worker; the gauge
// modrun_instances shows it.
func TestServeReleasesIdleInstances(t *testing.T) {
	const token = "fault-token-0123456789abcdef"
	srv := startServe(t, token, servePackage(t, ""), "--store", t.TempDir()+"/s.db", "--idle-instance", "300ms", "--workers", "1")
	defer srv.stop()
	for i := range 200 {
		code, body, _ := srv.call("POST", "/v1/run/svc/m.hello", fmt.Sprintf(`{"args": ["x"], "app": "app%d"}`, i))
		if code != 200 {
			t.Fatalf("app%d: %d %v", i, code, body)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := srv.metric(t, "modrun_instances")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("modrun_instances = %v 30 s after the last call; want 0 (idle after 300ms)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A released app runs again, on a new instance.
	if code, body, _ := srv.call("POST", "/v1/run/svc/m.hello", `{"args": ["again"], "app": "app7"}`); code != 200 || body["result"] != "hello again" {
		t.Fatalf("a released app again: %d %v", code, body)
	}
}

// metric reads one unlabelled sample of /metrics.
func (s *served) metric(t *testing.T, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(s.metricsText(t), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// TestServeRefusesAPackageThatCannotRun: a served package with a required
// input that has no value: serve exits 1 naming the package and the input,
// instead of saying ready and failing every run.
func TestServeRefusesAPackageThatCannotRun(t *testing.T) {
	pkg := writePackage(t, map[string]string{
		"package.yaml": "name: needy\nversion: 1.0.0\ninputs:\n  apiKey: {required: true, secret: true}\n",
		"m.js":         `export default { f() { return 1 } }`,
	})
	cmd := exec.Command(runnerBinary(t), "serve", pkg, "--listen", "127.0.0.1:0", "--store", t.TempDir()+"/s.db")
	cmd.Env = append(os.Environ(), "MODRUN_TOKEN=fault-token-0123456789abcdef")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("serve without a required input: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "needy") || !strings.Contains(string(out), "apiKey") {
		t.Fatalf("the error names neither the package nor the input:\n%s", out)
	}
}

// TestServersShareOneHistory: two servers on one etcd store, each with
// runs of its own; after both restart, each lists every run of both, and
// neither overwrote the other's.
func TestServersShareOneHistory(t *testing.T) {
	etcd := etcdtest.Start(t)
	const token = "fault-token-0123456789abcdef"
	pkg := servePackage(t, "")
	start := func(name string) *served {
		return startServe(t, token, pkg, "--store", etcd.URL("shared"), "--name", name)
	}
	a, b := start("a"), start("b")
	ids := map[string]bool{}
	for i := range 15 {
		for _, s := range []*served{a, b} {
			code, body, _ := s.call("POST", "/v1/run/svc/m.hello", fmt.Sprintf(`{"args": ["%d"]}`, i))
			if code != 200 {
				t.Fatalf("run %d: %d %v", i, code, body)
			}
			ids[body["id"].(string)] = true
		}
	}
	if len(ids) != 30 {
		t.Fatalf("30 runs got %d distinct ids", len(ids))
	}
	if a.stop() != 0 || b.stop() != 0 {
		t.Fatal("a server did not stop cleanly")
	}
	for _, s := range []*served{start("a"), start("b")} {
		listed := s.runIDs(t)
		for id := range ids {
			if !listed[id] {
				t.Errorf("after the restart, a server does not list run %s", id)
			}
		}
		s.stop()
	}
}

// runIDs lists the ids of the server's history.
func (s *served) runIDs(t *testing.T) map[string]bool {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/v1/runs?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var runs []struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&runs); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range runs {
		out[r.ID] = true
	}
	return out
}

// TestReloadRunsTheNewCodeOfADirectory: SIGHUP after editing a directory
// package runs the edited code (a directory has no digest: it used to keep
// its old instances), and a bad edit keeps the last good version served.
func TestReloadRunsTheNewCodeOfADirectory(t *testing.T) {
	const token = "fault-token-0123456789abcdef"
	dir := writePackage(t, map[string]string{
		"package.yaml": "name: edit\nversion: 1.0.0\n",
		"m.js":         `export default { f() { return "old" } }`,
	})
	srv := startServe(t, token, dir, "--store", t.TempDir()+"/s.db")
	defer srv.stop()
	f := func() any {
		code, body, _ := srv.call("POST", "/v1/run/edit/m.f", `{}`)
		if code != 200 {
			t.Fatalf("m.f: %d %v", code, body)
		}
		return body["result"]
	}
	if got := f(); got != "old" {
		t.Fatalf("before the edit: %v", got)
	}
	reload := func(want any) {
		t.Helper()
		srv.cmd.Process.Signal(syscall.SIGHUP)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if strings.Count(srv.logText(), "reload") > 0 && f() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after SIGHUP m.f = %v, want %v\n%s", f(), want, srv.logText())
			}
		}
	}
	os.WriteFile(dir+"/m.js", []byte(`export default { f() { return "new" } }`), 0o644)
	reload("new")
	os.WriteFile(dir+"/m.js", []byte(`export default { f() { return "broken" `), 0o644)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(srv.logText(), "keeping the previous version"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a bad edit was not reported:\n%s", srv.logText())
		}
	}
	if got := f(); got != "new" {
		t.Fatalf("after a bad edit m.f = %v, want the last good version's \"new\"", got)
	}
}
