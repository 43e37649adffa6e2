package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCredentialsHealth: a credential whose refresh token the provider
// revoked shows needs_login — found by keep-fresh before any call — and one that works shows fresh with its
// expiry, in GET /v1/credentials, runner credentials (local and
// --server, text and --json) and /metrics; never a token (issue 29).
func TestCredentialsHealth(t *testing.T) {
	var refreshes atomic.Int64
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/token":
			if r.PostForm.Get("grant_type") == "refresh_token" {
				refreshes.Add(1)
				w.WriteHeader(400)
				w.Write([]byte(`{"error": "invalid_grant"}`))
				return
			}
			w.Write([]byte(`{"access_token": "at-live-0123456789abcdef", "token_type": "bearer", "expires_in": 3600, "refresh_expires_in": 86400}`))
		default:
			w.Write([]byte(`{"ok": true}`))
		}
	}))
	defer provider.Close()
	pkg := writePackage(t, map[string]string{
		"package.yaml": `name: creds
version: 1.0.0
inputs:
  baseUrl: {}
oauth2:
  svc: {grant: client_credentials, tokenUrl: "<<inputs.baseUrl>>/token", clientId: id, clientSecret: secret-0123456789}
  user: {grant: refresh_token, tokenUrl: "<<inputs.baseUrl>>/token", clientId: id, clientSecret: secret-0123456789}
`,
		"svc.query.yaml":  "url: <<inputs.baseUrl>>/api\nauth: {oauth2: svc}\n",
		"user.query.yaml": "url: <<inputs.baseUrl>>/api\nauth: {oauth2: user}\n",
	})
	db := t.TempDir() + "/s.db"
	expired := `{"access_token": "at-dead-0123456789abcdef", "refresh_token": "rt-revoked-0123456789abcdef", "expires_at": 1, "package": "creds"}`
	// runner store refuses token sets (only modrun writes them): seed it
	// on the store directly.
	if _, errOut, code := runCLI(t, "", "store", "set", "--store", db, "--app", "creds", "oauth2.user", expired); code != 2 || !strings.Contains(errOut, "runner login replaces it") {
		t.Fatalf("runner store set of a token set: exit %d, %s", code, errOut)
	}
	seed(t, db, "creds", "oauth2.user", expired)
	if _, errOut, code := runCLI(t, "", "store", "rm", "--store", db, "--app", "creds", "oauth2.user"); code != 2 || !strings.Contains(errOut, "token set") {
		t.Fatalf("runner store rm of a token set: exit %d, %s", code, errOut)
	}
	events := make(chan map[string]any, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e map[string]any
		json.NewDecoder(r.Body).Decode(&e)
		events <- e
	}))
	defer hook.Close()
	const token = "creds-token-0123456789abcdef"
	srv := startServe(t, token, pkg, "--store", db, "--input", "baseUrl="+provider.URL, "--notify", hook.URL, "--watch-credentials", "200ms")
	if code, body, _ := srv.call("POST", "/v1/run/creds/svc", `{}`); code != 200 {
		t.Fatalf("svc: %d %v", code, body)
	}
	// Before any call of user: keep-fresh tries the expired login, the
	// provider rejects its refresh token, and the watch announces
	// needs_login to the webhook (and the log).
	deadline := time.After(30 * time.Second)
	for got := false; !got; {
		select {
		case e := <-events:
			if raw, _ := json.Marshal(e); strings.Contains(string(raw), "rt-revoked") || strings.Contains(string(raw), "at-live") {
				t.Fatalf("the event carries a token: %s", raw)
			}
			if e["event"] != "needs_login" {
				continue
			}
			if e["credential"] != "user" || e["app"] != "creds" || e["package"] != "creds" || e["at"] == nil {
				t.Fatalf("webhook event: %v", e)
			}
			got = true
		case <-deadline:
			t.Fatalf("no webhook for needs_login:\n%s", srv.logText())
		}
	}
	if n := refreshes.Load(); n == 0 {
		t.Fatal("needs_login announced, but keep-fresh sent no refresh")
	}
	if code, body, _ := srv.call("POST", "/v1/run/creds/user", `{}`); code != 500 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "runner login creds user") {
		t.Fatalf("user with a revoked refresh token: %d %v", code, body)
	}
	check := func(where, out string) {
		t.Helper()
		var all []struct {
			Package, Credential, App, State  string
			ExpiresAt, RefreshTokenExpiresAt *int64
			Failures                         int
		}
		if err := json.Unmarshal([]byte(out), &all); err != nil {
			t.Fatalf("%s: %v\n%s", where, err, out)
		}
		states := map[string]string{}
		for _, h := range all {
			states[h.Credential] = h.State
			if h.Credential == "svc" && (h.ExpiresAt == nil || *h.ExpiresAt < time.Now().UnixMilli() || h.RefreshTokenExpiresAt != nil || h.Package != "creds") {
				t.Errorf("%s: svc %+v", where, h)
			}
		}
		if states["svc"] != "fresh" || states["user"] != "needs_login" {
			t.Errorf("%s: states %v, want svc fresh and user needs_login\n%s", where, states, out)
		}
		if strings.Contains(out, "at-live") || strings.Contains(out, "rt-revoked") {
			t.Errorf("%s shows a token:\n%s", where, out)
		}
	}
	req, _ := http.NewRequest("GET", srv.url+"/v1/credentials", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check("GET /v1/credentials", string(raw))
	out, errOut, code := runBinary(t, []string{"MODRUN_SERVER=" + srv.url, "MODRUN_TOKEN=" + token}, "credentials", "--json")
	if code != 0 {
		t.Fatalf("runner credentials --server: %d %s", code, errOut)
	}
	check("runner credentials --server --json", out)
	out, _, _ = runBinary(t, []string{"MODRUN_SERVER=" + srv.url, "MODRUN_TOKEN=" + token}, "credentials", "creds")
	if !strings.Contains(out, "needs_login") || !strings.Contains(out, "fresh") || !strings.Contains(out, "STATE") {
		t.Fatalf("runner credentials (text):\n%s", out)
	}
	metrics := srv.metricsText(t)
	for _, want := range []string{
		`modrun_oauth2_credential_state{app="creds",credential="user",package="creds",state="needs_login"} 1`,
		`modrun_oauth2_credential_state{app="creds",credential="svc",package="creds",state="fresh"} 1`,
		`modrun_oauth2_token_expiry_timestamp_seconds{app="creds",credential="svc",package="creds"}`,
		`modrun_oauth2_refresh_failures_total{app="creds",credential="user",package="creds",reason="invalid_grant"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	srv.stop()
	out, errOut, code = runBinary(t, nil, "credentials", "--store", db, "--json")
	if code != 0 {
		t.Fatalf("runner credentials (local): %d %s", code, errOut)
	}
	check("runner credentials --store --json", out)
}

// metricsText is /metrics.
func (s *served) metricsText(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

// TestKeepFresh: with no call at all, runner serve keeps a login alive:
// a short-lived access token is refreshed ahead of its expiry, a long-lived
// one whose refresh token has a short idle lifetime is refreshed within
// half of it — whether the provider says the lifetime (refresh_expires_in)
// or the credential does (refreshTokenLifetime) — rotating refresh tokens
// are never spent twice, and a credential with keepFresh: false is left
// alone.
func TestKeepFresh(t *testing.T) {
	const idleLifetime = 4 * time.Second
	var (
		mu       sync.Mutex
		live     = map[string]time.Time{} // refresh tokens not yet spent, and when each was issued
		idled    atomic.Int64             // refresh tokens presented after their idle lifetime
		n        = map[string]int{}       // refreshes by credential (its client id)
		reused   atomic.Int64
		sequence atomic.Int64
	)
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		id, _, _ := r.BasicAuth()
		rt := r.PostForm.Get("refresh_token")
		mu.Lock()
		defer mu.Unlock()
		issued, ok := live[rt]
		if !ok {
			reused.Add(1)
			w.WriteHeader(400)
			w.Write([]byte(`{"error": "invalid_grant"}`))
			return
		}
		if (id == "idle" || id == "idlecfg") && time.Since(issued) > idleLifetime {
			idled.Add(1) // it died unused
			w.WriteHeader(400)
			w.Write([]byte(`{"error": "invalid_grant", "error_description": "the refresh token expired"}`))
			return
		}
		delete(live, rt)
		n[id]++
		next := fmt.Sprintf("rt-%s-%d-0123456789", id, sequence.Add(1))
		live[next] = time.Now()
		switch id {
		case "idle": // a long access token, a refresh token that dies unused in 4 s
			fmt.Fprintf(w, `{"access_token": "at-%s", "refresh_token": %q, "expires_in": 3600, "refresh_expires_in": 4}`, next, next)
		case "idlecfg": // the same, but the provider does not say: the credential does
			fmt.Fprintf(w, `{"access_token": "at-%s", "refresh_token": %q, "expires_in": 3600}`, next, next)
		default: // 2-second access tokens
			fmt.Fprintf(w, `{"access_token": "at-%s", "refresh_token": %q, "expires_in": 2}`, next, next)
		}
	}))
	defer provider.Close()
	pkg := writePackage(t, map[string]string{
		"package.yaml": `name: fresh
version: 1.0.0
inputs:
  baseUrl: {}
oauth2:
  short: {grant: refresh_token, tokenUrl: "<<inputs.baseUrl>>/token", clientId: short, clientSecret: secret-0123456789, refreshMargin: 1s}
  idle: {grant: refresh_token, tokenUrl: "<<inputs.baseUrl>>/token", clientId: idle, clientSecret: secret-0123456789}
  idlecfg: {grant: refresh_token, tokenUrl: "<<inputs.baseUrl>>/token", clientId: idlecfg, clientSecret: secret-0123456789, refreshTokenLifetime: 4s}
  manual: {grant: refresh_token, tokenUrl: "<<inputs.baseUrl>>/token", clientId: manual, clientSecret: secret-0123456789, keepFresh: false}
`,
		"m.js": `export default { async token() { return (await oauth2.short.accessToken()).length > 0 } }`,
	})
	db := t.TempDir() + "/s.db"
	now := time.Now()
	for _, c := range []struct{ name, set string }{
		{"short", fmt.Sprintf(`{"access_token": "at-0", "refresh_token": "rt-short-0-0123456789", "expires_at": %d, "package": "fresh"}`, now.Add(2*time.Second).UnixMilli())},
		{"idle", fmt.Sprintf(`{"access_token": "at-0", "refresh_token": "rt-idle-0-0123456789", "expires_at": %d, "issued_at": %d, "refresh_expires_at": %d, "package": "fresh"}`,
			now.Add(time.Hour).UnixMilli(), now.UnixMilli(), now.Add(4*time.Second).UnixMilli())},
		{"idlecfg", fmt.Sprintf(`{"access_token": "at-0", "refresh_token": "rt-idlecfg-0-0123456789", "expires_at": %d, "issued_at": %d, "refresh_expires_at": %d, "package": "fresh"}`,
			now.Add(time.Hour).UnixMilli(), now.UnixMilli(), now.Add(4*time.Second).UnixMilli())},
		{"manual", fmt.Sprintf(`{"access_token": "at-0", "refresh_token": "rt-manual-0-0123456789", "expires_at": %d, "package": "fresh"}`, now.Add(time.Second).UnixMilli())},
	} {
		seed(t, db, "fresh", "oauth2."+c.name, c.set)
		mu.Lock() // the provider reads it on its own goroutines
		live[fmt.Sprintf("rt-%s-0-0123456789", c.name)] = now
		mu.Unlock()
	}
	const token = "fresh-token-0123456789abcdef"
	srv := startServe(t, token, pkg, "--store", db, "--input", "baseUrl="+provider.URL, "--watch-credentials", "300ms")
	defer srv.stop()

	// 10 s without a call: ~5 lifetimes of short, 2.5 idle lifetimes.
	time.Sleep(10 * time.Second)
	mu.Lock()
	short, idle, idlecfg, manual := n["short"], n["idle"], n["idlecfg"], n["manual"]
	mu.Unlock()
	if short < 4 || idle < 2 || idlecfg < 2 || manual != 0 || reused.Load() != 0 || idled.Load() != 0 {
		t.Fatalf("refreshes: short %d (want ≥4), idle %d (want ≥2), idlecfg %d (want ≥2), manual %d (want 0), reused refresh tokens %d (want 0), refresh tokens that idled out %d (want 0)\n%s",
			short, idle, idlecfg, manual, reused.Load(), idled.Load(), srv.logText())
	}
	// The login is alive: a call gets a token without a refresh of its own.
	if code, body, _ := srv.call("POST", "/v1/run/fresh/m.token", `{}`); code != 200 || body["result"] != true {
		t.Fatalf("a call after 10 idle seconds: %d %v", code, body)
	}
	out, _, _ := runBinary(t, []string{"MODRUN_SERVER=" + srv.url, "MODRUN_TOKEN=" + token}, "credentials", "--json")
	if !strings.Contains(out, `"credential": "short"`) && !strings.Contains(out, `"credential":"short"`) {
		t.Fatalf("credentials: %s", out)
	}
	if strings.Contains(out, "needs_login") {
		t.Fatalf("a kept-fresh login needs a login:\n%s", out)
	}
}
