package engine_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEngineImportsOnlyStdlib keeps engine the hub: it must never depend on
// goja, bbolt or a module package (DESIGN §10).
func TestEngineImportsOnlyStdlib(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/modrun/modrun/engine").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/modrun/modrun/engine" {
			t.Errorf("engine depends on %s; it may import only the standard library", dep)
		}
	}
}

// TestLayering keeps the hub shape as the project grows (issue 27): each
// part imports engine, the helpers below it (binding, internal/...) and
// nothing sideways — a store, a module kind, the server, the worker
// protocol, the importer never import one another. Only the wiring (the
// root package modrun, cmd/, examples/, bench/, deploy/, docs/) imports
// parts.
func TestLayering(t *testing.T) {
	const mod = "github.com/modrun/modrun"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", mod+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	// layer is 0 for the hub, 1 for what parts build on, 2 for a part,
	// 3 for the wiring.
	layer := func(pkg string) int {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
		switch {
		case rel == "engine":
			return 0
		case rel == "binding", strings.HasPrefix(rel, "internal/"), strings.HasPrefix(rel, "engine/"):
			return 1
		case rel == "", strings.HasPrefix(rel, "cmd/"), strings.HasPrefix(rel, "examples/"), strings.HasPrefix(rel, "bench/"),
			rel == "deploy", rel == "docs":
			return 3
		}
		return 2
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		for _, imp := range imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			l, li := layer(pkg), layer(imp)
			if ok := l == 3 || l == 2 && li < 2 || l == 1 && li <= 1; !ok {
				t.Errorf("%s imports %s: a part imports only engine, binding and internal/...; wiring belongs in cmd/runner or the root package", pkg, imp)
			}
		}
	}
}
