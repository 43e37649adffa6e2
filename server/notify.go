package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/oauth2"
)

// Defaults of the credential watch.
const (
	DefaultWatchEvery = 10 * time.Second
	DefaultWarnBefore = 7 * 24 * time.Hour
)

// Event is the JSON body POSTed to Options.Notify (DESIGN §18).
type Event struct {
	Event      string    `json:"event"` // refresh_failing, needs_login, refresh_token_expiring
	Package    string    `json:"package"`
	Credential string    `json:"credential"`
	App        string    `json:"app"`
	State      string    `json:"state"`
	Message    string    `json:"message"`
	At         time.Time `json:"at"`
}

type credKey struct{ pkg, cred, app string }

// watchCredentials reads the credentials' health every
// Options.WatchEvery until ctx ends. It keeps token sets fresh (see
// keepFresh) and announces each credential that enters refresh_failing
// or needs_login, or whose refresh token expires within
// Options.WarnBefore: a log line (warn, or error for needs_login) and,
// with Options.Notify, a POST of an Event, retried with backoff.
func (s *Server) watchCredentials(ctx context.Context) {
	w := &credWatch{last: map[credKey]string{}, warned: map[credKey]int64{}}
	t := time.NewTicker(s.opts.WatchEvery)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.credKick: // a token request failed just now
			}
		}
		all, ok := s.health(ctx)
		if !ok {
			continue // the store is down: /readyz says so
		}
		s.announceChanges(ctx, w, all)
		if s.keepFresh(ctx, all) > 0 {
			// What keep-fresh found (a revoked login, a failing
			// provider) is told now, not a tick later.
			if all, ok := s.health(ctx); ok {
				s.announceChanges(ctx, w, all)
			}
		}
	}
}

// credWatch is what the watch remembers between readings.
type credWatch struct {
	last   map[credKey]string // state last seen, with when it failed last
	warned map[credKey]int64  // refresh-token expiry last warned of
}

func (s *Server) health(ctx context.Context) ([]oauth2.Health, bool) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.WatchEvery)
	defer cancel()
	all, err := oauth2.Credentials(rctx, s.opts.Store, nil)
	return all, err == nil
}

func (s *Server) announceChanges(ctx context.Context, w *credWatch, all []oauth2.Health) {
	now := time.Now()
	for _, h := range all {
		k := credKey{h.Package, h.Credential, h.App}
		prev, seen := w.last[k]
		// needs_login and the failure that made it: a login revoked
		// again after a new one (between two readings) is news again; a
		// refresh failing once more is not.
		cur := h.State
		if h.State == oauth2.StateNeedsLogin && h.FailedAt != nil {
			cur += fmt.Sprint(" ", *h.FailedAt)
		}
		w.last[k] = cur
		if cur != prev && (h.State == oauth2.StateRefreshFailing || h.State == oauth2.StateNeedsLogin) && (seen || h.State == oauth2.StateNeedsLogin) {
			s.announce(ctx, Event{Event: h.State, Package: h.Package, Credential: h.Credential, App: h.App, State: h.State, Message: h.LastError, At: now.UTC()})
		}
		// A refresh token nearing its end, unless keep-fresh is about to
		// renew it: within WarnBefore, and past half its lifetime (an
		// idle lifetime shorter than WarnBefore is renewed at half).
		if rt := h.RefreshTokenExpiresAt; rt != nil && time.UnixMilli(*rt).Sub(now) < min(s.opts.WarnBefore, halfLife(h)) && w.warned[k] != *rt {
			w.warned[k] = *rt
			s.announce(ctx, Event{Event: "refresh_token_expiring", Package: h.Package, Credential: h.Credential, App: h.App, State: h.State,
				Message: fmt.Sprintf("the refresh token expires at %s: log in again before then", time.UnixMilli(*rt).UTC().Format(time.RFC3339)), At: now.UTC()})
		}
	}
}

// keepFreshTimeout bounds one keep-fresh refresh (its retries included).
const keepFreshTimeout = 30 * time.Second

// keepFresh refreshes, through an instance of the package for the app,
// every stored token set that is due (DESIGN §18), so that a login never
// dies of disuse and a revoked one is found before a user's call is: an
// access token expiring before the next reading or two (with the
// credential's margin), one whose last refresh failed, and a refresh
// token past half its lifetime (idle lifetimes: refreshing renews it).
// Credentials with keepFresh: false, of packages this server does not
// serve, or without a known expiry are left to calls. It returns how many
// refreshes it asked for.
func (s *Server) keepFresh(ctx context.Context, all []oauth2.Health) int {
	n := 0
	now := time.Now()
	for _, h := range all {
		if ctx.Err() != nil || s.draining.Load() {
			return n
		}
		if h.Package == "" {
			continue
		}
		pkg, err := s.resolve(h.Package)
		if err != nil {
			continue
		}
		cred, ok := pkg.Manifest.OAuth2[h.Credential]
		if !ok || cred.NoKeepFresh {
			continue
		}
		opt, due := keepFreshDue(h, now, 2*s.opts.WatchEvery+cred.RefreshMargin)
		if !due {
			continue
		}
		n++
		arg, _ := json.Marshal(opt)
		in, done, err := s.instance(pkg, h.App)
		if err != nil {
			s.log.Warn("keep fresh: no instance", "package", h.Package, "app", h.App, "error", err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, keepFreshTimeout)
		_, err = in.Call(cctx, engine.KeepFreshTarget(h.Credential), arg)
		cancel()
		if err != nil {
			s.log.Warn("keep fresh: refresh failed", "package", h.Package, "credential", h.Credential, "app", h.App, "error", in.Redact(err.Error()))
		} else {
			s.log.Debug("keep fresh", "package", h.Package, "credential", h.Credential, "app", h.App, "force", opt.Force)
		}
		done()
	}
	return n
}

// keepFreshDue says whether h's token set needs a refresh now, and how.
func keepFreshDue(h oauth2.Health, now time.Time, within time.Duration) (engine.KeepFresh, bool) {
	opt := engine.KeepFresh{Within: within.Milliseconds()}
	switch h.State {
	case oauth2.StateExpiring, oauth2.StateRefreshFailing:
		return opt, true
	case oauth2.StateFresh:
	default:
		return opt, false // none, needs_login: a person must act
	}
	if h.ExpiresAt != nil && time.UnixMilli(*h.ExpiresAt).Sub(now) < within {
		return opt, true
	}
	if h.RefreshTokenExpiresAt != nil && h.RefreshedAt != nil {
		from, until := *h.RefreshedAt, *h.RefreshTokenExpiresAt
		if until > from && now.UnixMilli() > from+(until-from)/2 {
			opt.Force = true
			return opt, true
		}
	}
	return opt, false
}

// announce logs e and POSTs it to Options.Notify, retrying in the
// background (1 s doubling, 5 tries) so that the watch goes on.
func (s *Server) announce(ctx context.Context, e Event) {
	log := s.log.Warn
	if e.Event == oauth2.StateNeedsLogin {
		log = s.log.Error
	}
	log("credential "+e.Event, "package", e.Package, "credential", e.Credential, "app", e.App, "message", e.Message)
	if s.opts.Notify == "" {
		return
	}
	body, _ := json.Marshal(e)
	go func() {
		wait := time.Second
		for try := 1; ; try++ {
			err := s.post(ctx, body)
			if err == nil {
				return
			}
			if try == 5 || ctx.Err() != nil {
				s.log.Error("notify: the webhook did not take the event", "event", e.Event, "credential", e.Credential, "error", err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait *= 2
		}
	}()
}

func (s *Server) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.Notify, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// halfLife is half the refresh token's lifetime as last stored (from the
// last refresh to its expiry), or forever when not known.
func halfLife(h oauth2.Health) time.Duration {
	if h.RefreshTokenExpiresAt == nil || h.RefreshedAt == nil || *h.RefreshTokenExpiresAt <= *h.RefreshedAt {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(*h.RefreshTokenExpiresAt-*h.RefreshedAt) * time.Millisecond / 2
}
