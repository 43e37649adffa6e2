package seal_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/engine/enginetest"
	"github.com/modrun/modrun/seal"
	"github.com/modrun/modrun/store"
)

// keyring makes a keyring file in a temp dir holding the given ids' keys
// (derived from the id, so that two keyrings naming one id agree).
func keyring(t testing.TB, ids ...string) *seal.Keyring {
	t.Helper()
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s:%s\n", id, keyOf(id))
	}
	r, err := seal.ParseKeyring("test-keys", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// keyOf is a fixed 32-byte key, in base64, for id (tests only).
func keyOf(id string) string {
	k := bytes.Repeat([]byte(id+"#"), 32)[:32]
	return base64.StdEncoding.EncodeToString(k)
}

func openBolt(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformanceMemory(t *testing.T) {
	enginetest.TestStore(t, func(t *testing.T) engine.Store {
		return seal.Wrap(store.NewMemory(), keyring(t, "a"))
	})
}

func TestConformanceBolt(t *testing.T) {
	enginetest.TestStore(t, func(t *testing.T) engine.Store {
		return seal.Wrap(openBolt(t, filepath.Join(t.TempDir(), "s.db")), keyring(t, "a"))
	})
}

// tokenSet is what an OAuth2 credential keeps: none of it may be found in
// the file.
const tokenSet = `{"access_token":"at-SECRET-4711-access","refresh_token":"rt-SECRET-0815-refresh","expires_at":"2026-12-07T10:00:00Z"}`

// TestNothingInClearAtRest: `strings` over the bbolt file finds no token,
// secret or stored value, in the value or in its history.
func TestNothingInClearAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st := seal.Wrap(openBolt(t, path), keyring(t, "a"))
	ctx := context.Background()
	for _, kv := range [][2]string{
		{"oauth2.api", tokenSet},
		{"refreshtoken", `"rt-SECRET-plain-string"`},
		{"profile", `{"name":"Ada-SECRET-Lovelace","n":12345678901234567890}`},
	} {
		if err := st.Set(ctx, "my-app", kv[0], json.RawMessage(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := st.CompareAndSwap(ctx, "modrun.history", "run-1", nil, json.RawMessage(`{"result":"cas-SECRET-result"}`)); !ok || err != nil {
		t.Fatalf("cas: %v %v", ok, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"SECRET", "access", "refresh_token", "Lovelace", "12345678901234567890", "expires_at"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the store file holds %q in clear", secret)
		}
	}
	if !bytes.Contains(raw, []byte("oauth2.api")) {
		t.Error("keys should stay in clear (stores look them up); the test reads the wrong file?")
	}
	// And it all opens again.
	st = seal.Wrap(openBolt(t, path), keyring(t, "a"))
	defer st.Close()
	got, err := st.Get(ctx, "my-app", "oauth2.api")
	if err != nil || string(got) != tokenSet {
		t.Fatalf("reopened: %s, %v", got, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	st := seal.Wrap(mem, keyring(t, "old"))
	if err := st.Set(ctx, "app", "k", json.RawMessage(`"v"`)); err != nil {
		t.Fatal(err)
	}

	t.Run("UnknownKey", func(t *testing.T) {
		_, err := seal.Wrap(mem, keyring(t, "new")).Get(ctx, "app", "k")
		if !errors.Is(err, seal.ErrUnknownKey) || !strings.Contains(err.Error(), `"old"`) || !strings.Contains(err.Error(), `"k"`) {
			t.Fatalf("err = %v; want ErrUnknownKey naming key id old and key k", err)
		}
	})
	t.Run("SameIDOtherKey", func(t *testing.T) {
		other, err := seal.ParseKeyring("x", []byte("old:"+keyOf("different")))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seal.Wrap(mem, other).Get(ctx, "app", "k"); !errors.Is(err, seal.ErrTampered) {
			t.Fatalf("err = %v; want ErrTampered", err)
		}
	})
	t.Run("MovedToAnotherKey", func(t *testing.T) {
		raw, _ := mem.Get(ctx, "app", "k")
		mem.Set(ctx, "app", "oauth2.api", raw)
		mem.Set(ctx, "other-app", "k", raw)
		for _, at := range [][2]string{{"app", "oauth2.api"}, {"other-app", "k"}} {
			if _, err := st.Get(ctx, at[0], at[1]); !errors.Is(err, seal.ErrTampered) {
				t.Errorf("%v: err = %v; want ErrTampered: a sealed value is bound to its place", at, err)
			}
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, bad := range []string{`"modrun-sealed:"`, `"modrun-sealed:1:old:!!"`, `"modrun-sealed:2:old:AAAA"`, `"modrun-sealed:1:old:AAAA"`} {
			mem.Set(ctx, "app", "bad", json.RawMessage(bad))
			if _, err := st.Get(ctx, "app", "bad"); err == nil {
				t.Errorf("%s: opened", bad)
			}
		}
	})
	t.Run("ErrorsHoldNoValue", func(t *testing.T) {
		mem.Set(ctx, "app", "t", json.RawMessage(`"modrun-sealed:1:old:c2VjcmV0LXZhbHVlLXNlY3JldC12YWx1ZS1zZWNyZXQtdmFsdWUtc2VjcmV0"`))
		_, err := st.Get(ctx, "app", "t")
		if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestPlaintextFromBefore: a store written before sealing reads as it
// is, and rekey seals it.
func TestPlaintextFromBefore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := openBolt(t, path)
	db.Set(ctx, "app", "oauth2.api", json.RawMessage(tokenSet))
	st := seal.Wrap(db, keyring(t, "a"))
	if got, err := st.Get(ctx, "app", "oauth2.api"); err != nil || string(got) != tokenSet {
		t.Fatalf("plaintext read: %s, %v", got, err)
	}
	rep, err := st.(engine.Rekeyer).Rekey(ctx, nil)
	if err != nil || rep.Resealed != 1 || rep.Key != "a" {
		t.Fatalf("rekey: %+v, %v", rep, err)
	}
	raw, _ := db.Get(ctx, "app", "oauth2.api")
	if bytes.Contains(raw, []byte("SECRET")) {
		t.Fatalf("still in clear after rekey: %s", raw)
	}
}

// TestRekeyUnderWriters: 64 writers keep writing (each its own key,
// counting up, some through CompareAndSwap) while a store sealed by key A
// is rekeyed to B. Nothing is lost: every key holds its writer's last
// value, and the store opens with B alone.
func TestRekeyUnderWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := openBolt(t, path)
	old := seal.Wrap(db, keyring(t, "A"))
	for i := range 500 {
		if err := old.Set(ctx, fmt.Sprintf("app%d", i%5), fmt.Sprintf("k%d", i), json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	st := seal.Wrap(db, keyring(t, "B", "A"))
	const writers, writes = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Go(func() {
			app, key := fmt.Sprintf("app%d", w%5), fmt.Sprintf("w%d", w)
			for n := range writes {
				v := json.RawMessage(fmt.Sprintf(`{"w":%d,"n":%d}`, w, n))
				if n%2 == 1 {
					prev := json.RawMessage(fmt.Sprintf(`{"w":%d,"n":%d}`, w, n-1))
					if ok, err := st.CompareAndSwap(ctx, app, key, prev, v); !ok || err != nil {
						errs <- fmt.Errorf("writer %d: swap %d: %v %v", w, n, ok, err)
						return
					}
					continue
				}
				if err := st.Set(ctx, app, key, v); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var rep engine.RekeyReport
	wg.Go(func() {
		var err error
		if rep, err = st.(engine.Rekeyer).Rekey(ctx, nil); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if rep.Resealed < 500-5 || rep.Key != "B" { // some of the 500 may be listed after a writer's
		t.Errorf("rekey report %+v", rep)
	}
	// Anything written under A before the rekey saw it? None: writers
	// seal with B. So B alone opens everything.
	only := seal.Wrap(db, keyring(t, "B"))
	for i := range 500 {
		got, err := only.Get(ctx, fmt.Sprintf("app%d", i%5), fmt.Sprintf("k%d", i))
		if err != nil || string(got) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("k%d with B alone: %s, %v", i, got, err)
		}
	}
	for w := range writers {
		got, err := only.Get(ctx, fmt.Sprintf("app%d", w%5), fmt.Sprintf("w%d", w))
		if want := fmt.Sprintf(`{"w":%d,"n":%d}`, w, writes-1); err != nil || string(got) != want {
			t.Fatalf("writer %d: %s, %v; want %s", w, got, err, want)
		}
	}
	// A second rekey finds nothing to do.
	if rep, err := st.(engine.Rekeyer).Rekey(ctx, nil); err != nil || rep.Resealed != 0 || rep.Current != 500+writers {
		t.Fatalf("second rekey: %+v, %v", rep, err)
	}
	db.Close()
}

// TestRekeyReportsUnopenable: a value sealed by a key the keyring lacks
// is named, and the rest is still resealed.
func TestRekeyReportsUnopenable(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	seal.Wrap(mem, keyring(t, "gone")).Set(ctx, "app", "lost", json.RawMessage(`1`))
	mem.Set(ctx, "app", "plain", json.RawMessage(`2`))
	rep, err := seal.Wrap(mem, keyring(t, "B")).(engine.Rekeyer).Rekey(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), `"gone"`) || !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("err = %v; want one naming key gone", err)
	}
	if rep.Resealed != 1 {
		t.Fatalf("report %+v; want the plaintext value resealed", rep)
	}
}

// TestLockerKept: over a store that locks across processes, the sealing
// store locks too (OAuth2 refreshes depend on it); over one that does
// not, it does not pretend to.
func TestLockerKept(t *testing.T) {
	if _, ok := seal.Wrap(store.NewMemory(), keyring(t, "a")).(engine.Locker); ok {
		t.Error("a sealed Memory claims to be a Locker")
	}
	if _, ok := seal.Wrap(lockingMemory{store.NewMemory()}, keyring(t, "a")).(engine.Locker); !ok {
		t.Error("a sealed Locker lost its lock")
	}
}

type lockingMemory struct{ *store.Memory }

func (lockingMemory) Lock(context.Context, string, string) (func(), error) { return func() {}, nil }

// TestLargestValue: sealing keeps the default limit on the plaintext: a
// value just under 1 MiB is stored (sealed, it is longer) and one over is
// refused by the sealing store.
func TestLargestValue(t *testing.T) {
	ctx := context.Background()
	st := seal.Wrap(openBolt(t, filepath.Join(t.TempDir(), "s.db")), keyring(t, "a"))
	defer st.Close()
	big := `"` + strings.Repeat("x", engine.DefaultMaxValueLen-2) + `"`
	if err := st.Set(ctx, "app", "big", json.RawMessage(big)); err != nil {
		t.Fatalf("a 1 MiB value: %v", err)
	}
	if got, err := st.Get(ctx, "app", "big"); err != nil || len(got) != len(big) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	if err := st.Set(ctx, "app", "big", json.RawMessage(big+" ")); !errors.Is(err, engine.ErrValueTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

// syncDeleting is a bbolt store that counts the deletes made one at a
// time, each waiting for its own commit.
type syncDeleting struct {
	*store.DB
	n int
}

func (s *syncDeleting) Delete(ctx context.Context, app, key string) error {
	s.n++
	return s.DB.Delete(ctx, app, key)
}

// TestQueuedDeletesStayQueued: a sealed store queues a delete in its inner
// store's group commit (engine.AsyncDeleter), as it does a write; the
// server's history trims old runs so (issue 33: trimmed one commit each,
// through the seal, they took a fifth of a busy server's CPU).
func TestQueuedDeletesStayQueued(t *testing.T) {
	ctx := context.Background()
	inner := &syncDeleting{DB: openBolt(t, filepath.Join(t.TempDir(), "s.db"))}
	st := seal.Wrap(inner, keyring(t, "a"))
	defer st.Close()
	if err := st.Set(ctx, "app", "k", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	ad, ok := engine.Store(st).(engine.AsyncDeleter)
	if !ok {
		t.Fatal("a sealed store does not queue deletes")
	}
	if err := ad.DeleteAsync(ctx, "app", "k")(); err != nil {
		t.Fatal(err)
	}
	if inner.n != 0 {
		t.Fatalf("the delete went to the inner store one at a time (%d)", inner.n)
	}
	if _, err := st.Get(ctx, "app", "k"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("after the queued delete: %v, want ErrNotFound", err)
	}
}
