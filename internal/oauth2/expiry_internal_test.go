package oauth2

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
)

// jwtWith is an unsigned JWT whose payload is claims.
func jwtWith(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(claims)) + "."
}

// TestLongLifetimesDoNotOverflow: token servers that mean "never" say so
// with a huge expires_in or a JWT exp in the year 9999. Such a token
// expires far in the future, never in the past — a past expiry would
// refresh it on every call, and with rotating refresh tokens spend one
// each time.
func TestLongLifetimesDoNotOverflow(t *testing.T) {
	now := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	year9999 := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	for _, tc := range []struct {
		name string
		resp Response
	}{
		{"expires_in of 317 years", Response{ExpiresIn: 1e10}},
		{"expires_in of 1e300 seconds", Response{ExpiresIn: 1e300}},
		{"expires_in of +Inf", Response{ExpiresIn: math.Inf(1)}},
		{"a JWT: iat now, exp in 9999", Response{AccessToken: jwtWith(fmt.Sprintf(`{"iat":%d,"exp":%d}`, now.Unix(), year9999))}},
		{"a JWT: exp 1e20, no iat", Response{AccessToken: jwtWith(`{"exp":1e20}`)}},
		{"a JWT: iat 1, exp 1e19", Response{AccessToken: jwtWith(`{"iat":1,"exp":1e19}`)}},
	} {
		got := expiresAt(now, &tc.resp, engine.TokenSpec{})
		if got < now.AddDate(50, 0, 0).UnixMilli() {
			t.Errorf("%s: expires at %v, want decades from now", tc.name, time.UnixMilli(got).UTC())
		}
	}
}

// FuzzExpiresAt: whatever lifetime the answer states (expires_in, or a
// JWT's exp and iat), a token expires no earlier than now when the
// lifetime is positive, and never before a shorter lifetime would.
func FuzzExpiresAt(f *testing.F) {
	f.Add(3600.0, int64(0), int64(0))
	f.Add(1e10, int64(0), int64(0))
	f.Add(0.0, int64(253402300799), int64(1765000000))
	f.Add(0.0, int64(math.MaxInt64), int64(1))
	now := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expiresIn float64, exp, iat int64) {
		claims, _ := json.Marshal(map[string]int64{"exp": exp, "iat": iat})
		resp := &Response{ExpiresIn: expiresIn, AccessToken: jwtWith(string(claims))}
		if math.IsNaN(expiresIn) || expiresIn < 0 {
			return // ParseResponse never gives these
		}
		got := expiresAt(now, resp, engine.TokenSpec{})
		switch {
		case expiresIn > 0:
			if got < now.UnixMilli() {
				t.Fatalf("expires_in %v: expires at %d, before now", expiresIn, got)
			}
			if shorter := expiresAt(now, &Response{ExpiresIn: expiresIn / 2}, engine.TokenSpec{}); shorter > got {
				t.Fatalf("expires_in %v expires before half of it", expiresIn)
			}
		case exp > 0 && iat > 0 && exp > iat:
			if got < now.UnixMilli() {
				t.Fatalf("exp %d, iat %d: expires at %d, before now", exp, iat, got)
			}
		}
	})
}

// TestUsableFarFromExpiry: a token that expires in the year 9999 (a JWT exp
// without iat) is usable now, whatever the margin. (Its lifetime in
// milliseconds overflows a Duration when usableAt halves it for the margin;
// any margin that makes still falls far short of such an expiry, so the
// answer holds without a cap.)
func TestUsableFarFromExpiry(t *testing.T) {
	now := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	s := &Set{IssuedAt: now.UnixMilli(), ExpiresAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli()}
	for _, margin := range []time.Duration{0, time.Minute, 1000 * time.Hour} {
		if !s.usableAt(now, margin) {
			t.Errorf("margin %v: a token that expires in 9999 is not usable now", margin)
		}
	}
}
