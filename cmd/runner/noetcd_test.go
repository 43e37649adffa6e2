package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuiltWithoutEtcd: runner built with -tags noetcd runs on a bbolt
// store, and refuses an etcd:// store saying how it was built, without
// the URL's password (bench/coldstart.sh measures what the tag saves).
func TestBuiltWithoutEtcd(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "runner-noetcd")
	if out, err := exec.Command("go", "build", "-tags", "noetcd", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags noetcd: %v\n%s", err, out)
	}
	pkg := writePackage(t, map[string]string{
		"package.yaml": "name: cold\nversion: 1.0.0\n",
		"m.js":         `export default { one() { return 1 } }`,
	})
	run := func(store string) (string, error) {
		cmd := exec.Command(bin, "run", pkg, "m.one", "--store", store)
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(filepath.Join(t.TempDir(), "s.db")); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("on a bbolt store: %v %q, want 1", err, out)
	}
	out, err := run("etcd://root:hunter2-secret@127.0.0.1:1/x")
	if err == nil || !strings.Contains(out, "built with -tags noetcd") {
		t.Errorf("on an etcd store: %v %q, want a refusal naming the build tag", err, out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("the refusal quotes the password: %q", out)
	}
}
