package seal_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modrun/modrun/seal"
	"github.com/modrun/modrun/store"
)

func TestParseKeyringErrors(t *testing.T) {
	good := keyOf("a")
	for _, tc := range []struct{ text, want string }{
		{"", "keys:1"[:4] + ": no keys"},
		{"# only a comment\n\n", "no keys"},
		{"nocolon\n", "keys:1: want ID:BASE64"},
		{"\n\nbad id:" + good, "keys:3: key id \"bad id\""},
		{"a:" + good + "\na:" + good, "keys:2: key id \"a\" appears twice"},
		{"a:c2hvcnQ=", "keys:1: key \"a\": want 32 bytes"},
		{"a:!!!notbase64", "keys:1: key \"a\": want 32 bytes"},
		{":" + good, "keys:1: key id \"\""},
		{strings.Repeat("i", 33) + ":" + good, "want 1 to 32 characters"},
	} {
		_, err := seal.ParseKeyring("keys", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v; want it to say %q", tc.text, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), good) {
			t.Errorf("%q: the error shows the key", tc.text)
		}
	}
	r, err := seal.ParseKeyring("keys", []byte("# comment\n b:"+keyOf("b")+" \na:"+strings.TrimRight(keyOf("a"), "=")+"\n"))
	if err != nil || r.SealingID() != "b" || strings.Join(r.IDs(), ",") != "b,a" {
		t.Fatalf("good keyring: %v %v", r, err)
	}
}

func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte("a:" + keyOf("a") + "\n# c\nb:" + keyOf("b")))
	f.Add([]byte("x:"))
	f.Add([]byte(":\n:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := seal.ParseKeyring("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// A keyring that parsed seals and opens.
		st := seal.Wrap(store.NewMemory(), r)
		if err := st.Set(context.Background(), "a", "k", json.RawMessage(`"v"`)); err != nil {
			t.Fatal(err)
		}
		if v, err := st.Get(context.Background(), "a", "k"); err != nil || string(v) != `"v"` {
			t.Fatalf("%s %v", v, err)
		}
	})
}

func TestLoadKeyringRefusesOpenModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("a:"+keyOf("a")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.LoadKeyring(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 keyring: %v", err)
	}
	os.Chmod(path, 0o600)
	if _, err := seal.LoadKeyring(path); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateAndAddKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "modrun", "keys")
	r, created, err := seal.LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	first := r.SealingID()
	again, created, err := seal.LoadOrCreate(path)
	if err != nil || created || again.SealingID() != first {
		t.Fatalf("second LoadOrCreate made another key: %v %v", created, err)
	}
	ctx := context.Background()
	mem := store.NewMemory()
	seal.Wrap(mem, r).Set(ctx, "app", "k", json.RawMessage(`7`))

	id, err := seal.AddKey(path)
	if err != nil || id == first {
		t.Fatalf("AddKey: %q %v", id, err)
	}
	r2, err := seal.LoadKeyring(path)
	if err != nil || strings.Join(r2.IDs(), ",") != id+","+first {
		t.Fatalf("after AddKey: %v %v", r2.IDs(), err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after AddKey: %v", fi.Mode())
	}
	if v, err := seal.Wrap(mem, r2).Get(ctx, "app", "k"); err != nil || string(v) != "7" {
		t.Fatalf("the old key no longer opens: %s %v", v, err)
	}
	// A running process picks the new key up with Reload.
	if err := r.Reload(); err != nil || r.SealingID() != id {
		t.Fatalf("Reload: sealing with %q, %v; want %q", r.SealingID(), err, id)
	}
	os.WriteFile(path, []byte("broken"), 0o600)
	if err := r.Reload(); err == nil || r.SealingID() != id {
		t.Fatalf("a failed Reload changed the keyring: %v, %q", err, r.SealingID())
	}
}
