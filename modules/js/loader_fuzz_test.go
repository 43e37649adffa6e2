package js

import (
	"strings"
	"testing"

	"github.com/modrun/modrun/engine"
)

// FuzzCompile: any source compiles or fails with an error naming the
// file, never a panic; and the export-default rewrite keeps every line
// and column where it was, changing only the two keywords.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"export default { a() { return 1; } };",
		"export default {\n  async f() { const x = `export default ${1}`; return x; },\n};",
		"// export default\nexport\n  default { 'export default': 1 };",
		"const x = 1; export default { x };",
		"export default 1; export default 2;",
		"export const a = 1;",
		"import x from 'y';",
		"export default { é() { return 'ü'; } };\n",
		"export default {\xff}",
		"/* \n */ export /* c */ default {}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Kind{}.Compile(engine.Source{Name: "m", Path: "m.js", Data: []byte(src)})
		if err != nil && !strings.Contains(err.Error(), "m.js") {
			t.Fatalf("the error does not name the file: %v", err)
		}
		out, _, err := rewrite("m.js", src)
		if err != nil {
			return
		}
		if len(out) != len(src) {
			t.Fatalf("the rewrite changed the length: %d -> %d", len(src), len(out))
		}
		for i := range len(src) {
			if (src[i] == '\n') != (out[i] == '\n') {
				t.Fatalf("the rewrite moved a line break at byte %d", i)
			}
		}
	})
}
