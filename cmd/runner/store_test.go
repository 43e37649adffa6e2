package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/etcdtest"
)

func TestStoreCommandsInProcess(t *testing.T) {
	testStoreCommands(t, filepath.Join(t.TempDir(), "s.db"))
}

// The same commands, the same output, on etcd (DESIGN.md §13).
func TestStoreCommandsOnEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	testStoreCommands(t, srv.URL("cli"))
}

// A run on etcd keeps its values there: a second process reads them.
func TestRunOnEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	dir := writePackage(t, counterPackage)
	env := []string{"MODRUN_STORE=" + srv.URL("runs")}
	for want := 1; want <= 2; want++ {
		out, errOut, code := runBinary(t, env, "run", dir, "c.bump")
		if code != 0 || strings.TrimSpace(out) != fmt.Sprint(want) {
			t.Fatalf("run %d: exit %d, stdout %q, stderr %q", want, code, out, errOut)
		}
	}
	out, errOut, code := runBinary(t, env, "store", "get", "--app", "counter", "n")
	if code != 0 || out != "2\n" {
		t.Fatalf("store get: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// etcd gone: the run fails by its deadline naming the endpoint.
	srv.Stop()
	start := time.Now()
	_, errOut, code = runBinary(t, env, "run", dir, "c.bump", "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, srv.Endpoint) {
		t.Fatalf("etcd down: exit %d, stderr %q; want exit 1 naming %s", code, errOut, srv.Endpoint)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("etcd down: the run took %v", d)
	}
}

func testStoreCommands(t *testing.T, db string) {
	st := func(args ...string) (string, string, int) {
		return runCLI(t, "", append([]string{"store", "--store", db}, args...)...)
	}
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"set", "--app", "a", "greeting", `"hi"`}, 0, "", ""},
		{[]string{"set", "--app", "a", "n", `{"x": [1, 2]}`}, 0, "", ""},
		{[]string{"get", "--app", "a", "greeting"}, 0, `"hi"` + "\n", ""},
		{[]string{"get", "--app", "a", "n"}, 0, `{"x":[1,2]}` + "\n", ""},
		{[]string{"get", "--app", "b", "greeting"}, 1, "", "no such key"},
		{[]string{"get", "--app", "a", "missing"}, 1, "", "no such key"},
		{[]string{"set", "--app", "a", "k", "word"}, 2, "", `a string needs quotes`},
		{[]string{"set", "--app", "a", "refreshtoken", `"rt-secret-value"`}, 0, "", ""},
		{[]string{"list", "--app", "a"}, 0, "{\n  \"greeting\": \"hi\",\n  \"n\": {\"x\":[1,2]},\n  \"refreshtoken\": \"[REDACTED]\"\n}\n", ""},
		{[]string{"get", "--app", "a", "refreshtoken"}, 0, `"[REDACTED]"` + "\n", ""},
		{[]string{"get", "--app", "a", "refreshtoken", "--reveal"}, 0, `"rt-secret-value"` + "\n", ""},
		{[]string{"rm", "--app", "a", "greeting"}, 0, "", ""},
		{[]string{"get", "--app", "a", "greeting"}, 1, "", "no such key"},
		{[]string{"clear", "--app", "a"}, 0, "", ""},
		{[]string{"list", "--app", "a"}, 0, "{}\n", ""},
		{[]string{"list"}, 0, "{}\n", ""},
		{[]string{"set", "--app", "b", "x", "1"}, 0, "", ""},
		{[]string{"get", "x"}, 0, "1\n", ""},
		{[]string{"set", "--app", "c", "y", "2"}, 0, "", ""},
		{[]string{"list"}, 2, "", "--app is required: the store holds apps b, c"},
		{[]string{"get", "--app", "a"}, 2, "", "want KEY"},
		{[]string{"set", "--app", "a", strings.Repeat("k", 1025), "1"}, 1, "", "invalid key"},
	} {
		out, errOut, code := st(tc.args...)
		if code != tc.code || out != tc.out || !strings.Contains(errOut, tc.err) {
			t.Errorf("store %v: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
				tc.args, code, out, errOut, tc.code, tc.out, tc.err)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"run"},
		{"run", "a", "b", "c"},
		{"store", "list", "--app", "a", "--no-such-flag"},
		{"list", "--log-level", "loud"},
		{"list", "--log-format", "xml"},
		{"run", "./x", "q", "--params", "{bad"},
		{"run", "./x", "m.f", "--args", `{"not": "an array"}`},
		{"run", "./x", "m.f", "--input", "novalue"},
	} {
		_, errOut, code := runCLI(t, "", args...)
		if code != 2 || !strings.HasPrefix(errOut, "runner: ") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with a message", args, code, errOut)
		}
	}
}

func TestHelp(t *testing.T) {
	out, _, code := runCLI(t, "", "--help")
	for _, cmd := range []string{"run", "store", "publish", "list", "validate", "new"} {
		if !strings.Contains(out, cmd) {
			t.Errorf("help does not list %s:\n%s", cmd, out)
		}
	}
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
}

func TestStoreThroughTheBinary(t *testing.T) {
	dir := t.TempDir()
	env := []string{"MODRUN_STORE=", "XDG_DATA_HOME=" + dir}
	if _, errOut, code := runBinary(t, env, "store", "set", "--app", "x", "k", "[1, 2]"); code != 0 {
		t.Fatalf("set: %d %s", code, errOut)
	}
	out, _, code := runBinary(t, env, "store", "get", "--app", "x", "k")
	if code != 0 || out != "[1,2]\n" {
		t.Fatalf("get: %d %q", code, out)
	}
	// The default location is $XDG_DATA_HOME/modrun/store.db.
	out, _, _ = runBinary(t, []string{"MODRUN_STORE=" + filepath.Join(dir, "modrun", "store.db")}, "store", "get", "--app", "x", "k")
	if out != "[1,2]\n" {
		t.Fatalf("the value is not in the default store file: %q", out)
	}
	_, errOut, code := runBinary(t, env, "store", "get", "--app", "x", "nope")
	if code != 1 || !strings.Contains(errOut, "no such key") {
		t.Fatalf("missing key: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, env, "store", "set", "--app", "x", "k", "word")
	if code != 2 || !strings.Contains(errOut, `a string needs quotes`) {
		t.Fatalf("invalid JSON: %d %q", code, errOut)
	}
}

// TestServeOnEtcd: runner serve on an etcd store answers runs, /readyz is
// 503 while etcd is down and 200 again once it is back, and the runs'
// writes made before the outage are still there.
func TestServeOnEtcd(t *testing.T) {
	etcd := etcdtest.Start(t)
	pkg := writePackage(t, counterPackage)
	const token = "test-token-etcd-0123456789"
	srv := startServe(t, token, pkg, "--store", etcd.URL("serve"))
	defer srv.stop()
	for want := 1.0; want <= 3; want++ {
		code, body, _ := srv.call("POST", "/v1/run/counter/c.bump", `{"args": []}`)
		if code != 200 || body["result"] != want {
			t.Fatalf("run: %d %v", code, body)
		}
	}
	ready := func() (int, string) {
		code, body, _ := srv.callAs("", "GET", "/readyz", "")
		return code, fmt.Sprint(body["reason"])
	}
	if code, why := ready(); code != 200 {
		t.Fatalf("/readyz with etcd up: %d %s", code, why)
	}
	etcd.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, why := ready()
		if code == 503 && strings.Contains(why, etcd.Endpoint) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with etcd down: %d %q; want 503 naming %s", code, why, etcd.Endpoint)
		}
		time.Sleep(100 * time.Millisecond)
	}
	etcd.Restart()
	deadline = time.Now().Add(15 * time.Second)
	for {
		if code, _ := ready(); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			code, why := ready()
			t.Fatalf("/readyz after etcd returned: %d %s", code, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body, _ := srv.call("POST", "/v1/run/counter/c.bump", `{"args": []}`)
	if code != 200 || body["result"] != 4.0 {
		t.Fatalf("run after the outage: %d %v; want 4 (no acknowledged write lost)", code, body)
	}
}

var counterPackage = map[string]string{
	"package.yaml": "name: counter\nversion: 1.0.0\n",
	"c.js":         `export default { async bump() { const n = (appsmith.store.n || 0) + 1; await storeValue("n", n); return n; } };`,
}
