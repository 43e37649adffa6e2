package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modrun/modrun/engine"
)

// Scopes of an API token (DESIGN §17). The token of Options.Token is
// admin.
const (
	// ScopeAdmin is everything: store writes, reveal, rekey, tokens.
	ScopeAdmin = "admin"
	// ScopeRead reads packages, run history, credentials' health,
	// metrics and the store, redacted.
	ScopeRead = "read"
	// ScopeRunPrefix, with a package's name, runs that package's targets
	// and reads its runs.
	ScopeRunPrefix = "run:"
)

// TokensApp is the reserved app that holds API tokens, by name: their
// hash and scopes, never the token.
const TokensApp = "modrun.tokens"

// tokenPrefix starts every scoped token: mrt_NAME_SECRET.
const tokenPrefix = "mrt_"

// tokenCacheTTL is how long a server trusts a token entry it read: a
// token revoked on another server on the store stops working here within
// it (at once on the server that revoked it).
const tokenCacheTTL = 2 * time.Second

// TokenInfo describes a scoped API token; the token itself is shown once,
// when it is made, and never kept.
type TokenInfo struct {
	Name    string    `json:"name"`
	Scopes  []string  `json:"scopes"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	// Hash is the SHA-256 of the token, in hex; only in the store.
	Hash string `json:"hash,omitempty"`
}

// CheckTokenName accepts 1 to 64 lower-case letters, digits, '-' and '.'.
func CheckTokenName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("token name %q: want 1 to 64 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("token name %q: only a-z, 0-9, '-' and '.'", name)
		}
	}
	return nil
}

// CheckScope accepts admin, read and run:PACKAGE.
func CheckScope(scope string) error {
	switch {
	case scope == ScopeAdmin, scope == ScopeRead:
		return nil
	case strings.HasPrefix(scope, ScopeRunPrefix) && len(scope) > len(ScopeRunPrefix):
		return nil
	}
	return fmt.Errorf("scope %q: want admin, read or run:PACKAGE", scope)
}

// CheckTokenSpec checks what CreateToken is asked for: a name, at least
// one valid scope, a lifetime that is not negative.
func CheckTokenSpec(name string, scopes []string, ttl time.Duration) error {
	if err := CheckTokenName(name); err != nil {
		return err
	}
	if len(scopes) == 0 {
		return errors.New("a token needs at least one scope: admin, read or run:PACKAGE")
	}
	for _, sc := range scopes {
		if err := CheckScope(sc); err != nil {
			return err
		}
	}
	if ttl < 0 {
		return fmt.Errorf("expiry %s: want a positive duration", ttl)
	}
	return nil
}

// CreateToken makes a token named name with scopes, valid for ttl (0:
// until revoked), keeps its hash in st and returns it. The name must be
// free: revoke a token to reuse its name.
func CreateToken(ctx context.Context, st engine.Store, name string, scopes []string, ttl time.Duration) (string, TokenInfo, error) {
	if err := CheckTokenSpec(name, scopes, ttl); err != nil {
		return "", TokenInfo{}, err
	}
	var secret [32]byte
	rand.Read(secret[:]) // never fails (crypto/rand)
	token := tokenPrefix + name + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	info := TokenInfo{Name: name, Scopes: slices.Clone(scopes), Created: time.Now().UTC().Truncate(time.Second), Hash: tokenHash(token)}
	if ttl > 0 {
		info.Expires = info.Created.Add(ttl)
	}
	raw, _ := json.Marshal(info)
	ok, err := st.CompareAndSwap(ctx, TokensApp, name, nil, raw)
	if err != nil {
		return "", TokenInfo{}, fmt.Errorf("create token %s: %w", name, err)
	}
	if !ok {
		return "", TokenInfo{}, fmt.Errorf("create token %s: %w: a token of that name exists (revoke it first)", name, ErrTokenExists)
	}
	info.Hash = ""
	return token, info, nil
}

// ErrTokenExists is returned by CreateToken for a name in use.
var ErrTokenExists = errors.New("token exists")

// ListTokens returns every token's description, by name, without hashes.
func ListTokens(ctx context.Context, st engine.Store) ([]TokenInfo, error) {
	all, err := st.List(ctx, TokensApp)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, 0, len(all))
	for name, raw := range all {
		var info TokenInfo
		if err := json.Unmarshal(raw, &info); err != nil {
			return nil, fmt.Errorf("token %s: %w", name, err)
		}
		info.Hash = ""
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RevokeToken removes the token name; it returns an error wrapping
// engine.ErrNotFound if there is none.
func RevokeToken(ctx context.Context, st engine.Store, name string) error {
	if _, err := st.Get(ctx, TokensApp, name); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("no token %q: %w", name, err)
		}
		return err
	}
	return st.Delete(ctx, TokensApp, name)
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// principal is who a request speaks for: the admin token, or a scoped
// token by name.
type principal struct {
	name   string // "" for the admin token
	scopes []string
}

// can reports whether p holds scope (admin holds every scope; read does
// not hold run:…).
func (p principal) can(scope string) bool {
	return slices.Contains(p.scopes, ScopeAdmin) || slices.Contains(p.scopes, scope)
}

// canReadRunsOf reports whether p may see the runs of pkg.
func (p principal) canReadRunsOf(pkg string) bool {
	return p.can(ScopeRead) || p.can(ScopeRunPrefix+pkg)
}

func (p principal) String() string {
	if p.name == "" {
		return "the server's token"
	}
	return "token " + p.name
}

type principalKey struct{}

// who is the principal of an authorized request.
func who(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// need returns a 403 naming scope unless the request's principal holds it.
func need(r *http.Request, scope string) error {
	p := who(r)
	if p.can(scope) {
		return nil
	}
	return &apiError{http.StatusForbidden, fmt.Sprintf("%s lacks scope %s (it has %s)", p, scope, strings.Join(p.scopes, ", "))}
}

// tokens checks scoped tokens against the store, keeping what it read for
// tokenCacheTTL.
type tokens struct {
	st engine.Store
	mu sync.Mutex
	// cache holds entries by name; absent names are not cached.
	cache map[string]cachedToken
}

type cachedToken struct {
	info TokenInfo
	read time.Time
}

// check returns the principal of a scoped token, or false.
func (t *tokens) check(ctx context.Context, token string) (principal, bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || t.st == nil {
		return principal{}, false
	}
	name, _, ok := strings.Cut(rest, "_")
	if !ok || CheckTokenName(name) != nil {
		return principal{}, false
	}
	info, ok := t.lookup(ctx, name)
	if !ok {
		return principal{}, false
	}
	if subtle.ConstantTimeCompare([]byte(tokenHash(token)), []byte(info.Hash)) != 1 {
		return principal{}, false
	}
	if !info.Expires.IsZero() && time.Now().After(info.Expires) {
		return principal{}, false
	}
	return principal{name: name, scopes: info.Scopes}, true
}

func (t *tokens) lookup(ctx context.Context, name string) (TokenInfo, bool) {
	t.mu.Lock()
	c, ok := t.cache[name]
	t.mu.Unlock()
	if ok && time.Since(c.read) < tokenCacheTTL {
		return c.info, true
	}
	raw, err := t.st.Get(ctx, TokensApp, name)
	if err != nil {
		t.forget(name)
		return TokenInfo{}, false
	}
	var info TokenInfo
	if json.Unmarshal(raw, &info) != nil || info.Hash == "" {
		return TokenInfo{}, false
	}
	t.mu.Lock()
	if t.cache == nil {
		t.cache = map[string]cachedToken{}
	}
	t.cache[name] = cachedToken{info, time.Now()}
	t.mu.Unlock()
	return info, true
}

func (t *tokens) forget(name string) {
	t.mu.Lock()
	delete(t.cache, name)
	t.mu.Unlock()
}
