package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/go-oauth2/oauth2/v4/server"
	oauthstore "github.com/go-oauth2/oauth2/v4/store"
)

// TestLogin drives runner login end to end against go-oauth2's
// authorization server: the test follows the printed URL, the callback
// reaches the runner, the token set lands in the store; a wrong state
// and an error answer fail naming them.
func TestLogin(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	redirect := "http://" + l.Addr().String() + "/callback"
	l.Close()
	manager := manage.NewDefaultManager()
	manager.MustTokenStorage(oauthstore.NewMemoryTokenStore())
	clients := oauthstore.NewClientStore()
	clients.Set("login-client", &models.Client{ID: "login-client", Secret: "login-secret-123", Domain: "http://" + strings.TrimSuffix(strings.TrimPrefix(redirect, "http://"), "/callback")})
	manager.MapClientStorage(clients)
	manager.SetAuthorizeCodeTokenCfg(&manage.Config{AccessTokenExp: time.Hour, RefreshTokenExp: time.Hour, IsGenerateRefresh: true})
	srv := server.NewDefaultServer(manager)
	srv.SetClientInfoHandler(server.ClientBasicHandler)
	deny := false
	srv.SetUserAuthorizationHandler(func(w http.ResponseWriter, r *http.Request) (string, error) { return "user-ada", nil })
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize":
			if deny {
				http.Redirect(w, r, r.URL.Query().Get("redirect_uri")+"?error=access_denied&state="+r.URL.Query().Get("state"), http.StatusFound)
				return
			}
			if r.URL.Query().Get("code_challenge_method") != "S256" {
				http.Error(w, "no PKCE", 400)
				return
			}
			srv.HandleAuthorizeRequest(w, r)
		case "/token":
			srv.HandleTokenRequest(w, r)
		}
	}))
	defer as.Close()
	pkg := writePackage(t, map[string]string{
		"package.yaml": fmt.Sprintf(`name: web
version: 1.0.0
inputs:
  base: {default: %q}
oauth2:
  web:
    grant: authorization_code
    tokenUrl: <<inputs.base>>/token
    authorizeUrl: <<inputs.base>>/authorize
    redirectUrl: %s
    clientId: login-client
    clientSecret: login-secret-123
    scopes: [all]
`, as.URL, redirect),
		"me.query.yaml": "url: <<inputs.base>>/me\nauth: {oauth2: web}\n",
	})
	db := filepath.Join(t.TempDir(), "s.db")
	login := func(follow func(url string)) (string, string, int) {
		cmd := exec.Command(runnerBinary(t), "login", pkg, "web", "--store", db, "--timeout", "20s")
		var out bytes.Buffer
		cmd.Stdout = &out
		stderr, _ := cmd.StderrPipe()
		cmd.Start()
		var errText strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			errText.WriteString(line + "\n")
			if u, ok := strings.CutPrefix(line, "open: "); ok {
				go follow(u)
			}
		}
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return out.String(), errText.String(), code
	}
	get := func(u string) {
		resp, err := http.Get(u) // follows the redirect to the runner's callback
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	var callback string // the first login's callback URL, to replay
	out, stderr, code := login(func(u string) {
		client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.Contains(req.URL.Path, "/callback") {
				callback = req.URL.String()
			}
			return nil
		}}
		if resp, err := client.Get(u); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	if code != 0 || out != "logged in: web\n" {
		t.Fatalf("login: exit %d, out %q, stderr %s", code, out, stderr)
	}
	stored, _, _ := runCLI(t, "", "store", "get", "--store", db, "--app", "web", "oauth2.web", "--reveal")
	if !strings.Contains(stored, `"access_token":"`) || !strings.Contains(stored, `"refresh_token":"`) {
		t.Fatalf("stored: %s", stored)
	}
	if strings.Contains(stderr, "login-secret-123") {
		t.Fatal("the client secret was printed")
	}
	// A callback with a wrong state is refused (400) and ends nothing:
	// the login waits on, and the real callback that follows logs in
	// (DESIGN §17: a forged callback used to end the login).
	status := func(u string) int {
		resp, err := http.Get(u)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var forged int
	out, stderr, code = login(func(u string) {
		pu, _ := http.NewRequestWithContext(context.Background(), "GET", u, nil)
		q := pu.URL.Query()
		forged = status(q.Get("redirect_uri") + "?code=forged&state=not-the-state&error=%1b%5b2Jx")
		get(u)
	})
	if code != 0 || out != "logged in: web\n" || forged != http.StatusBadRequest {
		t.Fatalf("wrong state, then the real callback: exit %d (forged answered %d), %s", code, forged, stderr)
	}
	// The first login's callback replayed into a new login (its state is
	// the old one's) is refused too; the login then times out, saying so.
	if callback == "" {
		t.Fatal("the callback URL was not seen")
	}
	cmd := exec.Command(runnerBinary(t), "login", pkg, "web", "--store", db, "--timeout", "2s")
	stderrPipe, _ := cmd.StderrPipe()
	cmd.Start()
	var replayed int
	var errText strings.Builder
	sc := bufio.NewScanner(stderrPipe)
	for sc.Scan() {
		errText.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "open: ") {
			replayed = status(callback)
		}
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || replayed != http.StatusBadRequest || !strings.Contains(errText.String(), "no callback") {
		t.Fatalf("replayed callback: %v (it answered %d), %s", err, replayed, errText.String())
	}
	// The server says no.
	deny = true
	_, stderr, code = login(get)
	if code != 1 || !strings.Contains(stderr, "answered access_denied") {
		t.Fatalf("denied: exit %d, %s", code, stderr)
	}
}
