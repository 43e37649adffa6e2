package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/server"
	"github.com/modrun/modrun/store"
)

const token = "test-token-abcdef"

// newServer serves a package written from files, in-process, with a real
// bbolt store.
func newServer(t testing.TB, files map[string]string) (*server.Server, *store.DB) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return serverOn(t, db, dir), db
}

// serverOn serves the package in dir on st, loaded, not yet listening.
func serverOn(t testing.TB, st engine.Store, dir string) *server.Server {
	t.Helper()
	return serverOnAll(t, st, dir)
}

// serverOnAll serves the packages in dirs on st, loaded, not listening.
func serverOnAll(t testing.TB, st engine.Store, dirs ...string) *server.Server {
	t.Helper()
	logs := server.NewRunLogs()
	eng := modrun.New(modrun.Options{Store: st, Logger: slog.New(logs.Handler(slog.DiscardHandler))})
	t.Cleanup(func() { eng.Close() })
	srv := server.New(server.Options{
		Loader:   eng,
		RunLogs:  logs,
		Packages: dirs,
		NewInstance: func(pkg *engine.Package, app string, obs engine.Observer) (engine.Instance, error) {
			return eng.NewInstance(pkg, modrun.InstanceOptions{App: app, Observer: obs})
		},
		Store: st,
		Token: token,
	})
	if err := srv.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return srv
}

var counterPkg = map[string]string{
	"package.yaml": "name: counter\nversion: 1.0.0\n",
	"c.js": `export default {
	async add(key) {
		for (;;) {
			const old = appsmith.store[key]; // read once: another instance may write meanwhile
			if (await compareAndSwapValue(key, old, (old ?? 0) + 1)) return (old ?? 0) + 1;
		}
	},
};`,
}

// TestConcurrentClients: 64 clients at once, each making 10 runs; every
// run succeeds and counts once (run under -race in CI).
func TestConcurrentClients(t *testing.T) {
	srv, db := newServer(t, counterPkg)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64*10)
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				body := fmt.Sprintf(`{"args": ["n%d"], "app": "app%d"}`, (c/2)%4, c%2)
				req, _ := http.NewRequest("POST", ts.URL+"/v1/run/counter/c.add", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("client %d run %d: %d %s", c, i, resp.StatusCode, raw)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// 640 increments over 2 apps × 4 keys: 80 each.
	for app := range 2 {
		for k := range 4 {
			v, err := db.Get(context.Background(), fmt.Sprintf("app%d", app), fmt.Sprintf("n%d", k))
			if err != nil || string(v) != "80" {
				t.Errorf("app%d n%d = %s, %v; want 80", app, k, v, err)
			}
		}
	}
}

func TestHistoryIsBounded(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: h\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default { f(n) { return n } }`), 0o644)
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eng := modrun.New(modrun.Options{Store: db})
	srv := server.New(server.Options{Loader: eng, Packages: []string{dir}, Store: db, Token: token, History: 5,
		NewInstance: func(pkg *engine.Package, app string, obs engine.Observer) (engine.Instance, error) {
			return eng.NewInstance(pkg, modrun.InstanceOptions{App: app})
		}})
	if err := srv.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	for i := range 12 {
		req, _ := http.NewRequest("POST", "http://"+l.Addr().String()+"/v1/run/h/m.f", strings.NewReader(fmt.Sprintf(`{"args": [%d]}`, i)))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	kept, _ := db.List(context.Background(), server.HistoryApp)
	if len(kept) != 5 {
		t.Fatalf("the store keeps %d runs; want the last 5", len(kept))
	}
	for _, raw := range kept {
		var r server.Run
		json.Unmarshal(raw, &r)
		var n int
		if json.Unmarshal(r.Result, &n); n < 7 {
			t.Errorf("kept an old run: %s", raw)
		}
	}
}

// ExampleServer serves a package directory in-process and runs one of its
// functions over HTTP.
func ExampleServer() {
	dir, _ := os.MkdirTemp("", "example-pkg")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: greeter\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.js"), []byte(`export default { greet(name) { return "hello " + name } }`), 0o644)
	db := store.NewMemory()
	eng := modrun.New(modrun.Options{Store: db})
	srv := server.New(server.Options{
		Loader:   eng,
		Packages: []string{dir},
		NewInstance: func(pkg *engine.Package, app string, obs engine.Observer) (engine.Instance, error) {
			return eng.NewInstance(pkg, modrun.InstanceOptions{App: app, Observer: obs})
		},
		Store: db,
		Token: "s3cret-token",
	})
	if err := srv.Load(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	cl, _ := server.NewClient(ts.URL, "s3cret-token")
	out, err := cl.Run(context.Background(), "greeter", "main.greet", "", []json.RawMessage{json.RawMessage(`"Ada"`)}, 5*time.Second)
	fmt.Println(string(out), err)
	// Output: "hello Ada" <nil>
}

// ExampleNewRunLogs keeps each run's own log lines in its history entry:
// the RunLogs' handler wraps the instances' logger.
func ExampleNewRunLogs() {
	dir, _ := os.MkdirTemp("", "example-pkg")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: greeter\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.js"), []byte(`export default { greet(name) { console.log("greeting " + name); return "hello " + name } }`), 0o644)
	db := store.NewMemory()
	logs := server.NewRunLogs()
	// The process's own log stays at warn; the runs' lines at info are kept.
	own := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	eng := modrun.New(modrun.Options{Store: db, Logger: slog.New(logs.Handler(own))})
	srv := server.New(server.Options{
		Loader:   eng,
		Packages: []string{dir},
		NewInstance: func(pkg *engine.Package, app string, obs engine.Observer) (engine.Instance, error) {
			return eng.NewInstance(pkg, modrun.InstanceOptions{App: app, Observer: obs})
		},
		Store:   db,
		Token:   "s3cret-token",
		RunLogs: logs,
	})
	if err := srv.Load(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	call := func(method, path, body string, out any) {
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(out)
	}
	var answer struct{ ID string }
	call("POST", "/v1/run/greeter/main.greet", `{"args": ["Ada"]}`, &answer)
	var run server.Run
	call("GET", "/v1/runs/"+answer.ID, "", &run)
	fmt.Println(run.Status, string(run.Args))
	for _, l := range run.Log {
		fmt.Println(l.Level, l.Message)
	}
	// Output:
	// succeeded ["Ada"]
	// INFO greeting Ada
}

// newHTTPServer serves srv on a loopback port for the test's life.
func newHTTPServer(t testing.TB, srv *server.Server) string {
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestScheduleRunsOncePerPeriodAcrossServers: two servers on one store
// (as two machines on one etcd) claim each period of a schedule, so it
// runs once per period, not once per server.
func TestScheduleRunsOncePerPeriodAcrossServers(t *testing.T) {
	files := map[string]string{
		"package.yaml": "name: ticker\nversion: 1.0.0\nschedules:\n  - {every: 1s, run: c.add, args: [ticks]}\n",
		"c.js":         counterPkg["c.js"],
	}
	dir := t.TempDir()
	for name, data := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	st := store.NewMemory()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		srv := serverOn(t, st, dir)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { srv.Serve(ctx, l) })
	}
	const span = 3500 * time.Millisecond
	time.Sleep(span)
	cancel()
	wg.Wait()
	raw, err := st.Get(context.Background(), "ticker", "ticks")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(string(raw))
	periods := int(span / time.Second)
	if n < periods/2 || n > periods+1 {
		t.Fatalf("%d runs in %v of a 1s schedule on two servers; want about %d (one per period)", n, span, periods)
	}
}

// TestClientKeepsItsTokenToItsServer: a --server client never follows a
// redirect to another origin with the token (issue 28: runner run and
// store --server followed a 307 to another port and resent it).
func TestClientKeepsItsTokenToItsServer(t *testing.T) {
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"))
		w.Write([]byte(`{"id": "x", "result": 1}`))
	}))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	cl, err := server.NewClient(redirecting.URL, "client-token-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Run(context.Background(), "p", "m.f", "", nil, time.Second); err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("a redirect to another origin: %v", err)
	}
	if v, _ := leaked.Load().(string); v != "" {
		t.Fatalf("the other origin got Authorization %q", v)
	}
}
