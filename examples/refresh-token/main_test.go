package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/examples/refresh-token/authserver"
	"github.com/modrun/modrun/store"
)

var tokenRe = regexp.MustCompile(`(at|rt)_[0-9a-f]{48}`)

// TestMainJob runs the README's main-job command itself.
func TestMainJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example (about 10 s); run without -short")
	}
	cmd := exec.Command("go", "run", ".")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run ./examples/refresh-token: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"refreshed ahead of expiry: 1 refresh request(s), no 401",
		"1 401, 1 refresh request(s)",
		"50 calls succeeded with 1 refresh request(s); reuse detections at the server: 0",
		"refreshtoken  [REDACTED]",
		"refresh-token reuses",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if tok := tokenRe.FindString(out.String()); tok != "" {
		t.Errorf("a token reached the output: %s", tok)
	}
}

// fixture is the auth service, a store and an engine with the package.
type fixture struct {
	srv *authserver.Server
	db  *store.DB
	eng *modrun.Engine
	pkg *engine.Package
}

func newFixture(t *testing.T, opts authserver.Options) *fixture {
	t.Helper()
	srv := authserver.New(opts)
	if err := srv.Start(0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	db, err := store.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{srv: srv, db: db}
	f.eng, f.pkg = f.engine(t)
	return f
}

// engine is a second engine over the same store: another "host" whose
// single-flight calls are its own.
func (f *fixture) engine(t *testing.T) (*modrun.Engine, *engine.Package) {
	eng := modrun.New(modrun.Options{Store: f.db, Timeout: 20 * time.Second})
	pkg, err := loadPackage(eng)
	if err != nil {
		t.Fatal(err)
	}
	return eng, pkg
}

func (f *fixture) instance(t *testing.T, eng *modrun.Engine) engine.Instance {
	t.Helper()
	inst, err := eng.NewInstance(f.pkg, modrun.InstanceOptions{Inputs: map[string]any{
		"baseUrl": f.srv.URL(), "username": "demo", "password": "demo-password", "marginSeconds": "0.1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	return inst
}

func (f *fixture) get(t *testing.T, key string) string {
	v, err := f.db.Get(context.Background(), "refresh-token", key)
	if err != nil {
		return ""
	}
	var s string
	json.Unmarshal(v, &s)
	return s
}

func mustCall(t *testing.T, inst engine.Instance, target string) string {
	t.Helper()
	out, err := inst.Call(context.Background(), target)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	return string(out)
}

// expire ends the access token now, on both sides: the server rejects
// it, and the stored expiry says it is past. (Tokens that expire by the
// clock — 300 ms once — also expired again before 50 calls finished on a
// loaded machine, and some calls failed their one retry.)
func (f *fixture) expire(t *testing.T) {
	t.Helper()
	f.srv.ExpireAccessTokens()
	if err := f.db.Set(context.Background(), "refresh-token", "expiresAt", json.RawMessage("1")); err != nil {
		t.Fatal(err)
	}
}

func TestFiftyCallsAfterExpiryShareOneRefresh(t *testing.T) {
	f := newFixture(t, authserver.Options{AccessTTL: time.Hour})
	inst := f.instance(t, f.eng)
	mustCall(t, inst, "auth.login")
	f.expire(t)
	before := f.srv.Refreshes.Load()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := inst.Call(context.Background(), "auth.getProfile"); err != nil || !strings.Contains(string(out), `"username":"demo"`) {
				t.Errorf("getProfile: %s %v", out, err)
			}
		}()
	}
	wg.Wait()
	if n := f.srv.Refreshes.Load() - before; n != 1 {
		t.Fatalf("%d refresh requests, want exactly 1", n)
	}
	// Instances of one engine share the flight too.
	f.expire(t)
	before = f.srv.Refreshes.Load()
	var insts []engine.Instance
	for range 5 {
		insts = append(insts, f.instance(t, f.eng))
	}
	for i := range 25 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := insts[i%5].Call(context.Background(), "auth.getProfile"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.srv.Refreshes.Load() - before; n != 1 {
		t.Fatalf("5 instances of one engine: %d refresh requests, want 1", n)
	}
	if f.srv.Reuses.Load() != 0 {
		t.Fatal("a refresh token was spent twice")
	}
}

func TestRefreshOnUnauthorizedRetriesOnce(t *testing.T) {
	f := newFixture(t, authserver.Options{AccessTTL: time.Minute})
	inst := f.instance(t, f.eng)
	mustCall(t, inst, "auth.login")
	f.srv.ExpireAccessTokens()
	mustCall(t, inst, "auth.getProfile")
	if f.srv.Unauthorized.Load() != 1 || f.srv.Refreshes.Load() != 1 {
		t.Fatalf("401s %d, refreshes %d; want 1 and 1", f.srv.Unauthorized.Load(), f.srv.Refreshes.Load())
	}
}

func TestReuseIsDetectedAndSaysLogInAgain(t *testing.T) {
	f := newFixture(t, authserver.Options{AccessTTL: time.Minute})
	inst := f.instance(t, f.eng)
	mustCall(t, inst, "auth.login")
	stolen := f.get(t, "refreshtoken")
	mustCall(t, inst, "auth.refreshAccessToken")
	// Someone replays the old token: the server revokes the session.
	f.db.Set(context.Background(), "refresh-token", "refreshtoken", json.RawMessage(`"`+stolen+`"`))
	_, err := inst.Call(context.Background(), "auth.refreshAccessToken")
	if err == nil || !strings.Contains(err.Error(), "log in again") {
		t.Fatalf("err = %v, want a clear log-in-again error", err)
	}
	if strings.Contains(err.Error(), stolen) {
		t.Fatal("the error shows the refresh token")
	}
	if f.srv.Reuses.Load() != 1 || f.get(t, "refreshtoken") != "" {
		t.Fatalf("reuses %d, stored token %q", f.srv.Reuses.Load(), f.get(t, "refreshtoken"))
	}
	mustCall(t, inst, "auth.login")
	mustCall(t, inst, "auth.getProfile")
}

func TestNoNewRefreshTokenKeepsTheOld(t *testing.T) {
	f := newFixture(t, authserver.Options{AccessTTL: time.Minute, KeepRefreshToken: true})
	inst := f.instance(t, f.eng)
	mustCall(t, inst, "auth.login")
	rt, at := f.get(t, "refreshtoken"), f.get(t, "accesstoken")
	mustCall(t, inst, "auth.refreshAccessToken")
	if f.get(t, "refreshtoken") != rt || f.get(t, "accesstoken") == at {
		t.Fatal("the old refresh token should stay and the access token change")
	}
}

// TestPeerRotatedFirst: two engines over one store both spend the same
// refresh token; the server answers the later one invalid_grant (no
// revocation), and it re-reads the store instead of failing.
func TestPeerRotatedFirst(t *testing.T) {
	secondDone := make(chan struct{})
	f := newFixture(t, authserver.Options{AccessTTL: time.Minute, NoReuseDetection: true, OnRefresh: func(n int64) {
		if n == 1 {
			<-secondDone // hold the first request until the peer's went through
		}
	}})
	a := f.instance(t, f.eng)
	eng2, _ := f.engine(t)
	b := f.instance(t, eng2)
	mustCall(t, a, "auth.login")
	var wg sync.WaitGroup
	var outA string
	var errA error
	wg.Add(1)
	go func() {
		defer wg.Done()
		var out json.RawMessage
		out, errA = a.Call(context.Background(), "auth.refreshAccessToken")
		outA = string(out)
	}()
	for f.srv.Refreshes.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	outB := mustCall(t, b, "auth.refreshAccessToken")
	close(secondDone)
	wg.Wait()
	if errA != nil || outA != `{"refreshed":false,"by":"peer"}` || outB != `{"refreshed":true,"expiresIn":60}` {
		t.Fatalf("a: %s %v; b: %s", outA, errA, outB)
	}
	mustCall(t, a, "auth.getProfile")
}

var (
	runnerOnce sync.Once
	runnerBin  string
)

func buildRunner(t *testing.T) string {
	runnerOnce.Do(func() {
		dir, _ := os.MkdirTemp("", "runner-")
		runnerBin = filepath.Join(dir, "runner")
		if out, err := exec.Command("go", "build", "-o", runnerBin, "../../cmd/runner").CombinedOutput(); err != nil {
			t.Logf("%s", out)
			runnerBin = ""
		}
	})
	if runnerBin == "" {
		t.Fatal("building runner failed")
	}
	return runnerBin
}

func runner(t *testing.T, srv *authserver.Server, db string, args ...string) (string, error) {
	args = append(args, "--store", db, "--log-level", "debug", "--input", "baseUrl="+srv.URL(),
		"--input", "username=demo", "--input", "password=demo-password")
	cmd := exec.Command(buildRunner(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestTwoRunnerProcesses: two processes refresh at once on one store
// file; the second waits for the file and sees the rotated token.
func TestTwoRunnerProcesses(t *testing.T) {
	f := newFixture(t, authserver.Options{AccessTTL: time.Minute})
	f.db.Close() // the processes own the file
	db := f.db.Path()
	if out, err := runner(t, f.srv, db, "run", "package", "auth.login"); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = runner(t, f.srv, db, "run", "package", "auth.refreshAccessToken")
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("process %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	if f.srv.Refreshes.Load() != 2 || f.srv.Reuses.Load() != 0 {
		t.Fatalf("refreshes %d, reuses %d; want 2 and 0", f.srv.Refreshes.Load(), f.srv.Reuses.Load())
	}
}

// TestNoSecretsInOutput runs the flow with --log-level debug and looks for
// the password and every token the server issued in all output.
func TestNoSecretsInOutput(t *testing.T) {
	f := newFixture(t, authserver.Options{AccessTTL: time.Minute})
	f.db.Close()
	db := f.db.Path()
	var all strings.Builder
	for _, args := range [][]string{
		{"run", "package", "auth.login"},
		{"run", "package", "auth.getProfile"},
		{"run", "package", "auth.refreshAccessToken"},
		{"run", "package", "refreshAPI", "--params", `{"refreshtoken": "rt_bogus_value_123"}`},
		{"run", "package", "tokenAuth"},
		{"store", "list", "--app", "refresh-token"},
	} {
		out, _ := runner(t, f.srv, db, args...)
		all.WriteString(out)
	}
	out := all.String()
	if !strings.Contains(out, `"username":"demo"`) || !strings.Contains(out, "level=DEBUG") {
		t.Fatalf("the flow did not run with debug logs:\n%s", out)
	}
	for _, secret := range append(f.srv.Issued(), "demo-password") {
		if strings.Contains(out, secret) {
			t.Errorf("%q appears in the output", secret)
		}
	}
}
