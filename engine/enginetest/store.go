package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modrun/modrun/engine"
)

// TestStore runs the store conformance suite. newStore returns a fresh,
// empty store for each subtest; TestStore closes it.
func TestStore(t *testing.T, newStore func(t *testing.T) engine.Store) {
	ctx := context.Background()
	open := func(t *testing.T) engine.Store {
		st := newStore(t)
		t.Cleanup(func() { st.Close() })
		return st
	}

	t.Run("GetMissing", func(t *testing.T) {
		st := open(t)
		if _, err := st.Get(ctx, "app", "nope"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("Get of a missing key: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("SetGet", func(t *testing.T) {
		st := open(t)
		for _, tc := range []struct{ in, want string }{
			{`"abc"`, `"abc"`},
			{`42`, `42`},
			{`{ "a" : [1, 2, {"b": null}] }`, `{"a":[1,2,{"b":null}]}`},
			{`true`, `true`},
			{`null`, `null`},
			{`"quote \" and \\ and \u00e9"`, `"quote \" and \\ and \u00e9"`},
		} {
			mustSet(t, st, "app", "k", tc.in)
			got := mustGet(t, st, "app", "k")
			if got != tc.want {
				t.Errorf("Set(%s) then Get = %s, want %s", tc.in, got, tc.want)
			}
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		st := open(t)
		mustSet(t, st, "app", "k", `1`)
		mustSet(t, st, "app", "k", `2`)
		if got := mustGet(t, st, "app", "k"); got != `2` {
			t.Fatalf("Get = %s, want 2", got)
		}
	})

	t.Run("AppsAreSeparate", func(t *testing.T) {
		st := open(t)
		mustSet(t, st, "a", "k", `"in a"`)
		mustSet(t, st, "b", "k", `"in b"`)
		if got := mustGet(t, st, "a", "k"); got != `"in a"` {
			t.Errorf("app a: %s", got)
		}
		if err := st.Clear(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, "a", "k"); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("after Clear(a): err = %v", err)
		}
		if got := mustGet(t, st, "b", "k"); got != `"in b"` {
			t.Errorf("Clear(a) touched app b: %s", got)
		}
	})

	t.Run("DeleteAndList", func(t *testing.T) {
		st := open(t)
		mustSet(t, st, "app", "x", `1`)
		mustSet(t, st, "app", "y", `2`)
		if err := st.Delete(ctx, "app", "x"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "app", "never-set"); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
		all, err := st.List(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || string(all["y"]) != `2` {
			t.Fatalf("List = %v, want only y=2", all)
		}
		empty, err := st.List(ctx, "no-such-app")
		if err != nil || len(empty) != 0 {
			t.Fatalf("List of an unknown app = %v, %v", empty, err)
		}
	})

	t.Run("Limits", func(t *testing.T) {
		st := open(t)
		if err := st.Set(ctx, "app", "", json.RawMessage(`1`)); !errors.Is(err, engine.ErrInvalidKey) {
			t.Errorf("empty key: err = %v", err)
		}
		long := strings.Repeat("k", engine.MaxKeyLen+1)
		if err := st.Set(ctx, "app", long, json.RawMessage(`1`)); !errors.Is(err, engine.ErrInvalidKey) {
			t.Errorf("key over 1 KiB: err = %v", err)
		}
		if err := st.Set(ctx, "app", strings.Repeat("k", engine.MaxKeyLen), json.RawMessage(`1`)); err != nil {
			t.Errorf("key of exactly 1 KiB: %v", err)
		}
		big := `"` + strings.Repeat("v", engine.DefaultMaxValueLen) + `"`
		if err := st.Set(ctx, "app", "big", json.RawMessage(big)); !errors.Is(err, engine.ErrValueTooLarge) {
			t.Errorf("value over 1 MiB: err = %v", err)
		}
		for _, bad := range []string{`word`, `{"a":`, ``, `'single'`} {
			if err := st.Set(ctx, "app", "bad", json.RawMessage(bad)); !errors.Is(err, engine.ErrInvalidValue) {
				t.Errorf("Set(%q): err = %v, want ErrInvalidValue", bad, err)
			}
		}
		if _, err := st.Get(ctx, "app", "bad"); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("a rejected value was stored: %v", err)
		}
		deep := strings.Repeat("[", engine.MaxValueDepth+1) + strings.Repeat("]", engine.MaxValueDepth+1)
		if err := st.Set(ctx, "app", "deep", json.RawMessage(deep)); !errors.Is(err, engine.ErrInvalidValue) {
			t.Errorf("a value nested %d deep: err = %v, want ErrInvalidValue", engine.MaxValueDepth+1, err)
		}
		// Every backend keeps app names of up to engine.MaxAppLen bytes,
		// whatever their characters, apart.
		for _, app := range []string{strings.Repeat("a", engine.MaxAppLen), strings.Repeat("é", engine.MaxAppLen/2), "a/b", "a%2Fb", "..", "a b\tc"} {
			if err := st.Set(ctx, app, "k", json.RawMessage(`"`+fmt.Sprint(len(app))+`"`)); err != nil {
				t.Errorf("app of %d bytes %q: %v", len(app), app[:min(len(app), 12)], err)
				continue
			}
			if v, err := st.Get(ctx, app, "k"); err != nil || string(v) != `"`+fmt.Sprint(len(app))+`"` {
				t.Errorf("app %q: got %s, %v", app[:min(len(app), 12)], v, err)
			}
		}
		if all, err := st.List(ctx, "a"); err != nil || len(all) != 0 {
			t.Errorf("app a sees %v, %v: app names must not nest", all, err)
		}
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		st := open(t)
		cas := func(old, new string) bool {
			t.Helper()
			var o, n json.RawMessage
			if old != "" {
				o = json.RawMessage(old)
			}
			if new != "" {
				n = json.RawMessage(new)
			}
			ok, err := st.CompareAndSwap(ctx, "app", "rt", o, n)
			if err != nil {
				t.Fatalf("CompareAndSwap(%s, %s): %v", old, new, err)
			}
			return ok
		}
		if !cas("", `"rt1"`) {
			t.Fatal("create-if-absent failed on an absent key")
		}
		if cas("", `"other"`) {
			t.Fatal("create-if-absent succeeded on a present key")
		}
		if cas(`"wrong"`, `"rt2"`) {
			t.Fatal("swap succeeded with a wrong old value")
		}
		if !cas(` "rt1" `, `"rt2"`) {
			t.Fatal("swap failed with the right old value (modulo whitespace)")
		}
		if got := mustGet(t, st, "app", "rt"); got != `"rt2"` {
			t.Fatalf("after swap: %s", got)
		}
		if !cas(`"rt2"`, "") {
			t.Fatal("swap to delete failed")
		}
		if _, err := st.Get(ctx, "app", "rt"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("after swap to delete: %v", err)
		}
	})

	t.Run("CompareAndSwapRace", func(t *testing.T) {
		// Many writers race to rotate one token; each rotation must be won
		// by exactly one of them.
		st := open(t)
		mustSet(t, st, "app", "rt", `0`)
		const writers, rounds = 16, 20
		var wins atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					old := json.RawMessage(fmt.Sprint(r))
					ok, err := st.CompareAndSwap(ctx, "app", "rt", old, json.RawMessage(fmt.Sprint(r+1)))
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						wins.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if wins.Load() != rounds {
			t.Fatalf("%d swaps won, want exactly %d", wins.Load(), rounds)
		}
		if got := mustGet(t, st, "app", "rt"); got != fmt.Sprint(rounds) {
			t.Fatalf("final value %s, want %d", got, rounds)
		}
	})

	// A store that queues both writes and deletes (engine.AsyncSetter,
	// engine.AsyncDeleter) applies them in the order queued.
	probe := newStore(t)
	_, okSet := probe.(engine.AsyncSetter)
	_, okDel := probe.(engine.AsyncDeleter)
	probe.Close()
	if okSet && okDel {
		t.Run("QueuedWritesAndDeletes", func(t *testing.T) {
			st := open(t)
			as, ad := st.(engine.AsyncSetter), st.(engine.AsyncDeleter)
			mustSet(t, st, "app", "gone", `1`)
			// Queued in order, waited for after: they apply in that order.
			waits := []func() error{
				ad.DeleteAsync(ctx, "app", "gone"),
				as.SetAsync(ctx, "app", "back", json.RawMessage(`1`)),
				ad.DeleteAsync(ctx, "app", "back"),
				as.SetAsync(ctx, "app", "back", json.RawMessage(`2`)),
				ad.DeleteAsync(ctx, "app", "never-set"),
			}
			for i, wait := range waits {
				if err := wait(); err != nil {
					t.Fatalf("queued operation %d: %v", i, err)
				}
			}
			all, err := st.List(ctx, "app")
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 || string(all["back"]) != `2` {
				t.Fatalf("List = %v, want only back=2", all)
			}
			if err := ad.DeleteAsync(ctx, "app", "")(); !errors.Is(err, engine.ErrInvalidKey) {
				t.Fatalf("DeleteAsync of an empty key: %v, want ErrInvalidKey", err)
			}
		})
	}

	t.Run("ConcurrentWriters", func(t *testing.T) {
		st := open(t)
		const n = 64
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := st.Set(ctx, "app", fmt.Sprintf("k%02d", i), json.RawMessage(fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		all, err := st.List(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if got := string(all[fmt.Sprintf("k%02d", i)]); got != fmt.Sprint(i) {
				t.Errorf("k%02d = %q", i, got)
			}
		}
	})

	t.Run("Closed", func(t *testing.T) {
		st := newStore(t)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, "app", "k"); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Get after Close: %v", err)
		}
		if err := st.Set(ctx, "app", "k", json.RawMessage(`1`)); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Set after Close: %v", err)
		}
	})
}

func mustSet(t *testing.T, st engine.Store, app, key, value string) {
	t.Helper()
	if err := st.Set(context.Background(), app, key, json.RawMessage(value)); err != nil {
		t.Fatalf("Set(%s, %s, %s): %v", app, key, value, err)
	}
}

func mustGet(t *testing.T, st engine.Store, app, key string) string {
	t.Helper()
	v, err := st.Get(context.Background(), app, key)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", app, key, err)
	}
	return string(v)
}
