package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// served is a runner serve process.
type served struct {
	t     *testing.T
	cmd   *exec.Cmd
	url   string
	token string
	log   *bytes.Buffer
	mu    *sync.Mutex
}

// startServe starts the built runner's serve on a free loopback port.
func startServe(t *testing.T, token string, args ...string) *served {
	t.Helper()
	cmd := exec.Command(runnerBinary(t), append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "info"}, args...)...)
	cmd.Env = append(os.Environ(), "MODRUN_TOKEN="+token, "XDG_STATE_HOME="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{t: t, cmd: cmd, token: token, log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	addr := make(chan string, 1)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if u, ok := strings.CutPrefix(line, "serving on "); ok {
				addr <- u
			}
		}
	}()
	select {
	case s.url = <-addr:
	case <-eof:
		cmd.Wait()
		t.Fatalf("runner serve exited:\n%s", s.logText())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("runner serve did not start:\n%s", s.logText())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return s
}

func (s *served) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// call sends a request with the server's token and decodes the answer.
func (s *served) call(method, path, body string) (int, map[string]any, http.Header) {
	s.t.Helper()
	return s.callAs(s.token, method, path, body)
}

func (s *served) callAs(token, method, path, body string) (int, map[string]any, http.Header) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		json.Unmarshal(raw, &out)
	} else {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out, resp.Header
}

// stop sends SIGTERM and waits for the exit code.
func (s *served) stop() int {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		s.t.Fatalf("runner serve ignored SIGTERM:\n%s", s.logText())
		return -1
	}
}

// servePackage is the package the serve tests run.
func servePackage(t *testing.T, schedules string) string {
	return writePackage(t, map[string]string{
		"package.yaml":    "name: svc\nversion: 1.0.0\ninputs:\n  baseUrl: {default: \"http://127.0.0.1:1\"}\n  apiKey: {secret: true}\n" + schedules,
		"echo.query.yaml": "url: <<inputs.baseUrl>>/echo\nquery: {q: <<this.params.q>>}\n",
		"m.js": `export default {
	hello(name) { return "hello " + name },
	boom() { throw new Error("kaboom " + inputs.apiKey) },
	async slow(ms, key) { await new Promise(r => setTimeout(r, ms)); if (key) await storeValue(key, ms); return ms },
	async tick() { await storeValue("ticks", (appsmith.store.ticks ?? 0) + 1); return appsmith.store.ticks },
	async nap() { await new Promise(r => setTimeout(r, 2500)); return "rested" },
	spin() { for (;;) {} },
	async upstream() { return echo.run({q: "x"}) },
};`,
	})
}

func TestServeEndToEnd(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("q") == "x" {
			w.WriteHeader(502)
		}
		fmt.Fprintf(w, `{"q":%q}`, r.URL.Query().Get("q"))
	}))
	defer upstream.Close()
	pkg := servePackage(t, "schedules:\n  - {every: 1s, run: m.tick}\n")
	db := filepath.Join(t.TempDir(), "s.db")
	const token = "test-token-0123456789"
	srv := startServe(t, token, pkg, "--store", db, "--input", "svc:baseUrl="+upstream.URL, "--input", "apiKey=sk-live-secret-value")

	// Results and error statuses.
	code, body, hdr := srv.call("POST", "/v1/run/svc/m.hello", `{"args": ["ada"]}`)
	if code != 200 || body["result"] != "hello ada" || body["id"] == nil || hdr.Get("X-Run-Id") == "" {
		t.Fatalf("hello: %d %v", code, body)
	}
	helloID := body["id"].(string)
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/v1/run/svc/m.boom", ``, 500, "m.boom: Error: kaboom [REDACTED]"},
		{"POST", "/v1/run/svc/m.nope", ``, 404, `module m has no function "nope"`},
		{"POST", "/v1/run/nosuch/m.hello", ``, 404, `no package "nosuch" is served`},
		{"POST", "/v1/run/svc/m.hello", `{"args": `, 400, "not a valid JSON request"},
		{"POST", "/v1/run/svc/m.hello", `{"args": "ada"}`, 400, "not a valid JSON request"},
		{"POST", "/v1/run/svc/m.hello", `{"params": {}}`, 400, `give "args"`},
		{"POST", "/v1/run/svc/echo", `{"params": [1]}`, 400, `"params" must be a JSON object`},
		{"POST", "/v1/run/svc/m.hello", `{"bogus": 1}`, 400, `unknown field "bogus"`},
		{"POST", "/v1/run/svc/m.hello", `{"args": ["` + strings.Repeat("x", 2<<20) + `"]}`, 400, "over 1048576 bytes"},
		{"POST", "/v1/run/svc/m.slow", `{"args": [5000], "timeout": "100ms"}`, 504, "run exceeded its deadline"},
		{"POST", "/v1/run/svc/m.spin", `{"timeout": "200ms"}`, 504, "run exceeded its deadline"},
		{"POST", "/v1/run/svc/m.upstream", ``, 500, "echo: HTTP 502"},
		{"GET", "/v1/runs/r000nosuch", ``, 404, "no run"},
		{"GET", "/v1/nosuch", ``, 404, "no such endpoint"},
	} {
		code, body, _ := srv.call(c.method, c.path, c.body)
		msg := fmt.Sprint(body["error"])
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%s %s %.60s: %d %s; want %d %q", c.method, c.path, c.body, code, msg, c.code, c.want)
		}
	}
	if code, body, _ := srv.call("POST", "/v1/run/svc/m.upstream", ``); code != 500 || body["error"].(map[string]any)["statusCode"] != 502.0 || body["error"].(map[string]any)["module"] != "echo" {
		t.Errorf("upstream error: %d %v", code, body)
	}
	// Auth on everything but health and the inspector.
	for _, tok := range []string{"", "wrong-token"} {
		for _, p := range []string{"/v1/packages", "/v1/runs", "/metrics", "/v1/store/svc"} {
			if code, _, h := srv.callAs(tok, "GET", p, ""); code != 401 || h.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with token %q: %d", p, tok, code)
			}
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/", "/app.js"} {
		if code, _, _ := srv.callAs("", "GET", p, ""); code != 200 {
			t.Errorf("GET %s without a token: %d", p, code)
		}
	}

	// Queued runs.
	code, body, hdr = srv.call("POST", "/v1/runs", `{"package": "svc", "target": "m.slow", "args": [300]}`)
	if code != 202 || body["status"] != "queued" || !strings.HasPrefix(hdr.Get("Location"), "/v1/runs/r") {
		t.Fatalf("queue: %d %v", code, body)
	}
	code, body, _ = srv.call("GET", hdr.Get("Location")+"?wait=10s", "")
	if code != 200 || body["status"] != "succeeded" || body["result"] != 300.0 || body["trigger"] != "api" || body["startedAt"] == nil {
		t.Fatalf("wait: %d %v", code, body)
	}

	// Schedules fire.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", srv.url+"/v1/runs?target=m.tick&limit=5", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var runs []map[string]any
		json.NewDecoder(resp.Body).Decode(&runs)
		resp.Body.Close()
		if len(runs) >= 2 && runs[0]["trigger"] == "schedule" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled runs: %v", runs)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Packages, store, metrics.
	_, _, _ = srv.call("GET", "/v1/packages", "")
	req, _ := http.NewRequest("GET", srv.url+"/v1/packages", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, _ := http.DefaultClient.Do(req)
	pk, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(pk), `"functions":["boom","hello","nap","slow","spin","tick","upstream"]`) || !strings.Contains(string(pk), `"every":"1s"`) {
		t.Errorf("packages: %s", pk)
	}
	code, body, _ = srv.call("GET", "/v1/store/svc", "")
	if code != 200 || body["ticks"] == nil {
		t.Errorf("store: %d %v", code, body)
	}
	req, _ = http.NewRequest("GET", srv.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, _ = http.DefaultClient.Do(req)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`modrun_runs_total{outcome="succeeded",package="svc",target="m.hello"} 1`, `modrun_runs_total{outcome="failed",package="svc",target="m.boom"} 1`,
		`modrun_queries_total{code="502",module="echo",package="svc"}`, "modrun_run_duration_seconds_bucket", "modrun_runs_in_flight", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("metrics lack %s", m)
		}
	}

	// --server: run and store print what local runs print.
	env := []string{"MODRUN_SERVER=" + srv.url, "MODRUN_TOKEN=" + token}
	if out, stderr, code := runBinary(t, env, "run", "svc", "m.hello", "--args", `["bob"]`); code != 0 || out != "\"hello bob\"\n" {
		t.Errorf("run --server: %d %q %s", code, out, stderr)
	}
	if _, stderr, code := runBinary(t, env, "run", "svc", "m.boom"); code != 1 || !strings.Contains(stderr, "m.boom: Error: kaboom [REDACTED]") {
		t.Errorf("run --server of a failing target: %d %s", code, stderr)
	}
	if _, stderr, code := runBinary(t, env, "store", "set", "--app", "tenant", "greeting", `"hi"`); code != 0 {
		t.Errorf("store set --server: %d %s", code, stderr)
	}
	if _, stderr, code := runBinary(t, env, "store", "set", "--app", "tenant", "apitoken", `"tok-abcdef123"`); code != 0 {
		t.Errorf("store set --server: %d %s", code, stderr)
	}
	if out, _, code := runBinary(t, env, "store", "list", "--app", "tenant"); code != 0 || !strings.Contains(out, `"greeting": "hi"`) || strings.Contains(out, "tok-abcdef123") {
		t.Errorf("store list --server: %d %s", code, out)
	}
	if out, _, code := runBinary(t, env, "store", "get", "--app", "tenant", "greeting"); code != 0 || out != "\"hi\"\n" {
		t.Errorf("store get --server: %d %q", code, out)
	}
	if _, stderr, code := runBinary(t, env, "store", "get", "--app", "tenant", "nope"); code != 1 || !strings.Contains(stderr, "no such key") {
		t.Errorf("store get --server of a missing key: %d %s", code, stderr)
	}
	if _, _, code := runBinary(t, env, "store", "rm", "--app", "tenant", "greeting"); code != 0 {
		t.Errorf("store rm --server: %d", code)
	}
	// A tenant's run uses its own store namespace.
	srv.call("POST", "/v1/run/svc/m.slow", `{"args": [1, "tenantkey"], "app": "tenant"}`)
	if out, _, _ := runBinary(t, env, "store", "get", "--app", "tenant", "tenantkey"); out != "1\n" {
		t.Errorf("app selects the namespace: %q", out)
	}

	// No secret in any log line.
	if code := srv.stop(); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, srv.logText())
	}
	logs := srv.logText()
	if strings.Contains(logs, "sk-live-secret-value") || strings.Contains(logs, token) || strings.Contains(logs, "tok-abcdef123") {
		t.Errorf("a secret in the log:\n%s", logs)
	}
	if !strings.Contains(logs, "path=/v1/run/svc/m.hello status=200") {
		t.Errorf("no access log line:\n%s", logs)
	}

	// The history survives a restart.
	srv = startServe(t, token, pkg, "--store", db)
	code, body, _ = srv.call("GET", "/v1/runs/"+helloID, "")
	if code != 200 || body["result"] != "hello ada" || body["status"] != "succeeded" {
		t.Fatalf("after a restart: %d %v", code, body)
	}
	srv.stop()
}

// TestServeSchedulesSkipOverlaps: a schedule whose run is still going
// when it is due again is skipped, and counted.
func TestServeSchedulesSkipOverlaps(t *testing.T) {
	pkg := servePackage(t, "schedules:\n  - {every: 1s, run: m.nap}\n")
	srv := startServe(t, "tok-overlap-0123456789", pkg, "--store", filepath.Join(t.TempDir(), "s.db"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", srv.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer tok-overlap-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(m), `modrun_schedule_skipped_total{package="svc",schedule="every 1s: m.nap"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no skip counted:\n%s", m)
		}
		time.Sleep(300 * time.Millisecond)
	}
	srv.stop()
}

// TestServeDrainsOnSIGTERM: 64 runs in flight when SIGTERM arrives all
// finish, their writes are in the store, and the server exits 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	pkg := servePackage(t, "")
	db := filepath.Join(t.TempDir(), "s.db")
	srv := startServe(t, "tok-drain-0123456789", pkg, "--store", db, "--shutdown-timeout", "20s")
	var wg sync.WaitGroup
	codes := make([]int, 64)
	errs := make([]any, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b map[string]any
			codes[i], b, _ = srv.call("POST", "/v1/run/svc/m.slow", fmt.Sprintf(`{"args": [1500, "k%d"]}`, i))
			errs[i] = b["error"]
		}()
	}
	// SIGTERM once most are in flight (a loaded machine may not have
	// sent them all yet: those are refused at the door, below).
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m := regexp.MustCompile(`(?m)^modrun_runs_in_flight (\d+)`).FindStringSubmatch(srv.metricsText(t))
		if n, _ := strconv.Atoi(m[1]); n >= 32 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not 32 runs in flight after 60 s:\n%s", srv.logText())
		}
	}
	exit := make(chan int, 1)
	go func() { exit <- srv.stop() }()
	// Not ready once the SIGTERM is handled (the runs in flight last
	// 1.5 s more): polled, since a loaded machine may take a while to
	// deliver the signal.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, _, _ := srv.callAs("", "GET", "/readyz", "")
		if code == 503 {
			break
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("readyz while draining: %d, want 503", code)
		}
	}
	if code, _, _ := srv.call("POST", "/v1/run/svc/m.hello", `{"args": ["late"]}`); code != 503 {
		t.Errorf("a new run while draining: %d", code)
	}
	wg.Wait()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d:\n%s", code, srv.logText())
	}
	// Every run in flight finished; a run that reached the server after
	// SIGTERM was refused at the door, before it started.
	finished := 0
	out, _, _ := runCLI(t, "", "store", "list", "--store", db, "--app", "svc")
	for i, c := range codes {
		refused := c == 503 && fmt.Sprint(errs[i]) == "map[message:server shutting down]"
		switch {
		case c == 200:
			finished++
			if !strings.Contains(out, fmt.Sprintf(`"k%d": 1500`, i)) {
				t.Errorf("run %d answered 200 but its write k%d is lost:\n%s", i, i, out)
			}
		case !refused:
			t.Errorf("run %d: %d %v", i, c, errs[i])
		}
	}
	if finished < 32 {
		t.Errorf("only %d runs finished; at least 32 were in flight at SIGTERM", finished)
	}
}

// TestRefusesNonsenseNumbers: a negative count or duration, or none of
// what there must be some of, is a usage error naming the flag (or its
// variable's value), not the default in silence.
func TestRefusesNonsenseNumbers(t *testing.T) {
	pkg := servePackage(t, "")
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--history", "-1"}, "--history -1: want a positive number"},
		{nil, []string{"--max-concurrent", "0"}, "--max-concurrent 0: want a positive number"},
		{nil, []string{"--queue", "-1"}, "--queue -1: want zero or more"},
		{nil, []string{"--workers", "-2"}, "--workers -2: want zero or more"},
		{nil, []string{"--timeout", "-1s"}, "--timeout -1s: want a duration of zero or more"},
		{nil, []string{"--idle-instance", "0s"}, "--idle-instance 0s: want a positive duration"},
		{[]string{"MODRUN_HISTORY=-4"}, nil, "--history -4: want a positive number"},
	} {
		args := append([]string{"serve", pkg, "--listen", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "s.db")}, c.args...)
		_, errOut, code := runBinary(t, append([]string{"MODRUN_TOKEN=tok-flags-0123456789"}, c.env...), args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v %v: exit %d, %q; want exit 2 saying %q", c.env, c.args, code, errOut, c.want)
		}
	}
	// The other commands' numbers too.
	store := filepath.Join(t.TempDir(), "o.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", pkg, "m.hello", "--store", store, "--timeout", "-1s"}, "--timeout -1s: want a duration of zero or more"},
		{[]string{"bench", pkg, "m.hello", "--store", store, "--instances", "-3"}, "--instances -3: want zero or more"},
		{[]string{"bench", pkg, "m.hello", "--store", store, "-n", "0"}, "-n/--runs 0: want a positive number"},
		{[]string{"bench", pkg, "m.hello", "--store", store, "--warmup", "-1"}, "--warmup -1: want zero or more"},
		{[]string{"healthcheck", "http://127.0.0.1:1/", "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
	} {
		_, errOut, code := runBinary(t, nil, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 saying %q", c.args, code, errOut, c.want)
		}
	}
}

// TestServeQueueZeroWaitsNone: with --queue 0 a run past --max-concurrent
// is answered 429 at once (server.Options would read 0 as its default).
func TestServeQueueZeroWaitsNone(t *testing.T) {
	pkg := servePackage(t, "")
	// The slot is held for 20 s, far longer than the checks take on a
	// loaded machine; stopping does not wait for it.
	srv := startServe(t, "tok-queue0-0123456789", pkg, "--store", filepath.Join(t.TempDir(), "s.db"), "--max-concurrent", "1", "--queue", "0",
		"--shutdown-timeout", "1s")
	defer srv.stop()
	code, body, _ := srv.call("POST", "/v1/runs", `{"package": "svc", "target": "m.slow", "args": [20000]}`)
	if code != 202 {
		t.Fatalf("queueing a slow run: %d %v", code, body)
	}
	id := body["id"].(string)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, run, _ := srv.call("GET", "/v1/runs/"+id, ""); run["status"] == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow run never started")
		}
	}
	if code, body, _ := srv.call("POST", "/v1/run/svc/m.hello", `{"args": ["x"]}`); code != 429 {
		t.Fatalf("a run while the only slot is taken and none may wait: %d %v; want 429", code, body)
	}
}

// TestServeQueueFull: past --max-concurrent and --queue, 429 with
// Retry-After.
func TestServeQueueFull(t *testing.T) {
	pkg := servePackage(t, "")
	srv := startServe(t, "tok-queue-0123456789", pkg, "--store", filepath.Join(t.TempDir(), "s.db"), "--max-concurrent", "1", "--queue", "1")
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	retry := make(chan string, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, h := srv.call("POST", "/v1/run/svc/m.slow", `{"args": [1000]}`)
			codes <- code
			retry <- h.Get("Retry-After")
		}()
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	close(codes)
	close(retry)
	n429 := 0
	for c := range codes {
		if c == 429 {
			n429++
		}
	}
	ra := ""
	for r := range retry {
		ra += r
	}
	if n429 != 1 || ra != "1" {
		t.Fatalf("%d answers 429 (Retry-After %q); want 1", n429, ra)
	}
	srv.stop()
}
