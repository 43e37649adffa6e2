package js_test

import (
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/js"
)

// TestLibraries: modules that use lodash or moment by their global names
// load and run; others do not pay for them.
func TestLibraries(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
		group() { return _.groupBy([1.3, 2.1, 2.4], Math.floor) },
		when() { return moment.utc("2026-12-01T10:00:00Z").add(1, "day").format("YYYY-MM-DD") },
	}`})
	inst := newInstance(t, pkg, nil, nil)
	if got := call(t, inst, "m.group"); got != `{"1":[1.3],"2":[2.1,2.4]}` {
		t.Errorf("lodash: %s", got)
	}
	if got := call(t, inst, "m.when"); got != `"2026-12-02"` {
		t.Errorf("moment: %s", got)
	}
	plain := load(t, map[string]string{"m.js": `export default { f() { return typeof _ + " " + typeof moment } }`})
	if got := call(t, newInstance(t, plain, nil, nil), "m.f"); got != `"undefined undefined"` {
		t.Errorf("a module using neither: %s", got)
	}
	// engine.JSLibraries names what js.Libraries ships.
	if len(engine.JSLibraries) != len(js.Libraries) {
		t.Errorf("engine lists %d libraries, js ships %d", len(engine.JSLibraries), len(js.Libraries))
	}
	for g, lib := range js.Libraries {
		if engine.JSLibraries[g] != lib.Name+" "+lib.Version {
			t.Errorf("%s: engine says %q, js ships %s %s", g, engine.JSLibraries[g], lib.Name, lib.Version)
		}
	}
}

// BenchmarkLibraryLoad is the cost of a fresh runtime whose package uses
// lodash and moment, against one that uses neither: what a lazy load saves
// every other package.
func BenchmarkLibraryLoad(b *testing.B) {
	for _, c := range []struct{ name, src string }{
		{"none", `export default { f() { return 1 } }`},
		{"lodash", `export default { f() { return _.VERSION } }`},
		{"lodash+moment", `export default { f() { return _.VERSION + moment.version } }`},
	} {
		b.Run(c.name, func(b *testing.B) {
			pkg := load(b, map[string]string{"m.js": c.src})
			b.ReportAllocs()
			for b.Loop() {
				inst := js.NewInstance(pkg, js.Options{})
				call(b, inst, "m.f")
				inst.Close()
			}
		})
	}
}
