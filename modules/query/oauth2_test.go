package query_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/oauth2"
	"github.com/modrun/modrun/modules/query"
	"github.com/modrun/modrun/store"
)

// tokenScope is a test Scope that gets OAuth2 tokens with the real client
// over a memory store.
type tokenScope struct {
	scope
	c *oauth2.Client
}

func (s tokenScope) Token(ctx context.Context, spec engine.TokenSpec, stale string) (string, error) {
	return s.c.Token(ctx, spec, stale)
}

// BenchmarkOAuth2: a query with auth: {oauth2: …} and a fresh token in the
// store, against the same query with a static bearer binding: what the
// credential costs per request (target ≤ 1.05×).
func BenchmarkOAuth2(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	st := store.NewMemory()
	set, _ := json.Marshal(oauth2.Set{AccessToken: "at-0123456789abcdef", RefreshToken: "rt-0123456789abcdef", ExpiresAt: time.Now().Add(time.Hour).UnixMilli()})
	st.Set(context.Background(), "t", "oauth2.api", set)
	pkg := &engine.PackageInfo{Name: "t", Inputs: map[string]engine.Input{"baseUrl": {}, "token": {}},
		Modules:     map[string]string{"api": "api.query.yaml"},
		Credentials: map[string]engine.Credential{"api": {Grant: engine.GrantRefreshToken, TokenURL: "<<inputs.baseUrl>>/token", ClientID: "id", ClientAuth: "basic", RefreshMargin: 30 * time.Second}}}
	sc := tokenScope{scope: scope{Inputs: map[string]any{"baseUrl": srv.URL, "token": "at-0123456789abcdef"}},
		c: &oauth2.Client{HTTP: http.DefaultClient, Store: engine.NewSession(st, "t"), App: "t", Flights: &engine.Flight{}}}
	kind := query.NewKind()
	for _, c := range []struct{ name, auth string }{{"bearer", "auth: {bearer: <<inputs.token>>}\n"}, {"oauth2", "auth: {oauth2: api}\n"}} {
		m, err := kind.Compile(engine.Source{Name: "api", Path: "api.query.yaml", Data: []byte("url: <<inputs.baseUrl>>/x\n" + c.auth), Pkg: pkg})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				req, err := m.(*query.Module).Bind(sc, nil)
				if err != nil {
					b.Fatal(err)
				}
				if resp, err := req.Send(context.Background()); err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTokenGoesOnlyToAllowedOrigins: a query with auth: {oauth2: api}
// sends the token to the token URL's origin and the credential's hosts:,
// and refuses any other origin before anything is sent (issue 28,
// finding 4: url: <<this.params.url>> sent it wherever a caller said).
func TestTokenGoesOnlyToAllowedOrigins(t *testing.T) {
	var hits = map[string]int{}
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[name]++
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"ok":true}`))
		})
	}
	home, extra, evil := httptest.NewServer(handler("home")), httptest.NewServer(handler("extra")), httptest.NewServer(handler("evil"))
	defer home.Close()
	defer extra.Close()
	defer evil.Close()
	st := store.NewMemory()
	set, _ := json.Marshal(oauth2.Set{AccessToken: "at-0123456789abcdef", ExpiresAt: time.Now().Add(time.Hour).UnixMilli()})
	st.Set(context.Background(), "t", "oauth2.api", set)
	pkg := &engine.PackageInfo{Name: "t", Inputs: map[string]engine.Input{"baseUrl": {}},
		Modules: map[string]string{"api": "api.query.yaml"},
		Credentials: map[string]engine.Credential{"api": {Grant: engine.GrantRefreshToken, TokenURL: "<<inputs.baseUrl>>/token", ClientID: "id",
			ClientAuth: "basic", RefreshMargin: 30 * time.Second, Hosts: []string{extra.URL}}}}
	sc := tokenScope{scope: scope{Inputs: map[string]any{"baseUrl": home.URL}},
		c: &oauth2.Client{HTTP: http.DefaultClient, Store: engine.NewSession(st, "t"), App: "t", Flights: &engine.Flight{}}}
	m, err := query.NewKind().Compile(engine.Source{Name: "api", Path: "api.query.yaml", Data: []byte("url: <<this.params.url>>\nauth: {oauth2: api}\n"), Pkg: pkg})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		url string
		ok  bool
	}{{home.URL + "/x", true}, {extra.URL + "/y", true}, {evil.URL + "/z", false}} {
		req, err := m.(*query.Module).Bind(sc, map[string]any{"url": c.url})
		if !c.ok {
			if err == nil || !strings.Contains(err.Error(), "refusing to send the token to "+evil.URL) || !strings.Contains(err.Error(), extra.URL) {
				t.Fatalf("%s: %v, want a refusal naming the origin and the allowed ones", c.url, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if _, err := req.Send(context.Background()); err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
	}
	if hits["home"] != 1 || hits["extra"] != 1 || hits["evil"] != 0 {
		t.Fatalf("requests: %v", hits)
	}
}
