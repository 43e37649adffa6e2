package js_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/js"
)

func compileJS(src string, modules ...string) (engine.Module, error) {
	pkg := &engine.PackageInfo{Name: "t", Modules: map[string]string{"m": "m.js"}}
	for _, m := range modules {
		pkg.Modules[m] = m + ".query.yaml"
	}
	return js.Kind{}.Compile(engine.Source{Name: "m", Path: "m.js", Data: []byte(src), Pkg: pkg})
}

// TestFreeIdentifiers: a name that is no local, module, modrun global or
// built-in is a load error at its position; declared names of every kind
// and typeof guards are not.
func TestFreeIdentifiers(t *testing.T) {
	ok := `export default {
	n: 0,
	async f(a, {b, c: [d]}, ...rest) {
		const {e, f: g = 1} = a; let [h, , i] = rest; var j;
		for (const k of rest) j = k;
		for (let l = 0; l < 2; l++) j = l;
		for (const key in a) j = key;
		try { j = JSON.parse("1") } catch (err) { console.log(err, arguments.length) }
		class K extends Error { #p = 1; m() { return this.#p } static s = 2 }
		function helper(x = Math.PI) { return x }
		const arrow = (y, z = y) => y + z;
		label: for (;;) { break label }
		if (typeof optionalLib !== "undefined") optionalLib.go();
		const o = {b, [h]: d, e, get x() { return 1 }};
		({b} = o);
		await storeValue("k", appsmith.store.k ?? inputs.baseUrl);
		setTimeout(() => {}, 1);
		return [api.run(), e, g, h, i, K, helper(), arrow(1), new Date(), globalThis, undefined, NaN, this.n];
	},
};`
	if _, err := compileJS(ok, "api"); err != nil {
		t.Fatalf("a clean module: %v", err)
	}
	for _, c := range []struct{ src, want string }{
		{"export default {\n  f() { return repo.run() },\n};", "m.js:2:16: repo is not defined"},
		{"export default {\n  async f() { await storeVal('k', 1) },\n};", "m.js:2:21: storeVal is not defined"},
		{"export default { f() { return {short} } };", "m.js:1:32: short is not defined"},
		{"export default function () {}", "m.js:1:16: export default must be an object literal"},
		{"export default 42;", "export default must be an object literal"},
	} {
		_, err := compileJS(c.src, "api")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n err = %v\nwant %q", c.src, err, c.want)
		}
	}
}

func TestFunctionsOfTheDefaultExport(t *testing.T) {
	m, err := compileJS(`export default { v: 1, a() {}, b: async () => 1, c: function () {}, get d() { return 1 }, ["e"]() {} };`)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(engine.FunctionLister).Functions()
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Functions() = %v, want %v", got, want)
	}
}

// TestGlobalsListed: js.Globals names exactly what a runtime adds to
// JavaScript's own globals.
func TestGlobalsListed(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
		f() {
			const base = new Set(Object.getOwnPropertyNames(globalThis));
			return Object.getOwnPropertyNames(globalThis).filter(n => n !== "m").sort();
		},
	}`})
	inst := newInstance(t, pkg, nil, nil)
	out := call(t, inst, "m.f")
	for _, g := range js.Globals {
		if !strings.Contains(out, `"`+g+`"`) {
			t.Errorf("js.Globals names %s, which the runtime does not define", g)
		}
	}
}
