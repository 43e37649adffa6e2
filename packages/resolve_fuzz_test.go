package packages_test

import (
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/modrun/modrun/packages"
)

// FuzzResolve holds the resolver of NAME@RANGE references — typed on the
// command line and, with runner serve --registry, named by API callers —
// to an answer or an error, never a panic; and a version it resolves to
// satisfies the range.
func FuzzResolve(f *testing.F) {
	reg := &packages.Registry{Dir: f.TempDir()}
	for _, v := range []string{"1.0.0", "1.2.0", "1.10.1", "2.0.0-beta.1", "2.0.0"} {
		if _, err := reg.Publish("demo", v, files(v, "export default {v: '"+v+"'};")); err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range []string{"demo", "demo@^1", "demo@~1.2", "demo@>=1.1 <1.3", "demo@1.x", "demo@*", "demo@", "demo@@",
		"demo@^1 || ^2", "demo@>=1.0.0-0", "demo@v1", "demo@1.2.3-", "demo@=", "demo@~", "demo@1 - 2", "../demo", "demo@x.x.x-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		p, err := reg.Resolve(ref)
		if err != nil {
			return
		}
		if p.Name != "demo" {
			t.Fatalf("%q resolved to package %q", ref, p.Name)
		}
		if _, c, ok := strings.Cut(ref, "@"); ok {
			v := semver.MustParse(p.Version)
			if cs, err := semver.NewConstraint(c); err != nil || !cs.Check(v) {
				t.Fatalf("%q resolved to %s, outside its range (%v)", ref, p.Version, err)
			}
		}
	})
}
