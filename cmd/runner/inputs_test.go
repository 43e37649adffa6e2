package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInputsFromFlagsFilesAndEnvironment: typed inputs parse, @FILE reads
// a file, $MODRUN_INPUT_<NAME> fills what --input does not, and --input
// wins over the environment, which wins over the default.
func TestInputsFromFlagsFilesAndEnvironment(t *testing.T) {
	pkg := writePackage(t, map[string]string{
		"package.yaml": `name: typed
version: 1.0.0
inputs:
  perPage: {type: number, default: 50}
  verbose: {type: boolean, default: false}
  filter: {type: json, default: {a: 1}}
  apiKey: {required: true, secret: true}
  region: {default: eu}
`,
		"m.js": `export default { show() { return [typeof inputs.perPage, inputs.perPage, inputs.verbose, inputs.filter, inputs.apiKey.length, inputs.region] } }`,
	})
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("file-secret-123\n"), 0o600)
	db := filepath.Join(t.TempDir(), "s.db")
	t.Setenv("MODRUN_INPUT_REGION", "us")
	t.Setenv("MODRUN_INPUT_PERPAGE", "7")
	out, stderr, code := runCLI(t, "", "run", pkg, "m.show", "--store", db, "--input", "perPage=5", "--input", "verbose=true",
		"--input", `filter={"b":[2]}`, "--input", "apiKey=@"+keyFile)
	if code != 0 || strings.TrimSpace(out) != `["number",5,true,{"b":[2]},15,"us"]` {
		t.Fatalf("exit %d, out %s, stderr %s", code, out, stderr)
	}
	// The environment fills a required input too.
	t.Setenv("MODRUN_INPUT_APIKEY", "env-secret-456")
	out, _, code = runCLI(t, "", "run", pkg, "m.show", "--store", db)
	if code != 0 || strings.TrimSpace(out) != `["number",7,false,{"a":1},14,"us"]` {
		t.Fatalf("from the environment: exit %d, out %s", code, out)
	}
	_, stderr, code = runCLI(t, "", "run", pkg, "m.show", "--store", db, "--input", "perPage=five")
	if code != 1 || !strings.Contains(stderr, `input perPage: "five" is not a number`) {
		t.Fatalf("a bad number: exit %d, stderr %s", code, stderr)
	}
	_, stderr, code = runCLI(t, "", "run", pkg, "m.show", "--store", db, "--input", "apiKey=@/no/such/file")
	if code != 2 || !strings.Contains(stderr, "--input apiKey=@FILE") {
		t.Fatalf("a missing file: exit %d, stderr %s", code, stderr)
	}
}

func TestEveryMissingInputInOneError(t *testing.T) {
	pkg := writePackage(t, map[string]string{
		"package.yaml": "name: req\nversion: 1.0.0\ninputs:\n  a: {required: true}\n  b: {required: true}\n",
		"m.js":         `export default { f() { return 1 } }`,
	})
	_, stderr, code := runCLI(t, "", "run", pkg, "m.f", "--store", filepath.Join(t.TempDir(), "s.db"))
	if code != 1 || !strings.Contains(stderr, `required inputs "a", "b" are not set: give --input a=VALUE --input b=VALUE (or $MODRUN_INPUT_A, $MODRUN_INPUT_B)`) {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
}

func TestParamsMustBeAnObject(t *testing.T) {
	pkg := writePackage(t, map[string]string{"q.query.yaml": "url: http://127.0.0.1:1/x\n"})
	for _, p := range []string{`["acme"]`, `1`, `null`, `{`} {
		_, stderr, code := runCLI(t, "", "run", pkg, "q", "--params", p)
		if code != 2 || !strings.Contains(stderr, "--params: want a JSON object") {
			t.Errorf("--params %s: exit %d, stderr %s", p, code, stderr)
		}
	}
}
