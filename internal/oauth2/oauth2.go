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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/modrun/modrun/engine"
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
			next.RefreshExpiresAt = now.Add(lifetime(resp.RefreshExpiresIn)).UnixMilli()
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
