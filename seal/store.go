package seal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modrun/modrun/engine"
)

var (
	_ engine.Store        = (*Store)(nil)
	_ engine.AsyncSetter  = (*Store)(nil)
	_ engine.AsyncDeleter = (*Store)(nil)
	_ engine.AppLister    = (*Store)(nil)
	_ engine.Rekeyer      = (*Store)(nil)
	_ engine.Locker       = (*lockingStore)(nil)
)

// format is the envelope's version: XChaCha20-Poly1305, a 24-byte random
// nonce before the ciphertext, the app and key as additional data.
const format = "1"

// casAttempts bounds how often CompareAndSwap looks again when the sealed
// value changed between its read and its swap (its plaintext may not
// have: a rekey, or a write of the same value).
const casAttempts = 16

// Store seals the values of another store: see the package comment.
type Store struct {
	inner engine.Store
	ring  *Keyring
}

// lockingStore is a Store over an engine.Locker, which it stays.
type lockingStore struct {
	*Store
	engine.Locker
}

// LockTTL implements engine.Leased: the inner store's, or zero.
func (s *lockingStore) LockTTL() time.Duration {
	if l, ok := s.Locker.(engine.Leased); ok {
		return l.LockTTL()
	}
	return 0
}

// Wrap returns a store that seals every value under ring's first key
// before st holds it, and opens values sealed by any of ring's keys (or
// not sealed: a store from before sealing) when they are read. The result
// is an engine.Locker if st is one, and has st's other abilities
// (AsyncSetter, AppLister) in any case: without them it does the work
// synchronously, or says it cannot list apps. Close closes st.
func Wrap(st engine.Store, ring *Keyring) engine.Store {
	s := &Store{inner: st, ring: ring}
	if l, ok := st.(engine.Locker); ok {
		return &lockingStore{s, l}
	}
	return s
}

// String names the inner store, if it names itself.
func (s *Store) String() string {
	if str, ok := s.inner.(fmt.Stringer); ok {
		return str.String()
	}
	return fmt.Sprintf("%T", s.inner)
}

// seal returns the envelope of the canonical JSON plain, bound to (app,
// key): a JSON string, "modrun-sealed:1:ID:BASE64".
func (r *Keyring) seal(app, key string, plain []byte) json.RawMessage {
	k := r.keys.Load()
	id := k.ids[0]
	aead := k.aeads[id]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce) // never fails (crypto/rand)
	sealed := aead.Seal(nonce, nonce, plain, additional(app, key))
	head := engine.SealedPrefix + format + ":" + id + ":"
	out := make([]byte, 0, len(head)+base64.RawStdEncoding.EncodedLen(len(sealed))+1)
	out = append(out, head...)
	out = base64.RawStdEncoding.AppendEncode(out, sealed)
	return append(out, '"')
}

// open returns the plaintext of raw as stored under (app, key), and the
// id of the key that sealed it ("" for a value that is not sealed).
func (r *Keyring) open(app, key string, raw []byte) (plain []byte, id string, err error) {
	if !bytes.HasPrefix(raw, []byte(engine.SealedPrefix)) {
		return raw, "", nil // stored before sealing
	}
	body, ok := bytes.CutSuffix(raw[len(engine.SealedPrefix):], []byte(`"`))
	f, rest, ok2 := bytes.Cut(body, []byte(":"))
	idb, b64, ok3 := bytes.Cut(rest, []byte(":"))
	if !ok || !ok2 || !ok3 || string(f) != format {
		return nil, "", fmt.Errorf("%s in %s: %w", engine.QuoteKey(key), app, ErrMalformed)
	}
	id = string(idb)
	k := r.keys.Load()
	aead, ok := k.aeads[id]
	if !ok {
		return nil, id, fmt.Errorf("%s in %s: sealed by key %q, which the keyring (%s) does not hold: %w",
			engine.QuoteKey(key), app, id, strings.Join(k.ids, ", "), ErrUnknownKey)
	}
	sealed, err := base64.RawStdEncoding.DecodeString(string(b64))
	if err != nil || len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, id, fmt.Errorf("%s in %s: %w", engine.QuoteKey(key), app, ErrMalformed)
	}
	n := aead.NonceSize()
	plain, err = aead.Open(nil, sealed[:n], sealed[n:], additional(app, key))
	if err != nil {
		return nil, id, fmt.Errorf("%s in %s (key %q): %w", engine.QuoteKey(key), app, id, ErrTampered)
	}
	return plain, id, nil
}

// additional binds a sealed value to where it is stored: moved to
// another key or app, it no longer opens.
func additional(app, key string) []byte {
	return []byte(app + "\x00" + key)
}

// plain checks value as the inner store would (canonical JSON within the
// default limit) and returns its canonical form.
func plain(key string, value json.RawMessage) (json.RawMessage, error) {
	v, err := engine.CanonicalValue(value, engine.DefaultMaxValueLen)
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", engine.QuoteKey(key), err)
	}
	return v, nil
}

// Get implements engine.Store.
func (s *Store) Get(ctx context.Context, app, key string) (json.RawMessage, error) {
	raw, err := s.inner.Get(ctx, app, key)
	if err != nil {
		return nil, err
	}
	v, _, err := s.ring.open(app, key, raw)
	return v, err
}

// Set implements engine.Store.
func (s *Store) Set(ctx context.Context, app, key string, value json.RawMessage) error {
	v, err := plain(key, value)
	if err != nil {
		return err
	}
	return s.inner.Set(ctx, app, key, s.ring.seal(app, key, v))
}

// SetAsync implements engine.AsyncSetter, with the inner store's if it
// has one.
func (s *Store) SetAsync(ctx context.Context, app, key string, value json.RawMessage) (wait func() error) {
	v, err := plain(key, value)
	if err != nil {
		return engine.Waited(err)
	}
	return engine.SetAsync(ctx, s.inner, app, key, s.ring.seal(app, key, v))
}

// Delete implements engine.Store.
func (s *Store) Delete(ctx context.Context, app, key string) error {
	return s.inner.Delete(ctx, app, key)
}

// DeleteAsync implements engine.AsyncDeleter, with the inner store's if
// it has one.
func (s *Store) DeleteAsync(ctx context.Context, app, key string) (wait func() error) {
	return engine.DeleteAsync(ctx, s.inner, app, key)
}

// Clear implements engine.Store.
func (s *Store) Clear(ctx context.Context, app string) error { return s.inner.Clear(ctx, app) }

// List implements engine.Store. A value that does not open fails the
// whole list, naming its key and the key id it needs.
func (s *Store) List(ctx context.Context, app string) (map[string]json.RawMessage, error) {
	all, err := s.inner.List(ctx, app)
	if err != nil {
		return nil, err
	}
	for k, raw := range all {
		v, _, err := s.ring.open(app, k, raw)
		if err != nil {
			return nil, err
		}
		all[k] = v
	}
	return all, nil
}

// Apps implements engine.AppLister with the inner store's.
func (s *Store) Apps() ([]string, error) {
	al, ok := s.inner.(engine.AppLister)
	if !ok {
		return nil, fmt.Errorf("store %s cannot list its apps", s)
	}
	return al.Apps()
}

// CompareAndSwap implements engine.Store: old is compared with the opened
// value. Sealing is randomised, so the swap itself compares the sealed
// text read a moment before; if that changed meanwhile, it looks again.
func (s *Store) CompareAndSwap(ctx context.Context, app, key string, old, new json.RawMessage) (bool, error) {
	var sealedNew json.RawMessage
	if new != nil {
		v, err := engine.CanonicalValue(new, engine.DefaultMaxValueLen)
		if err != nil {
			return false, fmt.Errorf("compare-and-swap %s: new: %w", engine.QuoteKey(key), err)
		}
		sealedNew = s.ring.seal(app, key, v)
	}
	if old == nil {
		return s.inner.CompareAndSwap(ctx, app, key, nil, sealedNew)
	}
	old, err := engine.CanonicalValue(old, 0)
	if err != nil {
		return false, fmt.Errorf("compare-and-swap %s: old: %w", engine.QuoteKey(key), err)
	}
	for range casAttempts {
		raw, err := s.inner.Get(ctx, app, key)
		if errors.Is(err, engine.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		cur, _, err := s.ring.open(app, key, raw)
		if err != nil {
			return false, err
		}
		if !bytes.Equal(cur, old) {
			return false, nil
		}
		swapped, err := s.inner.CompareAndSwap(ctx, app, key, raw, sealedNew)
		if swapped || err != nil {
			return swapped, err
		}
	}
	return false, nil
}

// Close implements engine.Store: it closes the inner store.
func (s *Store) Close() error { return s.inner.Close() }

// Rekey implements engine.Rekeyer.
func (s *Store) Rekey(ctx context.Context, progress func(engine.RekeyReport)) (engine.RekeyReport, error) {
	rep := engine.RekeyReport{Key: s.ring.SealingID()}
	apps, err := s.Apps()
	if err != nil {
		return rep, err
	}
	var failed []error
	for _, app := range apps {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		all, err := s.inner.List(ctx, app)
		if err != nil {
			return rep, err
		}
		for key, raw := range all {
			rep.Values++
			resealed, err := s.reseal(ctx, app, key, raw)
			switch {
			case err != nil:
				failed = append(failed, err)
			case resealed:
				rep.Resealed++
			default:
				rep.Current++
			}
		}
		rep.Apps++
		if progress != nil {
			progress(rep)
		}
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("rekey: %d value(s) not resealed (run it again once fixed; resealed ones stay): %w", len(failed), errors.Join(failed...))
	}
	return rep, nil
}

// reseal seals the value of (app, key), now raw, under the first key,
// unless it is already; it reports whether it wrote.
func (s *Store) reseal(ctx context.Context, app, key string, raw json.RawMessage) (bool, error) {
	for range casAttempts {
		v, id, err := s.ring.open(app, key, raw)
		if err != nil {
			return false, err
		}
		if id == s.ring.SealingID() {
			return false, nil
		}
		swapped, err := s.inner.CompareAndSwap(ctx, app, key, raw, s.ring.seal(app, key, v))
		if swapped || err != nil {
			return swapped, err
		}
		// Written meanwhile (by a server sealing with its own first key,
		// or deleted): look again.
		raw, err = s.inner.Get(ctx, app, key)
		if errors.Is(err, engine.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("%s in %s: changed %d times while resealing; run rekey again", engine.QuoteKey(key), app, casAttempts)
}
