package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/server"
	"github.com/modrun/modrun/store"
)

// twoPackages serves packages a and b on one store.
func twoPackages(t *testing.T) (*httptest.Server, engine.Store) {
	t.Helper()
	var dirs []string
	for _, name := range []string{"a", "b"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: "+name+"\nversion: 1.0.0\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default { f() { return "`+name+`" } }`), 0o644)
		dirs = append(dirs, dir)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv := serverOnAll(t, db, dirs...)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, db
}

func do(t *testing.T, ts *httptest.Server, token, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestScopedTokens: each scope reaches what DESIGN §17 gives it and gets
// 403 naming the scope it lacks elsewhere; expired and revoked tokens
// and forged ones are 401.
func TestScopedTokens(t *testing.T) {
	ts, db := twoPackages(t)
	ctx := context.Background()
	mint := func(name string, ttl time.Duration, scopes ...string) string {
		tok, _, err := server.CreateToken(ctx, db, name, scopes, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	runA := mint("run-a", 0, "run:a")
	read := mint("reader", 0, "read")
	admin := mint("ops", time.Hour, "admin")

	// A run of a and one of b, by the server's token, for the history.
	var idA, idB string
	for _, p := range []struct {
		pkg string
		id  *string
	}{{"a", &idA}, {"b", &idB}} {
		code, body := do(t, ts, token, "POST", "/v1/run/"+p.pkg+"/m.f", `{}`)
		if code != 200 {
			t.Fatalf("run %s: %d %s", p.pkg, code, body)
		}
		var out struct{ ID string }
		json.Unmarshal([]byte(body), &out)
		*p.id = out.ID
	}

	type req struct{ method, path, body string }
	cases := []struct {
		token string
		r     req
		want  int
		says  string // in a 403: the scope named
	}{
		{runA, req{"POST", "/v1/run/a/m.f", `{}`}, 200, ""},
		{runA, req{"POST", "/v1/run/b/m.f", `{}`}, 403, "lacks scope run:b"},
		{runA, req{"POST", "/v1/runs", `{"package":"a","target":"m.f"}`}, 202, ""},
		{runA, req{"POST", "/v1/runs", `{"package":"b","target":"m.f"}`}, 403, "lacks scope run:b"},
		{runA, req{"GET", "/v1/runs/" + idA, ``}, 200, ""},
		{runA, req{"GET", "/v1/runs/" + idB, ``}, 404, ""},
		{runA, req{"GET", "/v1/packages", ``}, 403, "lacks scope read"},
		{runA, req{"GET", "/v1/store/a", ``}, 403, "lacks scope read"},
		{runA, req{"GET", "/metrics", ``}, 403, "lacks scope read"},
		{read, req{"GET", "/v1/packages", ``}, 200, ""},
		{read, req{"GET", "/v1/credentials", ``}, 200, ""},
		{read, req{"GET", "/metrics", ``}, 200, ""},
		{read, req{"GET", "/v1/runs/" + idB, ``}, 200, ""},
		{read, req{"GET", "/v1/store/a", ``}, 200, ""},
		{read, req{"GET", "/v1/store/a?reveal=true", ``}, 403, "lacks scope admin"},
		{read, req{"PUT", "/v1/store/a/k", `1`}, 403, "lacks scope admin"},
		{read, req{"DELETE", "/v1/store/a", ``}, 403, "lacks scope admin"},
		{read, req{"POST", "/v1/run/a/m.f", `{}`}, 403, "lacks scope run:a"},
		{read, req{"POST", "/v1/rekey", ``}, 403, "lacks scope admin"},
		{read, req{"GET", "/v1/tokens", ``}, 403, "lacks scope admin"},
		{read, req{"POST", "/v1/tokens", `{"name":"x","scopes":["admin"]}`}, 403, "lacks scope admin"},
		{admin, req{"PUT", "/v1/store/a/k", `1`}, 204, ""},
		{admin, req{"POST", "/v1/run/b/m.f", `{}`}, 200, ""},
		{admin, req{"GET", "/v1/tokens", ``}, 200, ""},
		{runA + "x", req{"POST", "/v1/run/a/m.f", `{}`}, 401, ""},
		{"mrt_run-a_" + strings.Repeat("A", 43), req{"POST", "/v1/run/a/m.f", `{}`}, 401, ""},
		{"mrt_nobody_" + strings.Repeat("A", 43), req{"GET", "/v1/packages", ``}, 401, ""},
	}
	for _, c := range cases {
		code, body := do(t, ts, c.token, c.r.method, c.r.path, c.r.body)
		if code != c.want || (c.says != "" && !strings.Contains(body, c.says)) {
			t.Errorf("%s %s with %.10s…: %d %s; want %d %s", c.r.method, c.r.path, c.token, code, body, c.want, c.says)
		}
		if strings.Contains(body, c.token) {
			t.Errorf("%s %s: the answer holds the token", c.r.method, c.r.path)
		}
	}

	// The run-scoped token lists only its package's runs.
	code, body := do(t, ts, runA, "GET", "/v1/runs", ``)
	var runs []struct{ Package string }
	json.Unmarshal([]byte(body), &runs)
	if code != 200 || len(runs) == 0 {
		t.Fatalf("list with run:a: %d %s", code, body)
	}
	for _, r := range runs {
		if r.Package != "a" {
			t.Errorf("run:a lists a run of %s", r.Package)
		}
	}

	// The token list never holds a token or its hash.
	_, body = do(t, ts, admin, "GET", "/v1/tokens", ``)
	if strings.Contains(body, "hash") || strings.Contains(body, runA) || !strings.Contains(body, `"run-a"`) {
		t.Errorf("token list: %s", body)
	}

	// Revoked: 401 at once on this server.
	if code, body := do(t, ts, admin, "DELETE", "/v1/tokens/run-a", ``); code != 204 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if code, _ := do(t, ts, runA, "POST", "/v1/run/a/m.f", `{}`); code != 401 {
		t.Errorf("a revoked token: %d, want 401", code)
	}
	if code, _ := do(t, ts, admin, "DELETE", "/v1/tokens/run-a", ``); code != 404 {
		t.Errorf("revoking twice: %d, want 404", code)
	}

	// Expired: 401.
	old := server.TokenInfo{Name: "old", Scopes: []string{"admin"}, Created: time.Now().Add(-2 * time.Hour), Expires: time.Now().Add(-time.Hour)}
	expired := mint("old-live", time.Hour, "admin")
	raw, _ := db.Get(ctx, server.TokensApp, "old-live")
	var stored server.TokenInfo
	json.Unmarshal(raw, &stored)
	old.Name, old.Hash = "old-live", stored.Hash
	b, _ := json.Marshal(old)
	db.Set(ctx, server.TokensApp, "old-live", b)
	// A server trusts an entry it read for up to 2 s (none here: the
	// token was never used), so allow for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := do(t, ts, expired, "GET", "/v1/packages", ``)
		if code == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an expired token still answers %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTokenRequests: bad names, scopes and expiries are 400s naming the
// problem; a name in use is 409.
func TestTokenRequests(t *testing.T) {
	ts, _ := twoPackages(t)
	for _, c := range []struct {
		body string
		want int
		says string
	}{
		{`{"name":"ci","scopes":["run:a"],"expires":"30d"}`, 201, `"token":"mrt_ci_`},
		{`{"name":"ci","scopes":["read"]}`, 409, "exists"},
		{`{"name":"Bad_Name","scopes":["read"]}`, 400, "only a-z"},
		{`{"name":"x","scopes":[]}`, 400, "at least one scope"},
		{`{"name":"x","scopes":["write"]}`, 400, `scope \"write\"`},
		{`{"name":"x","scopes":["run:"]}`, 400, `scope \"run:\"`},
		{`{"name":"x","scopes":["read"],"expires":"soon"}`, 400, `expiry \"soon\"`},
		{`{"name":"x","scopes":["read"],"expires":"-1d"}`, 400, `expiry \"-1d\"`},
	} {
		code, body := do(t, ts, token, "POST", "/v1/tokens", c.body)
		if code != c.want || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d %s; want %d %q", c.body, code, body, c.want, c.says)
		}
	}
}
