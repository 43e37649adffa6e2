package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxKeyLen is the longest store key, in bytes.
const MaxKeyLen = 1024

// MaxAppLen is the longest app name (a store namespace) the server and
// the CLI accept.
const MaxAppLen = 200

// DefaultMaxValueLen is the default limit on a store value, in bytes.
const DefaultMaxValueLen = 1 << 20

// SealedPrefix begins the JSON text of a value sealed at rest (package
// seal): a JSON string holding the key id and the base64 of the AEAD's
// output. Stores need not know it, but for one thing: under the default
// limit, a sealed value may be as long as a sealed DefaultMaxValueLen
// (base64 adds a third), so that sealing never lowers the limit a value
// is held to (the sealing store checks the plaintext against it).
const SealedPrefix = `"modrun-sealed:`

// SealedLen is the longest JSON text that sealing a value of n bytes
// gives (see SealedPrefix).
func SealedLen(n int) int { return len(SealedPrefix) + 64 + (n+128)*4/3 + 4 }

// Store keeps JSON values under string keys, one namespace per app.
//
// Implementations are safe for concurrent use. A write that returned nil is
// durable. Values are canonical (compact) JSON as produced by CanonicalValue.
type Store interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, app, key string) (json.RawMessage, error)
	// Set stores value under key.
	Set(ctx context.Context, app, key string, value json.RawMessage) error
	// Delete removes key; removing a missing key is not an error.
	Delete(ctx context.Context, app, key string) error
	// List returns every key of app with its value.
	List(ctx context.Context, app string) (map[string]json.RawMessage, error)
	// Clear removes every key of app.
	Clear(ctx context.Context, app string) error
	// CompareAndSwap sets key to new only if its current value equals old
	// (as JSON text after compaction). A nil old means "key must be absent";
	// a nil new deletes the key. It reports whether the swap happened.
	CompareAndSwap(ctx context.Context, app, key string, old, new json.RawMessage) (bool, error)
	// Close releases the store. Further calls return ErrClosed.
	Close() error
}

// Locker is an optional ability of a Store that several processes share
// (a distributed store, such as etcd): a lock on (app, key) across every
// process on the store. OAuth2 refreshes take it around their token
// request and the write of its result, so that one refresh happens across
// processes; an implementation fences the writes made under it, so that a
// holder whose lock expired cannot overwrite a newer value. bbolt needs
// none: one process holds its file.
type Locker interface {
	Lock(ctx context.Context, app, key string) (unlock func(), err error)
}

// Leased is an optional ability of a Locker whose locks live on a lease
// that lapses when their holder stops (killed, paused, cut off: etcd).
// LockTTL is that lease (zero: not known). Work that must end while the
// lock is held — an OAuth2 token request — is bounded by it, so that it
// never finishes after a peer may have taken the lock over.
type Leased interface {
	LockTTL() time.Duration
}

// Rekeyer is an optional ability of a Store that seals its values at rest
// (package seal): Rekey re-seals every value not yet sealed by the
// keyring's first key (or not sealed at all) under it, while other
// processes keep using the store. It is idempotent and resumable: a value
// already under the first key is left alone, and each value is swapped
// only if nobody changed it meanwhile. progress, if not nil, is called
// after each app.
type Rekeyer interface {
	Rekey(ctx context.Context, progress func(RekeyReport)) (RekeyReport, error)
}

// RekeyReport counts what a Rekey did, so far or in all.
type RekeyReport struct {
	Key      string `json:"key"`      // the id of the key values are sealed by now
	Apps     int    `json:"apps"`     // apps scanned
	Values   int    `json:"values"`   // values scanned
	Resealed int    `json:"resealed"` // values sealed anew (from another key or plaintext)
	Current  int    `json:"current"`  // values that were already sealed by Key
}

// QuoteKey quotes a key for an error message, shortened past 64 bytes: a
// key over the limit must not fill the terminal.
func QuoteKey(key string) string {
	if len(key) <= 64 {
		return strconv.Quote(key)
	}
	return strconv.Quote(key[:48]) + fmt.Sprintf("… (%d bytes)", len(key))
}

// AppLister is an optional ability of a Store: the apps that hold values.
type AppLister interface {
	Apps() ([]string, error)
}

// ReservedApp reports whether app is one of modrun's own (modrun.*: the
// run history, schedules' claims, flights' results): no run, /v1/store
// request or runner store command may name it.
func ReservedApp(app string) bool { return strings.HasPrefix(app, "modrun.") }

// ReservedKey reports whether key holds a credential's token set
// (oauth2.*), written only by modrun's OAuth2 client and runner login:
// storeValue and /v1/store cannot change it.
func ReservedKey(key string) bool { return strings.HasPrefix(key, "oauth2.") }

// CheckKey returns an error wrapping ErrInvalidKey if key is empty or too long.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key is %d bytes, the limit is %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return nil
}

// MaxValueDepth is how deeply a stored value's arrays and objects may
// nest: every write path (storeValue, PUT /v1/store, runner store set)
// checks it, so that no value can later make every reader recurse past
// what it can afford.
const MaxValueDepth = 1000

// Depth is the deepest nesting of arrays and objects in the JSON text v
// (0 for a scalar). It does not validate v.
func Depth(v []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inString:
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// CanonicalValue checks that v is valid JSON of at most max bytes (0 means
// DefaultMaxValueLen) and returns its compact form, in a new slice that the
// caller may keep. Stores call it so that CompareAndSwap compares like
// with like.
func CanonicalValue(v []byte, max int) (json.RawMessage, error) {
	if max <= 0 {
		max = DefaultMaxValueLen
		if bytes.HasPrefix(v, []byte(SealedPrefix)) {
			max = SealedLen(DefaultMaxValueLen)
		}
	}
	if len(v) > max {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrValueTooLarge, len(v), max)
	}
	if plainString(v) {
		return bytes.Clone(v), nil
	}
	if d := Depth(v); d > MaxValueDepth {
		return nil, fmt.Errorf("%w: nested %d deep, the limit is %d", ErrInvalidValue, d, MaxValueDepth)
	}
	if !json.Valid(v) {
		return nil, ErrInvalidValue
	}
	if !bytes.ContainsAny(v, " \t\r\n") {
		return bytes.Clone(v), nil // no white space at all: already compact
	}
	var b bytes.Buffer
	b.Grow(len(v))
	if err := json.Compact(&b, v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	return b.Bytes(), nil
}

// plainString reports whether v is a JSON string of printable ASCII with
// nothing escaped: valid and compact as it is, whatever it holds. Sealed
// values (SealedPrefix: base64) and most tokens are such strings; they
// skip encoding/json's scanner, which checked every sealed value a second
// time (the seal checks the plaintext, the store the sealed text): about
// a tenth of a served run's history write.
func plainString(v []byte) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	for _, c := range v[1 : len(v)-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Session is the store as one instance sees it: values stored with
// persist=false live in memory for the session's lifetime and win over the
// persisted value of the same key. A Session is safe for concurrent use.
type Session struct {
	store Store
	app   string

	mu      sync.Mutex
	mem     map[string]json.RawMessage // persist=false values
	pending map[string]pendingWrite    // persisted writes not yet durable
	seq     uint64
}

// pendingWrite is a value queued for the store, visible at once.
type pendingWrite struct {
	value json.RawMessage
	seq   uint64
}

// NewSession returns a session over the app namespace of st. A nil st
// means no persistent store: reads see only session values, and writes
// that must persist fail with ErrNoStore.
func NewSession(st Store, app string) *Session {
	if st == nil {
		st = noStore{}
	}
	return &Session{store: st, app: app, mem: map[string]json.RawMessage{}, pending: map[string]pendingWrite{}}
}

// App returns the namespace the session reads and writes.
func (s *Session) App() string { return s.app }

// Store returns the persistent store under the session.
func (s *Session) Store() Store { return s.store }

// Get returns the session value of key if there is one, else the persisted
// value, else ErrNotFound.
func (s *Session) Get(ctx context.Context, key string) (json.RawMessage, error) {
	s.mu.Lock()
	v, ok := s.mem[key]
	if !ok {
		var p pendingWrite
		if p, ok = s.pending[key]; ok {
			v = p.value
		}
	}
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	return s.store.Get(ctx, s.app, key)
}

// SetAsync is Set for persisted values whose durability is awaited
// later: the value is visible through this session at once, the write is
// queued in order, and wait returns when it is durable (if the store is an
// AsyncSetter; otherwise the write happens now). If the write fails, the
// value is no longer visible.
func (s *Session) SetAsync(ctx context.Context, key string, value json.RawMessage) (wait func() error) {
	as, ok := s.store.(AsyncSetter)
	if !ok {
		return Waited(s.Set(ctx, key, value, true))
	}
	if err := CheckKey(key); err != nil {
		return Waited(err)
	}
	v, err := CanonicalValue(value, 0)
	if err != nil {
		return Waited(err)
	}
	s.mu.Lock()
	delete(s.mem, key)
	s.seq++
	seq := s.seq
	s.pending[key] = pendingWrite{value: v, seq: seq}
	storeWait := as.SetAsync(ctx, s.app, key, v)
	s.mu.Unlock()
	return func() error {
		err := storeWait()
		s.mu.Lock()
		if p, ok := s.pending[key]; ok && p.seq == seq {
			delete(s.pending, key)
		}
		s.mu.Unlock()
		return err
	}
}

// Set stores value under key: in memory when persist is false, durably
// otherwise. A persisted write drops the session value of the same key, so
// that the value just written is the one read back.
func (s *Session) Set(ctx context.Context, key string, value json.RawMessage, persist bool) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if !persist {
		v, err := CanonicalValue(value, 0)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.mem[key] = v
		s.mu.Unlock()
		return nil
	}
	if err := s.store.Set(ctx, s.app, key, value); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.mem, key)
	s.mu.Unlock()
	return nil
}

// Delete removes key from the session and from the store.
func (s *Session) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	delete(s.mem, key)
	delete(s.pending, key)
	s.mu.Unlock()
	return s.store.Delete(ctx, s.app, key)
}

// Clear removes every session and persisted value of the app.
func (s *Session) Clear(ctx context.Context) error {
	s.mu.Lock()
	clear(s.mem)
	clear(s.pending)
	s.mu.Unlock()
	return s.store.Clear(ctx, s.app)
}

// CompareAndSwap swaps the persisted value of key (see Store.CompareAndSwap).
// A successful swap drops the session value of key.
func (s *Session) CompareAndSwap(ctx context.Context, key string, old, new json.RawMessage) (bool, error) {
	ok, err := s.store.CompareAndSwap(ctx, s.app, key, old, new)
	if ok {
		s.mu.Lock()
		delete(s.mem, key)
		s.mu.Unlock()
	}
	return ok, err
}

// All returns every visible value: persisted ones overlaid by session ones.
func (s *Session) All(ctx context.Context) (map[string]json.RawMessage, error) {
	all, err := s.store.List(ctx, s.app)
	if err != nil {
		return nil, err
	}
	if all == nil {
		all = map[string]json.RawMessage{}
	}
	s.mu.Lock()
	for k, p := range s.pending {
		all[k] = p.value
	}
	for k, v := range s.mem {
		all[k] = v
	}
	s.mu.Unlock()
	return all, nil
}

// Keys returns the visible keys, sorted.
func (s *Session) Keys(ctx context.Context) ([]string, error) {
	all, err := s.All(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// noStore is the Store of a Session without one.
type noStore struct{}

func (noStore) Get(context.Context, string, string) (json.RawMessage, error) {
	return nil, ErrNotFound
}
func (noStore) Set(context.Context, string, string, json.RawMessage) error { return ErrNoStore }
func (noStore) Delete(context.Context, string, string) error               { return nil }
func (noStore) List(context.Context, string) (map[string]json.RawMessage, error) {
	return map[string]json.RawMessage{}, nil
}
func (noStore) Clear(context.Context, string) error { return nil }
func (noStore) CompareAndSwap(context.Context, string, string, json.RawMessage, json.RawMessage) (bool, error) {
	return false, ErrNoStore
}
func (noStore) Close() error { return nil }
