package oauth2

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/modrun/modrun/engine"
)

// Credential states (DESIGN §18).
const (
	StateNone           = "none"            // no token set stored
	StateFresh          = "fresh"           // an access token that does not expire within the margin
	StateExpiring       = "expiring"        // within the margin: the next call refreshes it
	StateRefreshFailing = "refresh_failing" // the last refresh failed; calls retry
	StateNeedsLogin     = "needs_login"     // the refresh token was rejected or is absent: a person must log in
)

// States lists the states in order.
var States = []string{StateNone, StateFresh, StateExpiring, StateRefreshFailing, StateNeedsLogin}

// DefaultMargin is the refresh margin states are judged by when the
// credential's own is not known (its refreshMargin's default).
const DefaultMargin = 30 * time.Second

// State is the set's state at now with the refresh margin given. An
// expired token with a way to get another (a refresh token, or a grant
// that needs none) is expiring: the next call refreshes it.
func (s *Set) State(now time.Time, margin time.Duration) string {
	switch {
	case s == nil:
		return StateNone
	case s.NeedsLogin, s.AccessToken == "" && s.RefreshToken == "":
		return StateNeedsLogin
	case s.Failures > 0:
		return StateRefreshFailing
	case s.AccessToken == "":
		return StateExpiring
	case s.ExpiresAt == 0:
		return StateFresh // expiry unknown: refreshed when an answer says it expired
	case !s.usableAt(now, margin):
		return StateExpiring
	}
	return StateFresh
}

// Health is one credential's state in one app, as GET /v1/credentials and
// runner credentials show it: never a token.
type Health struct {
	Package               string `json:"package,omitempty"`
	Credential            string `json:"credential"`
	App                   string `json:"app"`
	State                 string `json:"state"`
	ExpiresAt             *int64 `json:"expiresAt,omitempty"`
	RefreshedAt           *int64 `json:"refreshedAt,omitempty"`
	RefreshTokenExpiresAt *int64 `json:"refreshTokenExpiresAt,omitempty"`
	Failures              int    `json:"failures"`
	LastError             string `json:"lastError,omitempty"`
	FailedAt              *int64 `json:"failedAt,omitempty"` // when the last failure happened
}

func ms(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// HealthOf is the health of a stored set (raw) of credential name in app.
func HealthOf(app, name string, raw json.RawMessage, now time.Time) Health {
	var s Set
	var sp *Set
	if raw != nil && json.Unmarshal(raw, &s) == nil {
		sp = &s
	}
	h := Health{Credential: name, App: app, State: sp.State(now, DefaultMargin)}
	if sp != nil {
		h.Package, h.Failures, h.LastError = s.Package, s.Failures, s.LastError
		h.ExpiresAt, h.RefreshedAt, h.RefreshTokenExpiresAt = ms(s.ExpiresAt), ms(s.IssuedAt), ms(s.RefreshExpiresAt)
		h.FailedAt = ms(s.FailedAt)
	}
	return h
}

// Credentials reads the health of every token set in the apps of st: each
// oauth2.NAME key of each app that the store lists (engine.AppLister; a
// store without it is asked for apps only), sorted by package, credential
// and app. Reserved apps are skipped.
func Credentials(ctx context.Context, st engine.Store, apps []string) ([]Health, error) {
	if apps == nil {
		if al, ok := st.(engine.AppLister); ok {
			var err error
			if apps, err = al.Apps(); err != nil {
				return nil, err
			}
		}
	}
	now := time.Now()
	out := []Health{}
	for _, app := range apps {
		if engine.ReservedApp(app) {
			continue
		}
		vals, err := st.List(ctx, app)
		if err != nil {
			return nil, err
		}
		for key, raw := range vals {
			name, ok := strings.CutPrefix(key, "oauth2.")
			if !ok {
				continue
			}
			out = append(out, HealthOf(app, name, raw, now))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Credential != b.Credential {
			return a.Credential < b.Credential
		}
		return a.App < b.App
	})
	return out, nil
}
