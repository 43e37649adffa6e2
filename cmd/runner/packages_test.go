package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modrun/modrun/examples/refresh-token/authserver"
)

func TestNewValidatesAndRuns(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path": %q}`, r.URL.Path)
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "hello")
	out, errOut, code := runCLI(t, "", "new", dir)
	if code != 0 || !strings.Contains(out, "created package hello") {
		t.Fatalf("new: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, "", "validate", dir); code != 0 || !strings.Contains(out, "ok: hello@0.1.0, 2 module(s)") {
		t.Fatalf("validate: %d %s %s", code, out, errOut)
	}
	db := filepath.Join(t.TempDir(), "s.db")
	out, errOut, code = runCLI(t, "", "run", dir, "main.fetchAndRemember", "--store", db, "--input", "baseUrl="+srv.URL, "--args", `["health/x y"]`)
	if code != 0 || out != `{"calls":1,"data":{"path":"/health/x y"}}`+"\n" {
		t.Fatalf("run: %d %q %s", code, out, errOut)
	}
	out, _, code = runCLI(t, "", "store", "get", "--store", db, "--app", "hello", "lastFetch")
	if code != 0 || !strings.Contains(out, `"path":"health/x y"`) {
		t.Fatalf("the run did not store: %d %s", code, out)
	}
	_, errOut, code = runCLI(t, "", "run", dir, "main.fetchAndRemember", "--store", db)
	if code != 1 || !strings.Contains(errOut, `required input "baseUrl" is not set: give --input baseUrl=VALUE (or $MODRUN_INPUT_BASEURL)`) {
		t.Fatalf("missing input: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "new", dir); code != 1 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("new over a package: %d %s", code, errOut)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	out, errOut, code := runCLI(t, "", "validate", "../../packages/testdata/broken/bindings")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"../../packages/testdata/broken/bindings/q.query.yaml:1:27: binding \"inputs.nope\"", "bindings/r.query.yaml:4: unknown field \"extra\"", "runner: ../../packages/testdata/broken/bindings: 8 problem(s)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestPublishListRunByRange(t *testing.T) {
	reg := t.TempDir()
	db := filepath.Join(t.TempDir(), "s.db")
	src := t.TempDir()
	write := func(version, body string) {
		os.WriteFile(filepath.Join(src, "package.yaml"), []byte("name: calc\nversion: "+version+"\n"), 0o644)
		os.WriteFile(filepath.Join(src, "m.js"), []byte("export default { v() { return "+body+"; } };"), 0o644)
	}
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		write(v, `"`+v+`"`)
		out, errOut, code := runCLI(t, "", "publish", src, "--registry", reg)
		if code != 0 || !strings.HasPrefix(out, "calc@"+v+" sha256:") {
			t.Fatalf("publish %s: %d %q %s", v, code, out, errOut)
		}
	}
	// Same version, same content: a no-op with the same digest.
	first, _, _ := runCLI(t, "", "list", "--registry", reg)
	out, _, code := runCLI(t, "", "publish", src, "--registry", reg)
	if code != 0 || !strings.Contains(first, strings.TrimSpace(out)) {
		t.Fatalf("republish: %d %q not in %q", code, out, first)
	}
	// Same version, other content: refused.
	write("2.0.0", `"changed"`)
	if _, errOut, code := runCLI(t, "", "publish", src, "--registry", reg); code != 1 || !strings.Contains(errOut, "already published with different content") {
		t.Fatalf("overwrite: %d %s", code, errOut)
	}
	if lines := strings.Split(strings.TrimSpace(first), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "calc@1.1.0 sha256:") {
		t.Fatalf("list: %q", first)
	}
	for ref, want := range map[string]string{"calc@^1": `"1.1.0"`, "calc@~1.0": `"1.0.0"`, "calc": `"2.0.0"`} {
		out, errOut, code := runCLI(t, "", "run", ref, "m.v", "--registry", reg, "--store", db)
		if code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("run %s: %d %q %s", ref, code, out, errOut)
		}
	}
	_, errOut, code := runCLI(t, "", "run", "calc@^3", "m.v", "--registry", reg, "--store", db)
	if code != 1 || !strings.Contains(errOut, "published versions: 1.0.0, 1.1.0, 2.0.0") {
		t.Fatalf("unsatisfiable: %d %s", code, errOut)
	}
	// Tampering with a published bundle is detected when it is loaded.
	os.WriteFile(filepath.Join(reg, "calc", "1.1.0.tgz"), []byte("not the bundle"), 0o644)
	_, errOut, code = runCLI(t, "", "run", "calc@^1", "m.v", "--registry", reg, "--store", db)
	if code != 1 || !strings.Contains(errOut, "digest mismatch") {
		t.Fatalf("tampered: %d %s", code, errOut)
	}
}

// TestSessionValuesNeverReachTheFile: persist=false values live only as
// long as the process.
func TestSessionValuesNeverReachTheFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: s\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default {
	async go() {
		storeValue("kept", 1);
		storeValue("session", "only here", false);
		return [appsmith.store.kept, appsmith.store.session];
	},
};`), 0o644)
	db := filepath.Join(t.TempDir(), "s.db")
	out, errOut, code := runBinary(t, nil, "run", dir, "m.go", "--store", db)
	if code != 0 || out != `[1,"only here"]`+"\n" {
		t.Fatalf("run: %d %q %s", code, out, errOut)
	}
	out, _, _ = runBinary(t, nil, "store", "list", "--app", "s", "--store", db)
	if out != "{\n  \"kept\": 1\n}\n" {
		t.Fatalf("after the process exited the file holds %q", out)
	}
}

// TestConcurrentPublishProcesses: two processes publish one version with
// different content; one wins, the other is refused, nothing is torn.
func TestConcurrentPublishProcesses(t *testing.T) {
	reg := t.TempDir()
	var dirs []string
	for i := range 2 {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "package.yaml"), []byte("name: race\nversion: 1.0.0\n"), 0o644)
		os.WriteFile(filepath.Join(d, "m.js"), []byte(fmt.Sprintf("export default { v: %d };", i)), 0o644)
		dirs = append(dirs, d)
	}
	type res struct {
		out, err string
		code     int
	}
	results := make(chan res, 2)
	for _, d := range dirs {
		go func() {
			out, errOut, code := runBinary(t, nil, "publish", d, "--registry", reg)
			results <- res{out, errOut, code}
		}()
	}
	a, b := <-results, <-results
	if a.code+b.code != 1 {
		t.Fatalf("want one success and one refusal: %+v %+v", a, b)
	}
	won := a
	if a.code != 0 {
		won = b
	}
	list, _, _ := runBinary(t, nil, "list", "--registry", reg)
	if list != won.out {
		t.Fatalf("registry lists %q, the winner printed %q", list, won.out)
	}
}

// TestReadmeFirstCommands: the README's first CLI commands, against the
// example's local API (go run ./examples/refresh-token -serve), answer
// with data, not 404 (issue 32: the first command a reader copied
// answered 404).
func TestReadmeFirstCommands(t *testing.T) {
	api := httptest.NewServer(authserver.New(authserver.Options{}).Handler())
	defer api.Close()
	dir := filepath.Join(t.TempDir(), "hello")
	if _, errOut, code := runCLI(t, "", "new", dir); code != 0 {
		t.Fatalf("new: %s", errOut)
	}
	db := filepath.Join(t.TempDir(), "s.db")
	out, errOut, code := runCLI(t, "", "run", dir, "main.fetchAndRemember", "--store", db, "--input", "baseUrl="+api.URL, "--args", `["health"]`)
	if code != 0 || out != `{"calls":1,"data":{"status":"ok"}}`+"\n" {
		t.Fatalf("run main.fetchAndRemember: %d %q %s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "", "run", dir, "getJSON", "--store", db, "--input", "baseUrl="+api.URL, "--params", `{"path": "health"}`)
	if code != 0 || out != `{"status":"ok"}`+"\n" {
		t.Fatalf("run getJSON: %d %q %s", code, out, errOut)
	}
}

// TestJSONOutputsParse: every --json output parses, and says what the
// text output says (issue 32).
func TestJSONOutputsParse(t *testing.T) {
	reg := t.TempDir()
	dir := filepath.Join(t.TempDir(), "hello")
	runCLI(t, "", "new", dir)
	var v struct {
		Dir, Package, Version string
		OK                    bool
		Modules               int
		Problems              []struct {
			File, Message string
			Line, Col     int
		}
	}
	out, _, code := runCLI(t, "", "validate", dir, "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || !v.OK || v.Package != "hello" || v.Modules != 2 || len(v.Problems) != 0 {
		t.Fatalf("validate --json of a good package: %d %q %v", code, out, err)
	}
	os.WriteFile(filepath.Join(dir, "main.js"), []byte("export default { f() { return nope } }"), 0o644)
	out, _, code = runCLI(t, "", "validate", dir, "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.OK || len(v.Problems) == 0 || v.Problems[0].Line == 0 || !strings.HasSuffix(v.Problems[0].File, "main.js") {
		t.Fatalf("validate --json of a bad package: %d %q %v", code, out, err)
	}
	os.WriteFile(filepath.Join(dir, "main.js"), []byte("export default { f() { return 1 } }"), 0o644)
	if _, errOut, code := runCLI(t, "", "publish", dir, "--registry", reg); code != 0 {
		t.Fatalf("publish: %s", errOut)
	}
	var list []struct{ Name, Version, Digest string }
	out, _, _ = runCLI(t, "", "list", "--registry", reg, "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != "hello" || list[0].Version != "0.1.0" || list[0].Digest == "" {
		t.Fatalf("list --json: %q %v", out, err)
	}
	out, _, _ = runCLI(t, "", "list", "--registry", t.TempDir(), "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 0 {
		t.Fatalf("list --json of an empty registry: %q %v", out, err)
	}
	var ver struct{ Version, Go string }
	out, _, _ = runCLI(t, "", "version", "--json")
	if err := json.Unmarshal([]byte(out), &ver); err != nil || ver.Version == "" || !strings.HasPrefix(ver.Go, "go") {
		t.Fatalf("version --json: %q %v", out, err)
	}
	db := filepath.Join(t.TempDir(), "s.db")
	runCLI(t, "", "store", "set", "--store", db, "--app", "a", "k", `{"token": "abc", "n": 1}`)
	var store map[string]any
	out, _, _ = runCLI(t, "", "store", "list", "--store", db, "--app", "a", "--json")
	if err := json.Unmarshal([]byte(out), &store); err != nil || store["k"].(map[string]any)["n"] != 1.0 {
		t.Fatalf("store list --json: %q %v", out, err)
	}
}
