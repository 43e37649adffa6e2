package packages_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/modules/query"
	"github.com/modrun/modrun/packages"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func kinds() []engine.Kind { return []engine.Kind{query.NewKind(), js.Kind{}} }

// TestValidateBrokenPackages checks every load check's message against
// golden files: testdata/broken/CASE/ → testdata/broken/CASE.golden.
func TestValidateBrokenPackages(t *testing.T) {
	dirs, err := filepath.Glob("testdata/broken/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		if strings.HasSuffix(dir, ".golden") {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, err := packages.LoadDir(dir, kinds()...)
			if err == nil {
				t.Fatal("a broken package loaded")
			}
			var got strings.Builder
			for _, p := range packages.Problems(err) {
				got.WriteString(p.Error() + "\n")
			}
			golden := dir + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got.String()), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("problems differ from %s:\n got:\n%s\nwant:\n%s", golden, got.String(), want)
			}
			if strings.Contains(got.String(), "hunter2-secret") {
				t.Error("validate output shows a secret input's value")
			}
		})
	}
}

func TestGoodPackageLoads(t *testing.T) {
	pkg, err := packages.LoadDir("../examples/refresh-token/package", kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Ref() != "refresh-token@1.0.0" || len(pkg.Modules) != 4 || pkg.Module("auth") == nil {
		t.Fatalf("loaded %s with %d modules", pkg.Ref(), len(pkg.Modules))
	}
	if _, err := pkg.ResolveInputs(map[string]any{"username": "u"}); err == nil || !strings.Contains(err.Error(), `required input "password" is not set: give --input password=VALUE (or $MODRUN_INPUT_PASSWORD)`) {
		t.Fatalf("missing required input: %v", err)
	}
}

func files(version, js string) map[string][]byte {
	return map[string][]byte{
		"package.yaml": []byte("name: demo\nversion: " + version + "\n"),
		"m.js":         []byte(js),
	}
}

func TestBundleIsReproducible(t *testing.T) {
	src := "../examples/refresh-token/package"
	var digests []string
	for range 2 {
		// Two checkouts: a copy with other modification times.
		dir := t.TempDir()
		ents, _ := os.ReadDir(src)
		for _, e := range ents {
			data, _ := os.ReadFile(filepath.Join(src, e.Name()))
			p := filepath.Join(dir, e.Name())
			os.WriteFile(p, data, 0o600)
			os.Chtimes(p, time.Now(), time.Unix(int64(len(digests))*1e6, 0))
		}
		pkg, err := packages.LoadDir(dir, kinds()...)
		if err != nil {
			t.Fatal(err)
		}
		_, d, err := packages.Bundle(pkg.Files)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] || !strings.HasPrefix(digests[0], "sha256:") {
		t.Fatalf("digests differ: %v", digests)
	}
}

func TestPublishResolveOpen(t *testing.T) {
	reg := &packages.Registry{Dir: t.TempDir()}
	for _, v := range []string{"1.0.0", "1.2.0", "1.10.1", "2.0.0"} {
		if _, err := reg.Publish("demo", v, files(v, "export default {v: '"+v+"'};")); err != nil {
			t.Fatal(err)
		}
	}
	for ref, want := range map[string]string{
		"demo": "2.0.0", "demo@^1": "1.10.1", "demo@~1.2": "1.2.0", "demo@1.0.0": "1.0.0", "demo@>=1.1 <1.3": "1.2.0",
	} {
		p, err := reg.Resolve(ref)
		if err != nil || p.Version != want {
			t.Errorf("Resolve(%s) = %s, %v; want %s", ref, p.Version, err, want)
		}
	}
	_, err := reg.Resolve("demo@^3")
	if !errors.Is(err, packages.ErrNotFound) || !strings.Contains(err.Error(), "published versions: 1.0.0, 1.2.0, 1.10.1, 2.0.0") {
		t.Errorf("unsatisfiable range: %v", err)
	}
	if _, err := reg.Resolve("nope"); !errors.Is(err, packages.ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
	all, _ := reg.List()
	if len(all) != 4 || all[0].Version != "1.0.0" || all[3].Version != "2.0.0" {
		t.Errorf("List = %v", all)
	}
	if idx, err := os.ReadFile(filepath.Join(reg.Dir, "index.json")); err != nil || !strings.Contains(string(idx), `"version": "1.10.1"`) {
		t.Errorf("index.json: %s, %v", idx, err)
	}
	p, _ := reg.Resolve("demo@1.2.0")
	fs, digest, err := reg.Open(p)
	if err != nil || !strings.Contains(string(fs["m.js"]), "1.2.0") || digest != all[1].Digest {
		t.Fatalf("Open: %v", err)
	}
}

func TestPublishIsImmutable(t *testing.T) {
	reg := &packages.Registry{Dir: t.TempDir()}
	first, err := reg.Publish("demo", "1.0.0", files("1.0.0", "export default {a: 1};"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := reg.Publish("demo", "1.0.0", files("1.0.0", "export default {a: 1};"))
	if err != nil || again.Digest != first.Digest {
		t.Fatalf("identical republish: %v, %v", again, err)
	}
	_, err = reg.Publish("demo", "1.0.0", files("1.0.0", "export default {a: 2};"))
	if !errors.Is(err, packages.ErrExists) || !strings.Contains(err.Error(), first.Digest) {
		t.Fatalf("different content: %v", err)
	}
}

func TestTamperedBundleIsRefused(t *testing.T) {
	reg := &packages.Registry{Dir: t.TempDir()}
	if _, err := reg.Publish("demo", "1.0.0", files("1.0.0", "export default {};")); err != nil {
		t.Fatal(err)
	}
	data, _, _ := packages.Bundle(files("1.0.0", "export default { evil: true };"))
	os.WriteFile(filepath.Join(reg.Dir, "demo", "1.0.0.tgz"), data, 0o644)
	p, _ := reg.Resolve("demo@1.0.0")
	if _, _, err := reg.Open(p); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("tampered bundle: %v", err)
	}
}

func TestConcurrentPublishes(t *testing.T) {
	reg := &packages.Registry{Dir: t.TempDir()}
	var wg sync.WaitGroup
	results := make([]packages.Published, 16)
	errs := make([]error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half publish one content, half another: one content wins,
			// every other attempt either matches it or is refused.
			results[i], errs[i] = reg.Publish("demo", "1.0.0", files("1.0.0", fmt.Sprintf("export default {n: %d};", i%2)))
		}()
	}
	wg.Wait()
	p, _ := reg.Resolve("demo@1.0.0")
	_, winner, err := reg.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 16 {
		switch {
		case errs[i] == nil && results[i].Digest != winner:
			t.Errorf("publish %d succeeded with %s but the registry holds %s", i, results[i].Digest, winner)
		case errs[i] != nil && !errors.Is(errs[i], packages.ErrExists):
			t.Errorf("publish %d: %v", i, errs[i])
		}
	}
	entries, _ := os.ReadDir(filepath.Join(reg.Dir, "demo"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("left a temporary file: %s", e.Name())
		}
	}
}

func tgz(t testing.TB, entries ...*tar.Header) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestHostileBundles(t *testing.T) {
	manifest := &tar.Header{Name: "package.yaml", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}
	for name, data := range map[string][]byte{
		"traversal":   tgz(t, manifest, &tar.Header{Name: "../evil.js", Typeflag: tar.TypeReg, Size: 1}),
		"absolute":    tgz(t, manifest, &tar.Header{Name: "/etc/evil.js", Typeflag: tar.TypeReg, Size: 1}),
		"inner-dot":   tgz(t, manifest, &tar.Header{Name: "a/../../evil.js", Typeflag: tar.TypeReg, Size: 1}),
		"symlink":     tgz(t, manifest, &tar.Header{Name: "link.js", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}),
		"hardlink":    tgz(t, manifest, &tar.Header{Name: "link.js", Typeflag: tar.TypeLink, Linkname: "package.yaml"}),
		"huge":        tgz(t, manifest, &tar.Header{Name: "big.js", Typeflag: tar.TypeReg, Size: packages.MaxFileSize + 1}),
		"duplicate":   tgz(t, manifest, manifest),
		"no-manifest": tgz(t, &tar.Header{Name: "m.js", Typeflag: tar.TypeReg, Size: 1}),
		"not-gzip":    []byte("plain text"),
		"truncated":   tgz(t, manifest)[:20],
	} {
		if _, err := packages.ReadBundle(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzReadBundle(f *testing.F) {
	good, _, _ := packages.Bundle(files("1.0.0", "export default {};"))
	f.Add(good)
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := packages.ReadBundle(data)
		if err != nil {
			return
		}
		for name := range fs {
			if strings.HasPrefix(name, "/") || strings.Contains(name, "..") || filepath.Clean(name) != name {
				t.Fatalf("accepted entry %q", name)
			}
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{
		"name: a\nversion: 1.0.0\n",
		"name: refresh-token\nversion: 1.2.0\ninputs:\n  x: {default: 1, secret: true}\nonLoad: [a.b]\n",
		"name: [\n", "version: {{x}}\n", "inputs: 3\n", "---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := packages.ParseManifest(data)
		if err == nil && (m.Name == "" || m.Version == "") {
			t.Fatalf("accepted a manifest without name or version: %q", data)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "package.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// TestBundleLimitsCountEverything: bytes after the tar's end and
// directory entries count against the limits.
func TestBundleLimitsCountEverything(t *testing.T) {
	good, _, err := packages.Bundle(files("1.0.0", "export default {};"))
	if err != nil {
		t.Fatal(err)
	}
	// 1 GiB of zeros after the tar's end: a few MB compressed.
	raw := gunzip(t, good)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(raw)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		zw.Write(zeros)
	}
	zw.Close()
	start := time.Now()
	_, err = packages.ReadBundle(buf.Bytes())
	if err == nil || !strings.Contains(err.Error(), "decompresses to more than") {
		t.Fatalf("trailing zeros: err = %v", err)
	}
	// Refusing reads at most the limit (milliseconds); inflating the whole
	// gigabyte took far longer. Generous for a loaded machine.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v to refuse", d)
	}
	// More directory entries than MaxFiles.
	manifest := &tar.Header{Name: "package.yaml", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}
	hdrs := []*tar.Header{manifest}
	for i := range packages.MaxFiles + 1 {
		hdrs = append(hdrs, &tar.Header{Name: fmt.Sprintf("d%d/", i), Typeflag: tar.TypeDir, Mode: 0o755})
	}
	if _, err := packages.ReadBundle(tgz(t, hdrs...)); err == nil || !strings.Contains(err.Error(), "directories count") {
		t.Fatalf("directories: err = %v", err)
	}
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestBuildMetadataIsNoVersion(t *testing.T) {
	_, err := packages.ParseManifest([]byte("name: a\nversion: 1.0.0+build.1\n"))
	if err == nil || !strings.Contains(err.Error(), "build metadata (+build.1) does not make another version") {
		t.Fatalf("err = %v", err)
	}
}

func TestInputTypes(t *testing.T) {
	m, err := packages.ParseManifest([]byte("name: a\nversion: 1.0.0\ninputs:\n  n: {default: 5}\n  b: {default: true}\n  s: {}\n  j: {type: json, default: [1]}\n  t: {type: number}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"n": "number", "b": "boolean", "s": "string", "j": "json", "t": "number"} {
		if got := m.Inputs[name].Type; got != want {
			t.Errorf("input %s: type %q, want %q", name, got, want)
		}
	}
	if m.Inputs["n"].Default != 5.0 {
		t.Errorf("a YAML integer default is %T %v, want float64 5", m.Inputs["n"].Default, m.Inputs["n"].Default)
	}
	for src, want := range map[string]string{
		"  x: {type: number, default: five}\n": `input x: default: a string default for an input of type number`,
		"  x: {type: integer}\n":               `input x: type "integer": want string, number, boolean or json`,
	} {
		_, err := packages.ParseManifest([]byte("name: a\nversion: 1.0.0\ninputs:\n" + src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

func TestCredentialUnknownField(t *testing.T) {
	_, err := packages.ParseManifest([]byte("name: a\nversion: 1.0.0\noauth2:\n  api: {grant: client_credentials, tokenUrl: t, tokenURL: u}\n"))
	if err == nil || !strings.Contains(err.Error(), "package.yaml:4:8: oauth2 api: unknown field") || !strings.Contains(err.Error(), "tokenURL") {
		t.Fatalf("err = %v", err)
	}
}

// TestCredentialBindingsAtLoad: a credential's bindings are compiled
// where they stand, used by a query or not (DESIGN §17): a syntax error
// or an undeclared input fails with its line in package.yaml.
func TestCredentialBindingsAtLoad(t *testing.T) {
	head := "name: a\nversion: 1.0.0\ninputs:\n  base: {}\noauth2:\n  api:\n    grant: client_credentials\n"
	for _, c := range []struct{ fields, want string }{
		{"    tokenUrl: <<inputs.nope>>/token\n", `package.yaml:8:17: oauth2 api.tokenUrl: binding "inputs.nope": package has no input "nope"`},
		{"    tokenUrl: <<inputs.base>>/t\n    clientSecret: <<inputs.secret>>\n", `package.yaml:9:21: oauth2 api.clientSecret: binding "inputs.secret": package has no input "secret"`},
		{"    tokenUrl: <<inputs.base>>/t\n    scopes: [read, <<inputs.scope>>]\n", `oauth2 api.scopes: binding "inputs.scope": package has no input "scope"`},
		{"    tokenUrl: <<inputs.base>>/t\n    params:\n      audience: <<inputs.aud>>\n", `package.yaml:10:19: oauth2 api.params.audience: binding "inputs.aud"`},
		{"    tokenUrl: <<inputs.base>>/t\n    clientId: <<inputs.base +>>\n", `package.yaml:9:`},
		{"    tokenUrl: <<inputs.base>>/t\n    clientId: <<nope(>>\n", `oauth2 api.clientId: `},
	} {
		_, err := packages.ParseManifest([]byte(head + c.fields))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v; want %q", c.fields, err, c.want)
		}
	}
	// Declared inputs, module references (checked by Load, which knows
	// the modules: TestCredentialsCompileOnceAtLoad) and the store are fine.
	if _, err := packages.ParseManifest([]byte(head + "    tokenUrl: <<inputs.base>>/t\n    clientId: <<config.data.id>>\n    clientSecret: <<appsmith.store.secret>>\n")); err != nil {
		t.Fatal(err)
	}
}

// TestCredentialsCompileOnceAtLoad: Load compiles every credential once,
// against the package's module names, used by a query or not (issue 27:
// a credential naming a module the package does not have passed validate
// and failed every call); query modules and JS realms use what it
// compiled.
func TestCredentialsCompileOnceAtLoad(t *testing.T) {
	files := func(clientID string) map[string][]byte {
		return map[string][]byte{
			"package.yaml": []byte("name: a\nversion: 1.0.0\ninputs:\n  base: {}\noauth2:\n  api:\n    grant: client_credentials\n" +
				"    tokenUrl: <<inputs.base>>/t\n    clientId: " + clientID + "\n"),
			"config.js": []byte("export default { id: 'x' }\n"),
		}
	}
	pkg, err := packages.Load(files("<<config.id>>"), kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pkg.Bindings["api"]; !ok || len(pkg.Bindings) != 1 {
		t.Fatalf("bindings = %v, want api compiled", pkg.Bindings)
	}
	_, err = packages.Load(files("<<nosuch.id>>"), kinds()...)
	if err == nil || !strings.Contains(err.Error(), "oauth2 api.clientId") || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("a credential naming no module: err = %v", err)
	}
}
