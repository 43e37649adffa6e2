package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/reference.md's table of serve's variables")

// serveEnvTable is docs/reference.md's table of serve's flags and their
// variables, made from the flags themselves.
func serveEnvTable() string {
	c := &cli{}
	root := c.root()
	serve, _, _ := root.Find([]string{"serve"})
	serve.InheritedFlags() // merges the persistent flags into Flags()
	var b strings.Builder
	b.WriteString("| flag | variable | default | what |\n|---|---|---|---|\n")
	for _, f := range serveEnvFlags(serve) {
		def := f.DefValue
		if def == "" {
			def = " "
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | `%s` | %s |\n", f.Name, envName(f.Name), def, strings.ReplaceAll(f.Usage, "|", "\\|"))
	}
	return b.String()
}

// TestServeEnvTableIsCurrent: docs/reference.md lists every serve flag
// with its variable, as the flags say (go test ./cmd/runner -update-docs
// rewrites it), so the table cannot drift from the code.
func TestServeEnvTableIsCurrent(t *testing.T) {
	const path = "../../docs/reference.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- serve-env:start -->\n", "<!-- serve-env:end -->"
	i, j := bytes.Index(doc, []byte(start)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s has no %q … %q block", path, start, end)
	}
	want := serveEnvTable()
	if got := string(doc[i+len(start) : j]); got != want {
		if *updateDocs {
			out := append(append(append([]byte{}, doc[:i+len(start)]...), want...), doc[j:]...)
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("docs/reference.md's table of serve's variables is stale; go test ./cmd/runner -run TestServeEnvTableIsCurrent -update-docs\n got:\n%s\nwant:\n%s", got, want)
	}
}

// TestServeReadsItsVariables: a serve flag's variable sets it, and the
// flag wins over the variable.
func TestServeReadsItsVariables(t *testing.T) {
	pkg := servePackage(t, "")
	// A bad value in a variable is a usage error naming the variable.
	_, errOut, code := runBinary(t, []string{"MODRUN_TOKEN=env-token-0123456789abcdef", "MODRUN_MAX_CONCURRENT=many"}, "serve", pkg, "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, "MODRUN_MAX_CONCURRENT") {
		t.Fatalf("MODRUN_MAX_CONCURRENT=many: exit %d, %s", code, errOut)
	}
	// The flag wins: the same bad variable with the flag given starts.
	t.Setenv("MODRUN_HISTORY", "7")
	t.Setenv("MODRUN_NAME", "from-env")
	srv := startServe(t, "env-token-0123456789abcdef", pkg, "--store", t.TempDir()+"/s.db", "--name", "from-flag")
	defer srv.stop()
	for range 10 {
		srv.call("POST", "/v1/run/svc/m.hello", `{"args": ["x"]}`)
	}
	_, body, _ := srv.call("POST", "/v1/run/svc/m.hello", `{"args": ["x"]}`)
	code, run, _ := srv.call("GET", "/v1/runs/"+body["id"].(string), "")
	if code != 200 || run["server"] != "from-flag" {
		t.Fatalf("--name over MODRUN_NAME: %d %v", code, run)
	}
	if ids := srv.runIDs(t); len(ids) != 7 {
		t.Fatalf("MODRUN_HISTORY=7 kept %d runs", len(ids))
	}
}

// TestHealthcheck: runner healthcheck exits 0 against a ready server and
// 1, with the reason, against nothing.
func TestHealthcheck(t *testing.T) {
	srv := startServe(t, "health-token-0123456789abcdef", servePackage(t, ""), "--store", t.TempDir()+"/s.db")
	defer srv.stop()
	out, errOut, code := runBinary(t, nil, "healthcheck", srv.url)
	if code != 0 || strings.TrimSpace(out) != "ready" {
		t.Fatalf("against a ready server: exit %d, %q %q", code, out, errOut)
	}
	_, errOut, code = runBinary(t, []string{"MODRUN_LISTEN=127.0.0.1:1"}, "healthcheck", "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "not ready") {
		t.Fatalf("against nothing: exit %d, %q", code, errOut)
	}
}

// TestServeSaysWhatItServes: at start, whatever the log level, serve
// prints where its token comes from, each package it serves and its
// address (issue 32: it printed nothing unless asked).
func TestServeSaysWhatItServes(t *testing.T) {
	cmd := exec.Command(runnerBinary(t), "serve", servePackage(t, "schedules:\n  - {every: 1h, run: m.tick}\n"), "--listen", "127.0.0.1:0", "--store", t.TempDir()+"/s.db")
	cmd.Env = append(os.Environ(), "MODRUN_TOKEN=start-token-0123456789abcdef")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var lines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "serving on ") {
			break
		}
	}
	out := strings.Join(lines, "\n")
	for _, want := range []string{"token: from $MODRUN_TOKEN", "package svc@1.0.0: 2 module(s), 1 schedule(s)", "serving on http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve's start does not say %q:\n%s", want, out)
		}
	}
}
