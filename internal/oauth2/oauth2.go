// Package oauth2 gets and refreshes the access tokens of a package's
// oauth2: credentials (DESIGN §12), correctly where Appsmith's built-in
// OAuth2 and golang.org/x/oauth2 are not: on a 401 as well as ahead of a
// known expiry, one token request per credential and app at a time
// (engine.Flights), a rotated refresh token stored by compare-and-swap
// before its access token is used, the old refresh token kept when none
// comes back, a failed request never stored, and invalid_grant answered by
// re-reading the store — a peer may have rotated first.
//
// The token set lives in the instance's app under "oauth2." + the
// credential's name: {"access_token", "refresh_token", "token_type",
// "scope", "expires_at"} (expires_at in ms since the epoch; 0: unknown).
package oauth2

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/tracing"
)

// Store is what Client keeps token sets in: an instance's engine.Session.
type Store interface {
	Get(ctx context.Context, key string) (json.RawMessage, error)
	CompareAndSwap(ctx context.Context, key string, old, new json.RawMessage) (bool, error)
}

// Client gets tokens for one instance. Its zero value is not usable.
type Client struct {
	HTTP    *http.Client // sends token requests; its CheckRedirect is ignored: redirects are refused
	Store   Store        // the instance's app
	App     string       // for the flight key
	Flights engine.Flights
	Package string                            // for the error that says to log in
	Locker  engine.Locker                     // a store\'s lock across processes; nil: none
	Learn   func(secret string)               // the instance's redactor
	Observe func(cred, grant, outcome string) // metrics; nil: none
	// Log gets a line at info for each token request that succeeds and
	// each one retried (a failure that ends the refresh is returned, not
	// logged). Nil: none.
	Log *slog.Logger

	// The last set decoded, by its stored bytes: most calls find the same
	// set and skip decoding it.
	mu      sync.Mutex
	lastRaw []byte
	last    *Set
}

// Set is a stored token set.
type Set struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	TokenType    string `json:"token_type,omitempty"`
	Scope        string `json:"scope,omitempty"`
	ExpiresAt    int64  `json:"expires_at"`
	// Owner binds the set to the package and credential that got it (and
	// the credential's token URL and client id): Owner(pkg, spec). Another
	// package's run never sees, spends or replaces it, whatever app it
	// names. Empty in sets of earlier versions: the next refresh binds it.
	Owner string `json:"owner,omitempty"`
	// IssuedAt is when the set was stored (ms since the epoch): with
	// ExpiresAt, the token's lifetime, which bounds the refresh margin.
	IssuedAt int64 `json:"issued_at,omitempty"`
	// Package is the package whose credential got the set (for listing;
	// Owner is what binds it).
	Package string `json:"package,omitempty"`
	// RefreshExpiresAt is when the refresh token expires (ms since the
	// epoch; 0: unknown), from the answer's refresh_expires_in.
	RefreshExpiresAt int64 `json:"refresh_expires_at,omitempty"`
	// Failures counts the refreshes that failed in a row since the last
	// success; LastError is the last one's error (it names the
	// credential and the OAuth error, never a token).
	Failures  int    `json:"failures,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// FailedAt is when the last failure happened (ms since the epoch):
	// with the state, what tells one failure from the next.
	FailedAt int64 `json:"failed_at,omitempty"`
	// NeedsLogin is set when the refresh token was rejected
	// (invalid_grant): the set holds no tokens, only that news, until
	// runner login (or a new refresh token) replaces it.
	NeedsLogin bool `json:"needs_login,omitempty"`
	// Refreshing records a refresh in progress (DESIGN §18): written
	// under the store's lock before the token request is sent, replaced
	// by the new set. A holder that finds it under the lock knows the
	// refresh it names was interrupted (its process killed, paused or cut
	// off mid-request): the refresh token may already be spent.
	Refreshing *Refreshing `json:"refreshing,omitempty"`
}

// Refreshing is a refresh in progress: who sent it and when.
type Refreshing struct {
	By string `json:"by"` // the process: host and pid
	At int64  `json:"at"` // ms since the epoch
}

// holder names this process in Refreshing records.
var holder = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s pid %d", cmp.Or(h, "localhost"), os.Getpid())
})

// Owner is the binding of a token set to package pkg's credential spec.
func Owner(pkg string, spec engine.TokenSpec) string {
	h := sha256.Sum256([]byte(pkg + "\x00" + spec.Name + "\x00" + spec.TokenURL + "\x00" + spec.ClientID))
	return hex.EncodeToString(h[:12])
}

// ErrNotOwner is returned when the token set stored under a credential's
// key in the app belongs to another package or credential.
var ErrNotOwner = errors.New("the token set stored there belongs to another package or credential (another token URL or client id); refusing to use, spend or replace it")

// Key is the store key of a credential's token set.
func Key(credential string) string { return "oauth2." + credential }

// usable reports whether s holds an access token that is not stale and
// does not expire within margin.
func (s *Set) usable(stale string, margin time.Duration) bool {
	if s == nil || s.AccessToken == "" || s.AccessToken == stale {
		return false
	}
	return s.usableAt(time.Now(), margin)
}

// usableAt reports whether s's access token does not expire within margin
// of now. A margin longer than half the token's lifetime acts as half of
// it: a 30 s margin on a 20 s token would refresh on every call.
func (s *Set) usableAt(now time.Time, margin time.Duration) bool {
	if s.ExpiresAt == 0 {
		return true
	}
	if s.IssuedAt > 0 && s.ExpiresAt > s.IssuedAt {
		margin = min(margin, time.Duration(s.ExpiresAt-s.IssuedAt)*time.Millisecond/2)
	}
	return now.Add(margin).UnixMilli() < s.ExpiresAt
}

// expiresAt is when an access token got now expires, in ms since the
// epoch (0: unknown): from the answer's expires_in, else the token's JWT
// exp, else the credential's expiresIn. A JWT with iat too is read as a
// lifetime (exp - iat) from now: the provider's clock may be minutes off
// ours, and its exp, read on our clock, would come too late (the API
// then sees expired tokens) or too early (every call refreshes).
func expiresAt(now time.Time, resp *Response, spec engine.TokenSpec) int64 {
	exp, iat := jwtTimes(resp.AccessToken)
	switch {
	case resp.ExpiresIn > 0:
		return now.Add(time.Duration(resp.ExpiresIn * float64(time.Second))).UnixMilli()
	case exp > 0 && iat > 0 && exp > iat:
		return now.Add(time.Duration(exp-iat) * time.Second).UnixMilli()
	case exp > 0:
		return exp * 1000
	case spec.ExpiresIn > 0:
		return now.Add(spec.ExpiresIn).UnixMilli()
	}
	return 0
}

// jwtTimes are the exp and iat claims (seconds since the epoch) of a JWT
// access token; 0 for a token that is no JWT or a claim it lacks. The
// signature is not checked: the token is the server's to judge; they only
// say when to refresh.
func jwtTimes(tok string) (exp, iat int64) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return 0, 0
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, 0
	}
	var claims struct {
		Exp json.Number `json:"exp"`
		Iat json.Number `json:"iat"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return 0, 0
	}
	seconds := func(n json.Number) int64 {
		f, err := n.Float64()
		if err != nil || f <= 0 {
			return 0
		}
		return int64(f)
	}
	return seconds(claims.Exp), seconds(claims.Iat)
}

// Current returns the stored access token of credential spec, or "".
func (c *Client) Current(ctx context.Context, spec engine.TokenSpec) string {
	set, _, err := c.load(ctx, spec)
	if err != nil || set == nil {
		return ""
	}
	return set.AccessToken
}

// Token implements engine.TokenSource.
func (c *Client) Token(ctx context.Context, spec engine.TokenSpec, stale string) (string, error) {
	set, _, err := c.load(ctx, spec)
	if err != nil {
		return "", err
	}
	if set.usable(stale, spec.Margin) {
		c.learn(set)
		return set.AccessToken, nil
	}
	call, leader := c.Flights.Join(c.App + "\x00" + Key(spec.Name))
	if !leader {
		raw, err := call.Wait(ctx)
		if err != nil {
			return "", err
		}
		var tok string
		json.Unmarshal(raw, &tok)
		if c.Learn != nil {
			c.Learn(tok) // the leader's token is this instance's secret too
		}
		return tok, nil
	}
	tok, err := c.lockedRefresh(ctx, spec, stale)
	raw, _ := json.Marshal(tok)
	call.Finish(raw, err)
	return tok, err
}

// lockedRefresh is refresh under the store's lock across processes, if it
// has one: one refresh across every process on the store, the others
// finding its result when they re-read.
func (c *Client) lockedRefresh(ctx context.Context, spec engine.TokenSpec, stale string) (string, error) {
	if c.Locker != nil {
		unlock, err := c.Locker.Lock(ctx, c.App, Key(spec.Name))
		if err != nil {
			return "", fmt.Errorf("%s: taking the refresh lock: %w", spec.Name, err)
		}
		defer unlock()
	}
	return c.refresh(ctx, spec, stale)
}

func (c *Client) learn(s *Set) {
	if c.Learn != nil && s != nil {
		c.Learn(s.AccessToken)
		c.Learn(s.RefreshToken)
	}
}

// load reads spec's stored set (nil: none) and its raw value, for the
// compare-and-swap that replaces it. A set bound to another owner is
// ErrNotOwner.
func (c *Client) load(ctx context.Context, spec engine.TokenSpec) (*Set, json.RawMessage, error) {
	set, raw, err := c.loadAny(ctx, spec.Name)
	if err == nil && set != nil && set.Owner != "" && set.Owner != Owner(c.Package, spec) {
		return nil, nil, fmt.Errorf("%s: app %s: %w", spec.Name, engine.QuoteKey(c.App), ErrNotOwner)
	}
	return set, raw, err
}

// loadAny is load whoever owns the set.
func (c *Client) loadAny(ctx context.Context, name string) (*Set, json.RawMessage, error) {
	raw, err := c.Store.Get(ctx, Key(name))
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: reading the token set: %w", name, err)
	}
	c.mu.Lock()
	if c.last != nil && bytes.Equal(raw, c.lastRaw) {
		s := *c.last
		c.mu.Unlock()
		return &s, raw, nil
	}
	c.mu.Unlock()
	var s Set
	if json.Unmarshal(raw, &s) != nil {
		return nil, raw, nil // not ours: replaced by the next token
	}
	c.mu.Lock()
	c.lastRaw, c.last = bytes.Clone(raw), &s
	c.mu.Unlock()
	cp := s
	return &cp, raw, nil
}

// Logout removes spec's stored token set, if it is spec's.
func (c *Client) Logout(ctx context.Context, spec engine.TokenSpec) error {
	for range 3 {
		set, raw, err := c.load(ctx, spec)
		if err != nil || set == nil && raw == nil {
			return err
		}
		ok, err := c.Store.CompareAndSwap(ctx, Key(spec.Name), raw, nil)
		if err != nil || ok {
			return err
		}
	}
	return errors.New(spec.Name + ": the token set kept changing; log out again")
}

// refresh is the leader's work: a token request, its result stored before
// it is used.
func (c *Client) refresh(ctx context.Context, spec engine.TokenSpec, stale string) (string, error) {
	for attempt := 0; attempt < 3; attempt++ {
		// Again: a peer (another process) may have refreshed meanwhile.
		set, raw, err := c.load(ctx, spec)
		if err != nil {
			return "", err
		}
		if set.usable(stale, spec.Margin) {
			c.learn(set)
			return set.AccessToken, nil
		}
		form, grant, err := c.form(spec, set)
		if err != nil {
			return "", err
		}
		// Under a lock across processes: record the refresh before it is
		// sent, and take over one a peer left unfinished.
		interrupted := ""
		rctx := ctx
		if c.Locker != nil && grant == engine.GrantRefreshToken {
			// Only a refresh token can be spent by a request whose
			// answer is lost: other grants have nothing to take over.
			if set.Refreshing != nil {
				interrupted = set.Refreshing.By
				c.observe(spec.Name, grant, "takeover")
				if c.Log != nil {
					c.Log.WarnContext(ctx, "refresh interrupted on another process; taking it over: the refresh token may be spent", "credential", spec.Name, "on", interrupted)
				}
			}
			marked, ok, err := c.markRefreshing(ctx, spec, set, raw)
			if err != nil {
				return "", err
			}
			if !ok {
				continue // a peer changed the set meanwhile: read it again
			}
			raw = marked
			// The request ends while the lease surely holds: its answer
			// is never stored after a peer may have taken the lock.
			if l, ok := c.Locker.(engine.Leased); ok && l.LockTTL() > 0 {
				var cancel context.CancelFunc
				rctx, cancel = context.WithTimeout(ctx, l.LockTTL()/2)
				defer cancel()
			}
		}
		resp, err := c.requestRetrying(rctx, spec, form)
		if err != nil {
			if interrupted != "" {
				err = fmt.Errorf("%w (after a refresh interrupted on %s)", err, interrupted)
			}
			// Observed once what the failure left is stored: a server
			// reads the health again when told of a failure.
			outcome := "error:" + FailureReason(err)
			var oe *oauthError
			if errors.As(err, &oe) && oe.code == "invalid_grant" && grant == engine.GrantRefreshToken {
				now, nowRaw, lerr := c.load(ctx, spec)
				if lerr == nil && now != nil && now.RefreshToken != set.RefreshToken {
					c.observe(spec.Name, grant, outcome)
					continue // a peer rotated it first: use theirs
				}
				// Dead for good: its tokens go, and what is left says the
				// login needs a person (DESIGN §18), unless a peer
				// replaced the set meanwhile.
				dead := fmt.Errorf("%s: the refresh token was rejected (invalid_grant): run runner login %s %s", spec.Name, c.Package, spec.Name)
				if interrupted != "" {
					dead = fmt.Errorf("%s: the refresh token was rejected (invalid_grant) after a refresh interrupted on %s spent it (a provider's reuse grace period would have saved it): run runner login %s %s",
						spec.Name, interrupted, c.Package, spec.Name)
				}
				if nowRaw != nil {
					tomb, _ := json.Marshal(&Set{Owner: Owner(c.Package, spec), Package: c.Package, NeedsLogin: true,
						Failures: set.Failures + 1, LastError: dead.Error(), FailedAt: time.Now().UnixMilli(), IssuedAt: set.IssuedAt})
					c.Store.CompareAndSwap(ctx, Key(spec.Name), nowRaw, tomb)
				}
				c.observe(spec.Name, grant, outcome)
				return "", dead
			}
			c.recordFailure(ctx, spec, raw, set, err)
			c.observe(spec.Name, grant, outcome)
			return "", err
		}
		c.observe(spec.Name, grant, "ok")
		next := &Set{AccessToken: resp.AccessToken, RefreshToken: resp.RefreshToken, TokenType: resp.TokenType, Scope: resp.Scope,
			Owner: Owner(c.Package, spec), Package: c.Package}
		if interrupted != "" {
			// Taken over: the login survived (the provider's reuse
			// grace, or the request never reached it), but it was at
			// risk; /v1/credentials says so until the next refresh.
			next.LastError = fmt.Sprintf("%s: refresh interrupted on %s; taken over by %s", spec.Name, interrupted, holder())
		}
		if next.RefreshToken == "" && set != nil {
			next.RefreshToken = set.RefreshToken // none came back: keep the old
		}
		now := time.Now()
		next.ExpiresAt, next.IssuedAt = expiresAt(now, resp, spec), now.UnixMilli()
		switch {
		case next.RefreshToken == "":
			// No refresh token (client credentials): nothing expires.
		case resp.RefreshExpiresIn > 0:
			next.RefreshExpiresAt = now.Add(time.Duration(resp.RefreshExpiresIn * float64(time.Second))).UnixMilli()
		case spec.RefreshTokenLifetime > 0:
			// An idle lifetime: using the refresh token renewed it.
			next.RefreshExpiresAt = now.Add(spec.RefreshTokenLifetime).UnixMilli()
		case resp.RefreshToken == "" && set != nil:
			next.RefreshExpiresAt = set.RefreshExpiresAt // the same refresh token
		}
		c.learn(next)
		val, _ := json.Marshal(next)
		ok, err := c.Store.CompareAndSwap(ctx, Key(spec.Name), raw, val)
		if err != nil {
			return "", fmt.Errorf("%s: storing the token set: %w", spec.Name, err)
		}
		if ok {
			return next.AccessToken, nil
		}
		// A peer stored a set between our read and our write; take theirs
		// if it is good (our new refresh token may now be the only valid
		// one: the server rotated on our request, so store ours over a set
		// that is not usable).
		peer, peerRaw, err := c.load(ctx, spec)
		if err == nil && peer.usable(stale, spec.Margin) {
			c.learn(peer)
			return peer.AccessToken, nil
		}
		if ok, err := c.Store.CompareAndSwap(ctx, Key(spec.Name), peerRaw, val); err == nil && ok {
			return next.AccessToken, nil
		}
	}
	return "", fmt.Errorf("%s: the token set kept changing under this run; try again", spec.Name)
}

// recordFailure counts a failed refresh in the stored set (failures,
// last_error), unless a peer replaced it meanwhile: its health shows in
// /v1/credentials and runner credentials as refresh_failing.
func (c *Client) recordFailure(ctx context.Context, spec engine.TokenSpec, raw json.RawMessage, set *Set, err error) {
	if set == nil || raw == nil {
		return
	}
	next := *set
	next.Failures++
	next.LastError, next.FailedAt = err.Error(), time.Now().UnixMilli()
	next.Refreshing = nil // it ended: failed, but not interrupted
	val, merr := json.Marshal(&next)
	if merr != nil {
		return
	}
	c.Store.CompareAndSwap(ctx, Key(spec.Name), raw, val)
}

// markRefreshing stores set (raw as read) with a Refreshing record of
// this process, under the lock; ok is false when a peer changed it since
// it was read.
func (c *Client) markRefreshing(ctx context.Context, spec engine.TokenSpec, set *Set, raw json.RawMessage) (json.RawMessage, bool, error) {
	next := *set
	next.Refreshing = &Refreshing{By: holder(), At: time.Now().UnixMilli()}
	val, err := json.Marshal(&next)
	if err != nil {
		return nil, false, err
	}
	ok, err := c.Store.CompareAndSwap(ctx, Key(spec.Name), raw, val)
	if err != nil {
		return nil, false, fmt.Errorf("%s: recording the refresh in progress: %w", spec.Name, err)
	}
	return val, ok, nil
}

func (c *Client) observe(cred, grant, outcome string) {
	if c.Observe != nil {
		c.Observe(cred, grant, outcome)
	}
}

// form is the token request for spec given the stored set, and the grant
// it uses: a refresh when there is a refresh token, else the credential's
// own grant.
func (c *Client) form(spec engine.TokenSpec, set *Set) (url.Values, string, error) {
	f := url.Values{}
	grant := spec.Grant
	switch {
	case spec.Grant != engine.GrantClientCredentials && set != nil && set.RefreshToken != "":
		grant = engine.GrantRefreshToken
		f.Set("refresh_token", set.RefreshToken)
	case spec.Grant == engine.GrantClientCredentials:
	case spec.Grant == engine.GrantPassword:
		f.Set("username", spec.Username)
		f.Set("password", spec.Password)
	default:
		return nil, "", fmt.Errorf("%s: no token yet: run runner login %s %s (or store a refresh token under %s)", spec.Name, c.Package, spec.Name, Key(spec.Name))
	}
	f.Set("grant_type", grant)
	if len(spec.Scopes) > 0 && grant != engine.GrantRefreshToken {
		f.Set("scope", strings.Join(spec.Scopes, " "))
	}
	for k, v := range spec.Params {
		f.Set(k, v)
	}
	if spec.ClientAuth == "body" || spec.ClientSecret == "" {
		f.Set("client_id", spec.ClientID)
		if spec.ClientSecret != "" {
			f.Set("client_secret", spec.ClientSecret)
		}
	}
	return f, grant, nil
}

// Token requests that fail transiently — the endpoint unreachable, a 5xx
// or a 429 — are tried again, at most MaxTokenAttempts times in all, after
// a backoff doubling from TokenRetryBackoff (or the answer's
// Retry-After), within the call's deadline. invalid_grant and
// invalid_client are answers, not failures: never retried.
const (
	MaxTokenAttempts  = 4
	TokenRetryBackoff = 100 * time.Millisecond
)

// transientError is a token request failure worth trying again.
type transientError struct {
	err        error
	retryAfter time.Duration // the server's Retry-After; 0: none
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// requestRetrying is request, tried again on transient failures (see
// MaxTokenAttempts). A refresh whose request may have reached the server
// (a timeout, a dropped connection) is not sent again: the server may
// have rotated the refresh token on it, and a second request would spend
// the old one twice.
func (c *Client) requestRetrying(ctx context.Context, spec engine.TokenSpec, form url.Values) (*Response, error) {
	wait := TokenRetryBackoff
	grant := form.Get("grant_type")
	for attempt := 1; ; attempt++ {
		start := time.Now()
		resp, err := c.request(ctx, spec, form)
		if err == nil && c.Log != nil {
			c.Log.InfoContext(ctx, "token request", "credential", spec.Name, "grant", grant, "attempt", attempt,
				"took", time.Since(start).Round(time.Millisecond).String())
		}
		var te *transientError
		if err == nil || attempt >= MaxTokenAttempts || !errors.As(err, &te) {
			return resp, err
		}
		d := wait
		if te.retryAfter > 0 {
			d = te.retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return resp, err // no time for another try
		}
		c.observe(spec.Name, grant, "retry")
		if c.Log != nil {
			c.Log.InfoContext(ctx, "token request failed; retrying", "credential", spec.Name, "grant", grant, "attempt", attempt,
				"wait", d.String(), "reason", FailureReason(err), "error", err.Error())
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, err
		case <-t.C:
		}
		wait *= 2
	}
}

// notSent reports whether err means the request never reached the
// server: it could not connect.
func notSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// retryAfter reads a Retry-After header in seconds (capped at a minute).
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After")))
	if err != nil || n < 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, time.Minute)
}

// MaxResponse bounds a token endpoint's answer.
const MaxResponse = 1 << 20

// request sends a token request: form-encoded, client authentication by
// Basic (RFC 6749 §2.3.1: id and secret form-encoded first) unless in the
// body; no redirect followed.
func (c *Client) request(ctx context.Context, spec engine.TokenSpec, form url.Values) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: token request: the tokenUrl is not valid: %v", spec.Name, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if spec.ClientAuth != "body" && spec.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(spec.ClientID), url.QueryEscape(spec.ClientSecret))
	}
	hc := *c.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	end := tracing.StartClient(req, "oauth2 token "+spec.Name,
		attribute.String("modrun.credential", spec.Name), attribute.String("oauth2.grant_type", form.Get("grant_type")))
	resp, err := hc.Do(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	end(status, err)
	if err != nil {
		sent := !notSent(err)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("%s: token request to %s: %v", spec.Name, req.URL.Host, err)
		if !sent || form.Get("grant_type") != engine.GrantRefreshToken {
			err = &transientError{err: err}
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s: token request to %s: %v", spec.Name, req.URL.Host, err)
	}
	if len(body) > MaxResponse {
		return nil, fmt.Errorf("%s: token request: the answer is over %d bytes", spec.Name, MaxResponse)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fmt.Errorf("%s: token request: HTTP %d: the token endpoint redirected; refusing to follow (it would resend the credentials)", spec.Name, resp.StatusCode)
	}
	tr, err := ParseResponse(resp.StatusCode, body)
	if err != nil {
		err = fmt.Errorf("%s: token request: %w", spec.Name, err)
		var oe *oauthError
		if errors.As(err, &oe) && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) &&
			oe.code != "invalid_grant" && oe.code != "invalid_client" {
			err = &transientError{err: err, retryAfter: retryAfter(resp.Header)}
		}
		return nil, err
	}
	return tr, nil
}

// Response is a token endpoint's successful answer.
type Response struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string
	ExpiresIn    float64 // seconds; 0: not given
	// RefreshExpiresIn is the refresh token's lifetime in seconds, from
	// refresh_expires_in (Keycloak and others); 0: not given.
	RefreshExpiresIn float64
}

// oauthError is an OAuth error answer (RFC 6749 §5.2).
// FailureReason classifies a failed token request for
// modrun_oauth2_refresh_failures_total: the OAuth2 error code the
// server gave (invalid_grant, invalid_client, …), else http_429,
// http_5xx, http_4xx, network or other.
func FailureReason(err error) string {
	var oe *oauthError
	if errors.As(err, &oe) {
		switch {
		case rfc6749Errors[oe.code]:
			return oe.code // a label value of a bounded set: never the server's free text
		case oe.status == http.StatusTooManyRequests:
			return "http_429"
		case oe.status >= 500:
			return "http_5xx"
		case oe.status >= 400:
			return "http_4xx"
		}
		return "other"
	}
	var te *transientError
	if errors.As(err, &te) {
		return "network"
	}
	return "other"
}

// rfc6749Errors are the token endpoint's error codes (RFC 6749 §5.2).
var rfc6749Errors = map[string]bool{"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true}

type oauthError struct {
	status int
	code   string
}

func (e *oauthError) Error() string {
	if e.status == http.StatusOK {
		return "the answer is an error: " + e.code
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.code)
}

// ParseResponse reads a token endpoint's answer: a 200 with a JSON object
// holding access_token, a bearer token_type (or none) and expires_in as a
// number or a numeric string (or none). Anything else is an error that
// names the OAuth error and never a token.
func ParseResponse(status int, body []byte) (*Response, error) {
	var m map[string]any
	jsonErr := json.Unmarshal(bytes.TrimSpace(body), &m)
	code := ""
	if jsonErr == nil {
		if e, ok := m["error"].(string); ok {
			code = e
		}
	}
	switch {
	case code != "":
		return nil, &oauthError{status, shorten(code)}
	case status != http.StatusOK:
		return nil, &oauthError{status, http.StatusText(status)}
	case jsonErr != nil:
		return nil, errors.New("the answer is not JSON (an HTML error page?)")
	}
	r := &Response{}
	var ok bool
	if r.AccessToken, ok = m["access_token"].(string); !ok || r.AccessToken == "" {
		return nil, errors.New("the answer has no access_token")
	}
	if v, present := m["refresh_token"]; present {
		if r.RefreshToken, ok = v.(string); !ok {
			return nil, errors.New("refresh_token is not a string")
		}
	}
	if v, present := m["token_type"]; present {
		r.TokenType, _ = v.(string)
		if !strings.EqualFold(r.TokenType, "bearer") {
			return nil, fmt.Errorf("token_type %q: only bearer tokens are supported", shorten(r.TokenType))
		}
	}
	r.Scope, _ = m["scope"].(string)
	if v, ok := m["refresh_expires_in"].(float64); ok && v > 0 {
		r.RefreshExpiresIn = v
	}
	switch v := m["expires_in"].(type) {
	case nil:
	case float64:
		r.ExpiresIn = v
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("expires_in %q is not a number", shorten(v))
		}
		r.ExpiresIn = f
	default:
		return nil, errors.New("expires_in is not a number")
	}
	if r.ExpiresIn < 0 {
		r.ExpiresIn = 0
	}
	return r, nil
}

func shorten(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
