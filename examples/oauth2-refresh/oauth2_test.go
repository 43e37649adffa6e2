// Package oauth2refresh tests the oauth2-refresh package against a real
// OAuth 2.0 authorization server library.
package oauth2refresh

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/go-oauth2/oauth2/v4/server"
	oauthstore "github.com/go-oauth2/oauth2/v4/store"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/store"
)

type authServer struct {
	*httptest.Server
	refreshes atomic.Int64
	bodies    chan string
}

// newAuthServer starts go-oauth2's server with the password and
// refresh_token grants, rotating refresh tokens.
func newAuthServer(t *testing.T) *authServer {
	manager := manage.NewDefaultManager()
	manager.MustTokenStorage(oauthstore.NewMemoryTokenStore())
	clients := oauthstore.NewClientStore()
	clients.Set("modrun-client", &models.Client{ID: "modrun-client", Secret: "client-secret-xyz", Domain: "http://127.0.0.1"})
	manager.MapClientStorage(clients)
	manager.SetPasswordTokenCfg(&manage.Config{AccessTokenExp: time.Hour, RefreshTokenExp: 24 * time.Hour, IsGenerateRefresh: true})
	manager.SetRefreshTokenCfg(&manage.RefreshingConfig{IsGenerateRefresh: true, IsRemoveAccess: true, IsRemoveRefreshing: true})
	srv := server.NewDefaultServer(manager)
	srv.SetAllowGetAccessRequest(false)
	srv.SetClientInfoHandler(server.ClientBasicHandler)
	srv.SetPasswordAuthorizationHandler(func(ctx context.Context, clientID, username, password string) (string, error) {
		if username == "ada" && password == "ada-password-1" {
			return "user-ada", nil
		}
		return "", errors.ErrAccessDenied
	})
	a := &authServer{bodies: make(chan string, 1000)}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil && r.PostForm.Get("grant_type") == "refresh_token" {
			a.refreshes.Add(1)
			_, _, basic := r.BasicAuth()
			a.bodies <- r.Header.Get("Content-Type") + "|" + r.PostForm.Encode() + "|basic=" + map[bool]string{true: "yes", false: "no"}[basic]
			// Slow enough that concurrent callers surely overlap.
			time.Sleep(50 * time.Millisecond)
		}
		if r.URL.Path == "/me" {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if _, err := manager.LoadAccessToken(r.Context(), tok); err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"me":"ada"}`))
			return
		}
		srv.HandleTokenRequest(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

func newInstance(t *testing.T, a *authServer, db *store.DB) (*modrun.Engine, func() *instance) {
	eng := modrun.New(modrun.Options{Store: db})
	pkg, err := eng.Load("./package")
	if err != nil {
		t.Fatal(err)
	}
	return eng, func() *instance {
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{
			"tokenUrl": a.URL + "/token", "clientId": "modrun-client", "clientSecret": "client-secret-xyz",
			"username": "ada", "password": "ada-password-1",
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { inst.Close() })
		return &instance{t, inst}
	}
}

type instance struct {
	t    *testing.T
	inst interface {
		Call(context.Context, string, ...json.RawMessage) (json.RawMessage, error)
	}
}

func (i *instance) call(target string) string {
	i.t.Helper()
	out, err := i.inst.Call(context.Background(), target)
	if err != nil {
		i.t.Fatalf("%s: %v", target, err)
	}
	return string(out)
}

func get(db *store.DB, key string) string {
	v, _ := db.Get(context.Background(), "oauth2-refresh", key)
	var s string
	json.Unmarshal(v, &s)
	return s
}

func TestRefreshAgainstGoOAuth2(t *testing.T) {
	a := newAuthServer(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, mk := newInstance(t, a, db)
	inst := mk()
	inst.call("oauth.login")
	rt1, at1 := get(db, "refresh_token"), get(db, "access_token")
	if rt1 == "" || at1 == "" {
		t.Fatal("login stored no tokens")
	}
	if out := inst.call("oauth.refresh"); out != `{"refreshed":true,"expiresIn":3600}` {
		t.Fatalf("refresh: %s", out)
	}
	rt2 := get(db, "refresh_token")
	if rt2 == rt1 || get(db, "access_token") == at1 {
		t.Fatal("tokens did not rotate")
	}
	body := <-a.bodies
	if body != "application/x-www-form-urlencoded|grant_type=refresh_token&refresh_token="+rt1+"|basic=yes" {
		t.Fatalf("the refresh request was %q", body)
	}

	// The spent token is dead at the server: replaying it is invalid_grant,
	// which surfaces as a log-in-again error without the token in it.
	db.Set(context.Background(), "oauth2-refresh", "refresh_token", json.RawMessage(`"`+rt1+`"`))
	_, err = inst.inst.Call(context.Background(), "oauth.refresh")
	if err == nil || !strings.Contains(err.Error(), "log in again") || strings.Contains(err.Error(), rt1) {
		t.Fatalf("replayed token: %v", err)
	}
	<-a.bodies
	db.Set(context.Background(), "oauth2-refresh", "refresh_token", json.RawMessage(`"`+rt2+`"`))

	// 20 concurrent refreshes on one engine: one request.
	before := a.refreshes.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := inst.inst.Call(context.Background(), "oauth.refresh"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := a.refreshes.Load() - before; n != 1 {
		t.Fatalf("%d refresh requests for 20 concurrent callers, want 1", n)
	}
}

// TestDeclarative runs ./declarative, the same flow with an oauth2:
// credential instead of JS: the first call logs in, an expired token
// gets one refresh for 20 concurrent calls.
func TestDeclarative(t *testing.T) {
	a := newAuthServer(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eng := modrun.New(modrun.Options{Store: db})
	pkg, err := eng.Load("./declarative")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{
		"baseUrl": a.URL, "clientId": "modrun-client", "clientSecret": "client-secret-xyz", "username": "ada", "password": "ada-password-1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	ctx := context.Background()
	if out, err := inst.Call(ctx, "me"); err != nil || string(out) != `{"me":"ada"}` {
		t.Fatalf("me: %s, %v", out, err)
	}
	raw, _ := db.Get(ctx, "oauth2-declarative", "oauth2.api")
	var set map[string]any
	json.Unmarshal(raw, &set)
	set["expires_at"] = 1 // long expired
	expired, _ := json.Marshal(set)
	db.Set(ctx, "oauth2-declarative", "oauth2.api", expired)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := inst.Call(ctx, "me"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := a.refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes for 20 concurrent calls; want 1", n)
	}
}
