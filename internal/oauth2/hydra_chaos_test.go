//go:build hydra

package oauth2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestChaosTakeoverHydra runs the chaos rounds against Ory Hydra v2, a
// real OAuth2 server with refresh-token reuse detection and a rotation
// grace period (oauth2.grant.refresh_token.rotation_grace_period). It is
// built only with -tags hydra: bench/hydra-chaos.sh builds Hydra and runs
// it, with MODRUN_HYDRA naming the binary.
func TestChaosTakeoverHydra(t *testing.T) {
	bin := os.Getenv("MODRUN_HYDRA")
	if bin == "" {
		t.Fatal("MODRUN_HYDRA names no Hydra binary: run bench/hydra-chaos.sh")
	}
	runChaos(t, newHydraProvider(t, bin))
}

// hydraProvider fronts two Hydra servers, one with the grace period and
// one without, with a proxy that modrun's token requests and API calls go
// to: it forwards a token request to the Hydra in use, with that Hydra's
// client credentials, and can hold its answer back; its API takes an
// access token that Hydra's introspection says is active.
type hydraProvider struct {
	refreshLog
	proxy        *httptest.Server
	grace, plain *hydra

	mu     sync.Mutex
	on     *hydra
	heldRT string // the refresh token of the last answer held
}

// hydra is one Hydra server and the client registered with it.
type hydra struct {
	public, admin string // base URLs
	clientID      string
	clientSecret  string
}

const hydraRedirect = "http://127.0.0.1:1/callback" // never followed

func newHydraProvider(t *testing.T, bin string) *hydraProvider {
	p := &hydraProvider{}
	p.grace = startHydra(t, bin, "1m")
	p.plain = startHydra(t, bin, "0s")
	p.on = p.grace
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /api", p.api)
	p.proxy = httptest.NewServer(mux)
	t.Cleanup(p.proxy.Close)
	return p
}

func (p *hydraProvider) tokenURL() string { return p.proxy.URL + "/token" }
func (p *hydraProvider) apiURL() string   { return p.proxy.URL + "/api" }

func (p *hydraProvider) setGrace(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on = p.plain
	if on {
		p.on = p.grace
	}
}

func (p *hydraProvider) current() *hydra {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on
}

// token forwards a token request to the Hydra in use.
func (p *hydraProvider) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	form := r.PostForm
	form.Del("client_id")
	form.Del("client_secret")
	h := p.current()
	refresh := form.Get("grant_type") == "refresh_token"
	if refresh {
		p.came()
	}
	req, _ := http.NewRequest("POST", h.public+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(h.clientID), url.QueryEscape(h.clientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Hydra has rotated; a held answer is lost if the sender is gone.
	if refresh && !p.keep(r.Context(), func() {
		var tok struct {
			RefreshToken string `json:"refresh_token"`
		}
		json.Unmarshal(body, &tok)
		p.mu.Lock()
		p.heldRT = tok.RefreshToken
		p.mu.Unlock()
	}) {
		return
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// heldRevoked says whether Hydra has revoked the refresh token of the
// answer held from A (which A never got): reuse detection revokes the
// whole family.
func (p *hydraProvider) heldRevoked(t *testing.T) bool {
	h := p.current()
	p.mu.Lock()
	rt := p.heldRT
	p.mu.Unlock()
	resp, err := http.PostForm(h.admin+"/admin/oauth2/introspect", url.Values{"token": {rt}})
	if err != nil {
		t.Fatalf("hydra introspect: %v", err)
	}
	defer resp.Body.Close()
	var in struct{ Active bool }
	json.NewDecoder(resp.Body).Decode(&in)
	return !in.Active
}

// api answers {"ok": true} to a bearer of an active access token.
func (p *hydraProvider) api(w http.ResponseWriter, r *http.Request) {
	h := p.current()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	resp, err := http.PostForm(h.admin+"/admin/oauth2/introspect", url.Values{"token": {tok}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var in struct{ Active bool }
	json.NewDecoder(resp.Body).Decode(&in)
	if !in.Active {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"ok": true}`))
}

// newLogin runs Hydra's authorization code flow, accepting the login and
// the consent through its admin API as a login app would, and returns the
// refresh token the code is exchanged for.
func (p *hydraProvider) newLogin(t *testing.T) string {
	t.Helper()
	h := p.current()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// where GETs u and returns the redirect's target.
	where := func(u string) *url.URL {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("hydra login: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("hydra login: GET %s answered %d without a redirect", u, resp.StatusCode)
		}
		return loc
	}
	accept := func(kind, challenge string, body any) string {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest("PUT", h.admin+"/admin/oauth2/auth/requests/"+kind+"/accept?"+kind+"_challenge="+url.QueryEscape(challenge), bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("hydra %s accept: %v", kind, err)
		}
		defer resp.Body.Close()
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.RedirectTo == "" {
			t.Fatalf("hydra %s accept: %d %v", kind, resp.StatusCode, err)
		}
		return out.RedirectTo
	}
	auth := h.public + "/oauth2/auth?" + url.Values{"response_type": {"code"}, "client_id": {h.clientID},
		"redirect_uri": {hydraRedirect}, "scope": {"offline_access"}, "state": {"chaos-state-0123"}}.Encode()
	login := where(auth).Query().Get("login_challenge")
	consent := where(accept("login", login, map[string]any{"subject": "demo"})).Query().Get("consent_challenge")
	cb := where(accept("consent", consent, map[string]any{"grant_scope": []string{"offline_access"}}))
	code := cb.Query().Get("code")
	if code == "" {
		t.Fatalf("hydra login: the callback %s has no code", cb.Redacted())
	}
	req, _ := http.NewRequest("POST", h.public+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {hydraRedirect}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(h.clientID), url.QueryEscape(h.clientSecret))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("hydra code exchange: %v", err)
	}
	defer resp.Body.Close()
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.RefreshToken == "" {
		t.Fatalf("hydra code exchange: %d, no refresh token (%v)", resp.StatusCode, err)
	}
	return tok.RefreshToken
}

// startHydra starts Hydra in memory (its migrations run at start) with
// the given refresh-token rotation grace period, and registers a client.
func startHydra(t *testing.T, bin, grace string) *hydra {
	t.Helper()
	public, admin := freePort(t), freePort(t)
	dir := t.TempDir()
	conf := fmt.Sprintf(`dsn: memory
serve:
  public: {host: 127.0.0.1, port: %d}
  admin: {host: 127.0.0.1, port: %d}
urls:
  self: {issuer: "http://127.0.0.1:%d"}
  login: http://127.0.0.1:1/login
  consent: http://127.0.0.1:1/consent
secrets:
  system: [chaos-system-secret-0123456789abcdef]
oauth2:
  grant:
    refresh_token:
      rotation_grace_period: %s
log: {level: warn}
`, public, admin, public, grace)
	confPath := filepath.Join(dir, "hydra.yaml")
	os.WriteFile(confPath, []byte(conf), 0o600)
	cmd := exec.Command(bin, "serve", "all", "--dev", "--config", confPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("hydra (grace %s) logs:\n%s", grace, logs.String())
		}
	})
	h := &hydra{public: fmt.Sprintf("http://127.0.0.1:%d", public), admin: fmt.Sprintf("http://127.0.0.1:%d", admin)}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(h.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra not ready in 2 minutes:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	raw, _ := json.Marshal(map[string]any{
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "offline_access", "redirect_uris": []string{hydraRedirect}, "token_endpoint_auth_method": "client_secret_basic",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.admin+"/admin/clients", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("hydra client: %v", err)
	}
	defer resp.Body.Close()
	var cl struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cl); err != nil || cl.ClientID == "" {
		t.Fatalf("hydra client: %d %v", resp.StatusCode, err)
	}
	h.clientID, h.clientSecret = cl.ClientID, cl.ClientSecret
	return h
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
