package js

import (
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// TestHostImportsNoGoja: the instance's side of the host — scheduling,
// runs, deadlines — does not run JS, so it does not import goja (issue
// 27). A realm reaches the instance only through host and env.
func TestHostImportsNoGoja(t *testing.T) {
	for _, f := range []string{"host.go", "instance.go", "run.go", "loop.go"} {
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/dop251/goja" {
				t.Errorf("%s imports goja: JS belongs to the realm's files (vm.go and the globals)", f)
			}
		}
	}
}
