package seal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/seal"
	"github.com/modrun/modrun/store"
)

// FuzzOpen holds reading a stored value to what a store that may hold
// anything (an earlier version's plaintext, a damaged or altered value)
// needs: whatever JSON is stored, Get returns it unchanged if it is not
// sealed, or the value that was sealed, or an error that says which of
// malformed, sealed by an absent key, or altered; never a panic, and never
// a value that another app or key sealed.
func FuzzOpen(f *testing.F) {
	ring, err := seal.ParseKeyring("keys", []byte("k1:"+keyOf("a")+"\nk0:"+keyOf("b")))
	if err != nil {
		f.Fatal(err)
	}
	inner := store.NewMemory()
	st := seal.Wrap(inner, ring)
	ctx := context.Background()
	for _, v := range []string{`"rt-0123456789"`, `{"a":[1,2,{"b":null}]}`, `3600`} {
		if err := st.Set(ctx, "app", "k", json.RawMessage(v)); err != nil {
			f.Fatal(err)
		}
		raw, err := inner.Get(ctx, "app", "k")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw), "app", "k")
		f.Add(string(raw), "app", "other") // moved to another key
		f.Add(string(raw), "other", "k")   // to another app
	}
	f.Add(`"modrun-sealed:1:k9:AAAA"`, "app", "k")
	f.Add(`"modrun-sealed:2:k1:AAAA"`, "app", "k")
	f.Add(`"modrun-sealed:1:k1"`, "app", "k")
	f.Add(`"modrun-sealed:"`, "app", "k")
	f.Add(`"plain before sealing"`, "app", "k")

	f.Fuzz(func(t *testing.T, raw, app, key string) {
		if !json.Valid([]byte(raw)) || engine.CheckKey(key) != nil || app == "" || strings.HasPrefix(app, "modrun.") {
			return
		}
		canon, err := engine.CanonicalValue(json.RawMessage(raw), engine.DefaultMaxValueLen)
		if err != nil {
			return // the inner store would refuse it
		}
		mem := store.NewMemory()
		if err := mem.Set(ctx, app, key, canon); err != nil {
			return
		}
		got, err := seal.Wrap(mem, ring).Get(ctx, app, key)
		sealed := bytes.HasPrefix(canon, []byte(engine.SealedPrefix))
		switch {
		case err != nil:
			if !sealed {
				t.Fatalf("a value that is not sealed did not read: %v", err)
			}
			if !errors.Is(err, seal.ErrMalformed) && !errors.Is(err, seal.ErrUnknownKey) && !errors.Is(err, seal.ErrTampered) {
				t.Fatalf("an unreadable value's error says neither malformed, unknown key nor tampered: %v", err)
			}
		case !sealed:
			if !bytes.Equal(got, canon) {
				t.Fatalf("a value that is not sealed read as %s, want %s", got, canon)
			}
		default:
			// It opened: only values this keyring sealed under (app, key)
			// do, and the seeds are the only ones.
			if app != "app" || key != "k" {
				t.Fatalf("a value sealed under (app, k) opened under (%s, %s)", app, key)
			}
		}
	})
}
