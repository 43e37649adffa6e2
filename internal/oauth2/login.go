package oauth2

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/termsafe"
)

// Login runs the authorization code grant with PKCE (RFC 7636, S256) and
// state: it listens on redirectURL's loopback address (RFC 8252), calls
// open with the URL a person must visit, waits for the callback, checks
// its state, exchanges the code with the verifier, and stores the token
// set. ctx bounds the wait.
func (c *Client) Login(ctx context.Context, spec engine.TokenSpec, authorizeURL, redirectURL string, open func(url string)) error {
	ru, err := url.Parse(redirectURL)
	if err != nil || ru.Scheme != "http" {
		return fmt.Errorf("%s: redirectUrl %q is not an http URL", spec.Name, redirectURL)
	}
	switch ru.Hostname() {
	case "127.0.0.1", "localhost", "::1":
	default:
		return fmt.Errorf("%s: redirectUrl %q: only a loopback host may receive the code", spec.Name, redirectURL)
	}
	l, err := net.Listen("tcp", ru.Host)
	if err != nil {
		return fmt.Errorf("%s: listening for the callback on %s: %w", spec.Name, ru.Host, err)
	}
	defer l.Close()
	verifier, state := random(32), random(16)
	sum := sha256.Sum256([]byte(verifier))
	au, err := url.Parse(authorizeURL)
	if err != nil {
		return fmt.Errorf("%s: authorizeUrl is not a URL", spec.Name)
	}
	q := au.Query()
	q.Set("response_type", "code")
	q.Set("client_id", spec.ClientID)
	q.Set("redirect_uri", redirectURL)
	q.Set("state", state)
	q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
	q.Set("code_challenge_method", "S256")
	if len(spec.Scopes) > 0 {
		q.Set("scope", strings.Join(spec.Scopes, " "))
	}
	au.RawQuery = q.Encode()

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	var once sync.Once
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ru.Path && !(ru.Path == "" && r.URL.Path == "/") {
			http.NotFound(w, r)
			return
		}
		v := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(v.Get("state")), []byte(state)) != 1 {
			// Not this login's callback (forged, replayed, or another
			// tab's): it ends nothing; the login waits on until its
			// timeout (DESIGN §17).
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, "<p>This callback is not for the login in progress (its state does not match).</p>")
			return
		}
		var res result
		switch {
		case v.Get("error") != "":
			res.err = fmt.Errorf("%s: the authorization server answered %s", spec.Name, termsafe.String(shorten(v.Get("error"))))
		case v.Get("code") == "":
			res.err = fmt.Errorf("%s: the callback has no code", spec.Name)
		default:
			res.code = v.Get("code")
		}
		first := false
		once.Do(func() {
			first = true
			got <- res
		})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch {
		case !first:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, "<p>This login is over; start runner login again.</p>")
		case res.err != nil:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "<p>Login failed: %s</p>", html.EscapeString(res.err.Error()))
		default:
			fmt.Fprint(w, "<p>Logged in. You can close this tab.</p>")
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	open(au.String())
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		return fmt.Errorf("%s: no callback on %s before the timeout", spec.Name, redirectURL)
	}
	if res.err != nil {
		return res.err
	}
	form := url.Values{"grant_type": {engine.GrantAuthorizationCode}, "code": {res.code}, "redirect_uri": {redirectURL}, "code_verifier": {verifier}}
	if spec.ClientAuth == "body" || spec.ClientSecret == "" {
		form.Set("client_id", spec.ClientID)
		if spec.ClientSecret != "" {
			form.Set("client_secret", spec.ClientSecret)
		}
	}
	resp, err := c.request(ctx, spec, form)
	if err != nil {
		c.observe(spec.Name, engine.GrantAuthorizationCode, "error")
		return err
	}
	c.observe(spec.Name, engine.GrantAuthorizationCode, "ok")
	set := &Set{AccessToken: resp.AccessToken, RefreshToken: resp.RefreshToken, TokenType: resp.TokenType, Scope: resp.Scope, Owner: Owner(c.Package, spec), Package: c.Package}
	now := time.Now()
	set.ExpiresAt, set.IssuedAt = expiresAt(now, resp, spec), now.UnixMilli()
	c.learn(set)
	val, _ := json.Marshal(set)
	for range 3 {
		// A login is a person's choice: it replaces whatever set the app
		// held under the key, whoever's it was.
		_, old, err := c.loadAny(ctx, spec.Name)
		if err != nil {
			return err
		}
		ok, err := c.Store.CompareAndSwap(ctx, Key(spec.Name), old, val)
		if err != nil {
			return fmt.Errorf("%s: storing the token set: %w", spec.Name, err)
		}
		if ok {
			return nil
		}
	}
	return errors.New(spec.Name + ": the token set kept changing; log in again")
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
