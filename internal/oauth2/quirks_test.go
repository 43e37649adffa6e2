package oauth2_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/store"
)

// provider is an OAuth2 provider simulator with the quirks real ones
// have (issue 29, DESIGN §18): tokens that expire after ttl, and on expiry
// one of: a 401 (the standard), a 403, or a 200 whose body says
// TOKEN_EXPIRED. With jwt its access tokens are JWTs carrying exp and
// its answers have no expires_in.
type provider struct {
	*httptest.Server
	ttl      time.Duration
	quirk    string // "401", "403" or "200"
	jwt      bool
	skew     time.Duration // the provider's clock minus ours
	requests atomic.Int64  // token requests
	expired  atomic.Int64  // API calls with an expired token

	mu     sync.Mutex
	expiry map[string]time.Time
	n      int
}

func newProvider(t *testing.T, ttl time.Duration, quirk string, jwt bool) *provider {
	p := &provider{ttl: ttl, quirk: quirk, jwt: jwt, expiry: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		p.n++
		exp := time.Now().Add(p.ttl)
		tok := fmt.Sprintf("opaque-%d-0123456789", p.n)
		if p.jwt {
			// On the provider's clock, in whole seconds, as JWT
			// libraries do: iat now, exp a lifetime later.
			iat := time.Now().Add(p.skew).Unix()
			claims, _ := json.Marshal(map[string]any{"sub": "svc", "iat": iat, "exp": iat + int64(p.ttl/time.Second)})
			tok = "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + fmt.Sprintf(".sig%d", p.n)
			exp = time.Unix(iat+int64(p.ttl/time.Second), 0).Add(-p.skew) // when it expires, on our clock
		}
		p.expiry[tok] = exp
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer"}) // never expires_in
	})
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		p.mu.Lock()
		exp, ok := p.expiry[tok]
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if ok && time.Now().Before(exp) {
			w.Write([]byte(`{"ok": true}`))
			return
		}
		p.expired.Add(1)
		switch p.quirk {
		case "403":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"message": "forbidden"}`))
		case "200":
			w.Write([]byte(`{"error": {"code": "TOKEN_EXPIRED"}}`))
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

// TestQuirkyProvidersCostNoCall: a credential against a provider that
// never sends expires_in — JWTs with exp, refreshed ahead of it; opaque
// tokens answered 403 on expiry (expiryStatus); a 200 with an error body
// (expiryMatch) — runs 1,000 calls spanning 10 expiries with 0 failed.
func TestQuirkyProvidersCostNoCall(t *testing.T) {
	const ttl = 2 * time.Second
	for _, tc := range []struct {
		name, quirk string
		jwt         bool
		cred        string
		ahead       bool          // the expiry is known: refreshed before it
		skew        time.Duration // the provider's clock minus ours
	}{
		{"jwt exp", "401", true, "", true, 0},
		{"jwt exp, the provider's clock 2 minutes ahead", "401", true, "", true, 2 * time.Minute},
		{"jwt exp, the provider's clock 2 minutes behind", "401", true, "", true, -2 * time.Minute},
		{"expiresIn of the credential", "401", false, "expiresIn: 2s", true, 0},
		{"403 on expiry", "403", false, "expiryStatus: [401, 403]", false, 0},
		{"200 with an error", "200", false, "expiryMatch: {path: error.code, equals: TOKEN_EXPIRED}", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, ttl, tc.quirk, tc.jwt)
			p.skew = tc.skew
			dir := t.TempDir()
			extra := ""
			if tc.cred != "" {
				extra = ", " + tc.cred
			}
			os.WriteFile(filepath.Join(dir, "package.yaml"), []byte(`name: quirks
version: 1.0.0
inputs:
  baseUrl: {}
oauth2:
  api: {grant: client_credentials, tokenUrl: "<<inputs.baseUrl>>/token", clientId: id, clientSecret: secret-0123456789`+extra+`}
`), 0o644)
			os.WriteFile(filepath.Join(dir, "api.query.yaml"), []byte("url: <<inputs.baseUrl>>/api\nauth: {oauth2: api}\n"), 0o644)
			eng := modrun.New(modrun.Options{Store: store.NewMemory()})
			pkg, err := eng.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{"baseUrl": p.URL}})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close()
			const calls = 1000
			span := 10 * ttl
			start := time.Now()
			failed := 0
			for i := range calls {
				// Spread the calls over 10 lifetimes of the token.
				if d := time.Until(start.Add(span * time.Duration(i) / calls)); d > 0 {
					time.Sleep(d)
				}
				out, err := inst.Call(context.Background(), "api")
				if err != nil || string(out) != `{"ok":true}` {
					if failed++; failed <= 3 {
						t.Errorf("call %d: %s, %v", i+1, out, err)
					}
				}
			}
			if failed > 0 {
				t.Fatalf("%d of %d calls failed", failed, calls)
			}
			if n := p.requests.Load(); n < 10 || n > 40 {
				t.Fatalf("%d token requests over 10 lifetimes: want one or two per lifetime", n)
			}
			// A JWT's exp or the credential's expiresIn says when a token
			// expires: it is refreshed ahead of it, so the API never sees
			// an expired one.
			if n := p.expired.Load(); tc.ahead && n != 0 {
				t.Fatalf("the API got %d calls with an expired token: not refreshed ahead of its expiry", n)
			}
		})
	}
}
