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
