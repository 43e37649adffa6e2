// A token set as stored, its refresh-in-progress record, and when its
// tokens expire (expires_in, a JWT's exp, or a credential's expiresIn).

package oauth2

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/modrun/modrun/engine"
)

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
		return now.Add(lifetime(resp.ExpiresIn)).UnixMilli()
	case exp > 0 && iat > 0 && exp > iat:
		return now.Add(lifetime(float64(exp - iat))).UnixMilli()
	case exp > 0:
		return exp * 1000
	case spec.ExpiresIn > 0:
		return now.Add(spec.ExpiresIn).UnixMilli()
	}
	return 0
}

// maxLifetime is the longest lifetime a token is taken to have. Servers
// that mean "never" say so with a huge expires_in or a JWT exp in the year
// 9999, past what a time.Duration holds (292 years): such a lifetime,
// overflowed, would put the expiry in the past and refresh the token on
// every call.
const maxLifetime = 100 * 365 * 24 * time.Hour

// lifetime is a lifetime in seconds as a Duration, at most maxLifetime.
func lifetime(seconds float64) time.Duration {
	if !(seconds < maxLifetime.Seconds()) { // +Inf too
		return maxLifetime
	}
	return time.Duration(seconds * float64(time.Second))
}

// maxUnix is the last second of the year 9999, the latest exp or iat
// read from a JWT (a later one is taken as it).
const maxUnix = 253402300799

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
		if err != nil || !(f > 0) {
			return 0
		}
		return int64(min(f, maxUnix))
	}
	return seconds(claims.Exp), seconds(claims.Iat)
}
