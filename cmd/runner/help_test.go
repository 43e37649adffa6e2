package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, code := runCLI(t, "", args...)
		if code != 0 || !strings.HasPrefix(out, "runner ") || !strings.Contains(out, "go1.") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	// A built binary carries its commit when built from a checkout.
	out, _, code := runBinary(t, nil, "version")
	if code != 0 || !strings.Contains(out, "go1.") {
		t.Errorf("binary: exit %d, %q", code, out)
	}
}

func TestUnknownFlagSuggests(t *testing.T) {
	_, stderr, code := runCLI(t, "", "run", "x", "y", "--inputs", "a=b")
	if code != 2 || !strings.Contains(stderr, "unknown flag: --inputs (did you mean --input?)") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
}

// TestHelpListsEveryVariable: every MODRUN_* variable the code reads is
// in the top-level help.
func TestHelpListsEveryVariable(t *testing.T) {
	help, _, _ := runCLI(t, "", "--help")
	re := regexp.MustCompile(`MODRUN_[A-Z_]+`)
	seen := map[string]bool{}
	for _, data := range repoFiles(t, "../../*.go", "../../*/*.go", "../../*/*/*.go", "cli.go") {
		for _, v := range re.FindAllString(data, -1) {
			if v == "MODRUN_INPUT_" || v == "MODRUN_INPUT_NAME" || strings.HasPrefix(v, "MODRUN_INPUT_") {
				v = "MODRUN_INPUT_<NAME>"
			}
			seen[v] = true
		}
	}
	if len(seen) < 4 {
		t.Fatalf("found only %v", seen)
	}
	for v := range seen {
		if !strings.Contains(help, v) {
			t.Errorf("runner --help does not list %s", v)
		}
	}
}

func TestRunHelpDescribesRun(t *testing.T) {
	out, _, _ := runCLI(t, "", "run", "--help")
	if !strings.Contains(out, "store namespace of the run (default: the package's name)") || strings.Contains(out, "MODRUN_APP") {
		t.Fatalf("run --help:\n%s", out)
	}
	for _, cmd := range []string{"new", "validate"} {
		out, _, _ := runCLI(t, "", cmd, "--help")
		if !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help has no examples", cmd)
		}
	}
}

// TestCompletion: cobra's __complete protocol lists package directories,
// then the package's targets, then store apps.
func TestCompletion(t *testing.T) {
	root := t.TempDir()
	pkg := filepath.Join(root, "hello")
	os.MkdirAll(pkg, 0o755)
	os.WriteFile(filepath.Join(pkg, "package.yaml"), []byte("name: hello\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(pkg, "main.js"), []byte("export default { greet() {}, bye: () => 1 }"), 0o644)
	os.WriteFile(filepath.Join(pkg, "getJSON.query.yaml"), []byte("url: http://h/x\n"), 0o644)
	t.Chdir(root)
	out, _, _ := runCLI(t, "", "__complete", "run", "")
	if !strings.Contains(out, "./hello\n") {
		t.Errorf("packages: %q", out)
	}
	out, _, _ = runCLI(t, "", "__complete", "run", "./hello", "")
	for _, want := range []string{"getJSON\n", "main.bye\n", "main.greet\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("targets %q lack %q", out, want)
		}
	}
	db := filepath.Join(root, "s.db")
	runCLI(t, "", "store", "set", "--store", db, "--app", "tenant-a", "k", "1")
	out, _, _ = runCLI(t, "", "__complete", "store", "list", "--store", db, "--app", "")
	if !strings.Contains(out, "tenant-a\n") {
		t.Errorf("apps: %q", out)
	}
}

func TestPackageArgumentMistakes(t *testing.T) {
	pkg := writePackage(t, map[string]string{"m.js": `export default { f() { return 1 } }`})
	_, stderr, code := runCLI(t, "", "run", filepath.Join(pkg, "package.yaml"), "m.f")
	if code != 1 || !strings.Contains(stderr, "is a package's manifest: pass its directory, "+pkg) {
		t.Errorf("package.yaml: exit %d, %s", code, stderr)
	}
	_, stderr, code = runCLI(t, "", "run", t.TempDir(), "m.f")
	if code != 1 || !strings.Contains(stderr, "no package.yaml: is this a package directory?") {
		t.Errorf("empty dir: exit %d, %s", code, stderr)
	}
	db := filepath.Join(t.TempDir(), "s.db")
	_, stderr, _ = runCLI(t, "", "store", "set", "--store", db, "--app", "a", strings.Repeat("k", 2000), "1")
	if strings.Contains(stderr, strings.Repeat("k", 100)) || !strings.Contains(stderr, "invalid key") {
		t.Errorf("long key echoed: %s", stderr)
	}
}

// TestDirectoryAndPublishedName: a bare name that is both a directory and
// a published package runs the directory, and says so.
func TestDirectoryAndPublishedName(t *testing.T) {
	root := t.TempDir()
	reg := filepath.Join(root, "reg")
	os.MkdirAll(filepath.Join(root, "hello"), 0o755)
	os.WriteFile(filepath.Join(root, "hello", "package.yaml"), []byte("name: hello\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(root, "hello", "m.js"), []byte(`export default { f() { return "dir" } }`), 0o644)
	t.Chdir(root)
	if _, stderr, code := runCLI(t, "", "publish", "hello", "--registry", reg); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code := runCLI(t, "", "run", "hello", "m.f", "--registry", reg, "--store", filepath.Join(root, "s.db"))
	if code != 0 || strings.TrimSpace(out) != `"dir"` || !strings.Contains(stderr, "using the directory") || !strings.Contains(stderr, "NAME@*") {
		t.Fatalf("exit %d, out %s, stderr %s", code, out, stderr)
	}
}
