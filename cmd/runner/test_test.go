package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modrun/modrun/examples/refresh-token/authserver"
	"github.com/modrun/modrun/internal/testbin"
)

// copyDir copies a package directory (and its tests) into a temp dir.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

const examplePkg = "../../examples/refresh-token/package"

// TestRunnerTestReplaysOffline: the example's cases pass from their
// cassettes with no server anywhere (DESIGN §21), and --json parses.
func TestRunnerTestReplaysOffline(t *testing.T) {
	out, errOut, code := runCLI(t, "", "test", examplePkg)
	if code != 0 || !strings.Contains(out, "5 passed, 0 failed") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = runCLI(t, "", "test", examplePkg, "--json", "--run", "^(login|profile)")
	var rs []struct {
		Name string
		OK   bool
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil || code != 0 || len(rs) != 2 || !rs[0].OK {
		t.Fatalf("--json --run login: %d %v\n%s", code, err, out)
	}
}

// TestRunnerTestRecordsIdentically: --record against the example's auth
// service (on a port of its own) rewrites every cassette byte for byte:
// the base URL, the password and the tokens are placeholders.
func TestRunnerTestRecordsIdentically(t *testing.T) {
	srv := authserver.New(authserver.Options{})
	if err := srv.Start(0); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := copyDir(t, examplePkg)
	os.RemoveAll(filepath.Join(dir, "tests", "cassettes"))
	out, errOut, code := runCLI(t, "", "test", dir, "--record", "--input", "baseUrl="+srv.URL())
	if code != 0 || !strings.Contains(out, "5 passed") || !strings.Contains(out, "recorded 2 request(s)") {
		t.Fatalf("record: exit %d\n%s\n%s", code, out, errOut)
	}
	want, _ := filepath.Glob(filepath.Join(examplePkg, "tests", "cassettes", "*.yaml"))
	if len(want) != 5 {
		t.Fatalf("%d committed cassettes", len(want))
	}
	// The auth service's profile answers with the token's expiry time,
	// which no two recordings share: it is compared as a time.
	stamp := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	for _, w := range want {
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(dir, "tests", "cassettes", filepath.Base(w)))
		if err != nil || stamp.ReplaceAllString(string(a), "TIME") != stamp.ReplaceAllString(string(b), "TIME") {
			t.Errorf("%s differs from the committed one:\n%s\n--- committed:\n%s", filepath.Base(w), b, a)
		}
		if strings.Contains(string(b), "demo-password") || strings.Contains(string(b), srv.URL()) {
			t.Errorf("%s holds the password or the URL", filepath.Base(w))
		}
	}
}

// TestRunnerTestFails: a wrong expectation and an unrecorded request each
// fail their case, naming why, and runner test exits 1.
func TestRunnerTestFails(t *testing.T) {
	dir := copyDir(t, examplePkg)
	os.WriteFile(filepath.Join(dir, "tests", "more.test.yaml"), []byte(`cases:
  - name: wrong plan
    before: [auth.login]
    run: auth.getProfile
    inputs: {username: demo, password: demo-password}
    expect: {result: {plan: gold}}
  - name: never recorded
    run: auth.login
    inputs: {username: ada, password: other-password}
`), 0o644)
	// wrong plan makes the requests "profile after login" recorded.
	rec, _ := os.ReadFile(filepath.Join(dir, "tests", "cassettes", "profile-after-login.yaml"))
	os.WriteFile(filepath.Join(dir, "tests", "cassettes", "wrong-plan.yaml"), rec, 0o644)
	out, _, code := runCLI(t, "", "test", dir)
	if code != 1 || !strings.Contains(out, "FAIL wrong plan") || !strings.Contains(out, `at plan: want "gold"`) ||
		!strings.Contains(out, "FAIL never recorded") || !strings.Contains(out, "no recorded response: POST __input_baseUrl__/api/user/login/") ||
		!strings.Contains(out, "5 passed, 2 failed") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if strings.Contains(out, "other-password") {
		t.Error("a secret input in the output")
	}
}

// TestSchemaAndNew: runner schema writes the repository's schemas;
// runner new wires them in, and its package still validates.
func TestSchemaAndNew(t *testing.T) {
	dir := t.TempDir()
	if out, errOut, code := runCLI(t, "", "schema", dir); code != 0 || !strings.Contains(out, "package.schema.json") {
		t.Fatalf("schema: %d %s %s", code, out, errOut)
	}
	for _, f := range []string{"package.schema.json", "query.schema.json"} {
		got, _ := os.ReadFile(filepath.Join(dir, f))
		want, _ := os.ReadFile(filepath.Join("../../schema", f))
		if len(want) == 0 || string(got) != string(want) {
			t.Errorf("%s differs from schema/%s", f, f)
		}
	}
	pkg := filepath.Join(t.TempDir(), "hello")
	if _, errOut, code := runCLI(t, "", "new", pkg); code != 0 {
		t.Fatalf("new: %s", errOut)
	}
	y, _ := os.ReadFile(filepath.Join(pkg, "package.yaml"))
	if !strings.HasPrefix(string(y), "# yaml-language-server: $schema=.modrun/package.schema.json") {
		t.Errorf("package.yaml does not name its schema:\n%s", y)
	}
	if _, err := os.Stat(filepath.Join(pkg, ".modrun", "query.schema.json")); err != nil {
		t.Error(err)
	}
	if _, errOut, code := runCLI(t, "", "validate", pkg); code != 0 {
		t.Errorf("validate: %s", errOut)
	}
}

// TestTypesCheckWithTSC: runner types writes the example's committed
// modrun.d.ts exactly (so it cannot drift), and a real TypeScript compiler
// checks the example's and runner new's JS modules against theirs — and
// flags a call of a member a query module does not have.
func TestTypesCheckWithTSC(t *testing.T) {
	tsc := testbin.Need(t, "node-typescript", "tsc")
	dir := copyDir(t, examplePkg)
	if out, errOut, code := runCLI(t, "", "types", dir); code != 0 || !strings.Contains(out, "modrun.d.ts") {
		t.Fatalf("types: %d %s %s", code, out, errOut)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "modrun.d.ts"))
	want, _ := os.ReadFile(filepath.Join(examplePkg, "modrun.d.ts"))
	if string(got) != string(want) {
		t.Errorf("runner types differs from the committed examples/refresh-token/package/modrun.d.ts (run runner types on it)")
	}
	scaffold := filepath.Join(t.TempDir(), "hello")
	if _, errOut, code := runCLI(t, "", "new", scaffold); code != 0 {
		t.Fatal(errOut)
	}
	for _, d := range []string{dir, scaffold} {
		if out, err := exec.Command(tsc, "-p", filepath.Join(d, "jsconfig.json")).CombinedOutput(); err != nil {
			t.Errorf("tsc -p %s: %v\n%s", d, err, out)
		}
	}
	js := filepath.Join(scaffold, "main.js")
	src, _ := os.ReadFile(js)
	os.WriteFile(js, []byte(strings.Replace(string(src), "getJSON.run(", "getJSON.rnu(", 1)), 0o644)
	out, err := exec.Command(tsc, "-p", filepath.Join(scaffold, "jsconfig.json")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Property 'rnu' does not exist on type 'ModrunQuery'") {
		t.Errorf("tsc did not flag getJSON.rnu: %v\n%s", err, out)
	}
}

// TestNewUsersPath is docs/authoring.md "Your first hour", step by step
// with the real binary: runner new, validate, test offline, types (tsc
// aside: TestTypesCheckWithTSC), test --record against a real API (the
// cassette comes out as shipped), and serve answering the same call.
func TestNewUsersPath(t *testing.T) {
	api := authserver.New(authserver.Options{})
	if err := api.Start(0); err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	dir := filepath.Join(t.TempDir(), "hello")
	step := func(want string, args ...string) string {
		t.Helper()
		out, errOut, code := runBinary(t, nil, args...)
		if code != 0 || !strings.Contains(out+errOut, want) {
			t.Fatalf("runner %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	step("created package hello", "new", dir)
	step("ok", "validate", dir)
	step("1 passed, 0 failed", "test", dir)
	step("modrun.d.ts", "types", dir)
	shipped, _ := os.ReadFile(filepath.Join(dir, "tests", "cassettes", "fetch-remembers-the-call.yaml"))
	step("1 passed, 0 failed", "test", dir, "--record", "--input", "baseUrl="+api.URL())
	recorded, _ := os.ReadFile(filepath.Join(dir, "tests", "cassettes", "fetch-remembers-the-call.yaml"))
	if string(shipped) != string(recorded) {
		t.Errorf("the scaffold's cassette differs from a recording:\n%s\n--- shipped:\n%s", recorded, shipped)
	}
	step(`"status":"ok"`, "run", dir, "main.fetchAndRemember", "--input", "baseUrl="+api.URL(), "--args", `["health"]`, "--store", filepath.Join(t.TempDir(), "s.db"))
	const token = "first-hour-token-0123456789"
	srv := startServe(t, token, dir, "--input", "baseUrl="+api.URL(), "--store", filepath.Join(t.TempDir(), "serve.db"))
	defer srv.stop()
	if code, body, _ := srv.call("POST", "/v1/run/hello/main.fetchAndRemember", `{"args": ["health"]}`); code != 200 || !strings.Contains(fmt.Sprint(body["result"]), "status:ok") {
		t.Fatalf("serve: %d %v", code, body)
	}
}
