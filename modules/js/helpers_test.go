package js_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/modules/query"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
)

// load compiles a package from files; package.yaml is added if missing.
func load(t testing.TB, files map[string]string) *engine.Package {
	t.Helper()
	fs := map[string][]byte{ManifestDefault: []byte("name: test\nversion: 1.0.0\ninputs:\n  baseUrl: {default: \"http://127.0.0.1:1\"}\n")}
	for k, v := range files {
		fs[k] = []byte(v)
	}
	pkg, err := packages.Load(fs, query.NewKind(), js.Kind{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return pkg
}

const ManifestDefault = "package.yaml"

func openStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newInstance(t testing.TB, pkg *engine.Package, st engine.Store, inputs map[string]any) *js.Instance {
	t.Helper()
	in, err := pkg.ResolveInputs(inputs)
	if err != nil {
		t.Fatal(err)
	}
	inst := js.NewInstance(pkg, js.Options{Store: st, Inputs: in})
	t.Cleanup(func() { inst.Close() })
	return inst
}

func call(t testing.TB, inst *js.Instance, target string, args ...string) string {
	t.Helper()
	raw := make([]json.RawMessage, len(args))
	for i, a := range args {
		raw[i] = json.RawMessage(a)
	}
	out, err := inst.Call(context.Background(), target, raw...)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	return string(out)
}

// tokenServer is a refresh endpoint: each call returns a new token pair.
type tokenServer struct {
	*httptest.Server
	calls atomic.Int64
}

func newTokenServer(t testing.TB) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.calls.Add(1)
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/fail" {
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"access_token":  "at-" + string(rune('0'+n%10)),
			"refresh_token": "rt-new",
			"expires_in":    60,
			"echo":          body,
			"path":          r.URL.Path,
		})
	}))
	t.Cleanup(ts.Close)
	return ts
}
