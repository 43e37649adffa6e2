package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

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
// Options.WatchEvery until ctx ends, and announces each credential that
// enters refresh_failing or needs_login, or whose refresh token expires
// within Options.WarnBefore: a log line (warn, or error for needs_login)
// and, with Options.Notify, a POST of an Event, retried with backoff.
func (s *Server) watchCredentials(ctx context.Context) {
	last := map[credKey]string{}
	warned := map[credKey]int64{}
	t := time.NewTicker(s.opts.WatchEvery)
	defer t.Stop()
	first := true
	for {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		first = false
		rctx, cancel := context.WithTimeout(ctx, s.opts.WatchEvery)
		all, err := oauth2.Credentials(rctx, s.opts.Store, nil)
		cancel()
		if err != nil {
			continue // the store is down: /readyz says so
		}
		now := time.Now()
		for _, h := range all {
			k := credKey{h.Package, h.Credential, h.App}
			prev, seen := last[k]
			last[k] = h.State
			if h.State != prev && (h.State == oauth2.StateRefreshFailing || h.State == oauth2.StateNeedsLogin) && (seen || h.State == oauth2.StateNeedsLogin) {
				s.announce(ctx, Event{Event: h.State, Package: h.Package, Credential: h.Credential, App: h.App, State: h.State, Message: h.LastError, At: now.UTC()})
			}
			if rt := h.RefreshTokenExpiresAt; rt != nil && time.UnixMilli(*rt).Sub(now) < s.opts.WarnBefore && warned[k] != *rt {
				warned[k] = *rt
				s.announce(ctx, Event{Event: "refresh_token_expiring", Package: h.Package, Credential: h.Credential, App: h.App, State: h.State,
					Message: fmt.Sprintf("the refresh token expires at %s: log in again before then", time.UnixMilli(*rt).UTC().Format(time.RFC3339)), At: now.UTC()})
			}
		}
	}
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
