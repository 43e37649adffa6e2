package seal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/etcdstore"
	"github.com/modrun/modrun/internal/etcdtest"
	"github.com/modrun/modrun/seal"
)

// TestEtcdNothingInClear: over etcd, neither what a client reads back
// raw (etcdctl get --prefix) nor etcd's files at rest hold a token; the
// sealing store keeps etcd's lock (fenced refreshes need it); and a
// store rekeyed there opens with the new key alone.
func TestEtcdNothingInClear(t *testing.T) {
	srv := etcdtest.Start(t)
	raw, err := etcdstore.Open(srv.URL("sealed"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := seal.Wrap(raw, keyring(t, "A"))
	if _, ok := st.(engine.Locker); !ok {
		t.Fatal("sealed etcd store is not a Locker")
	}
	if err := st.Set(ctx, "my-app", "oauth2.api", json.RawMessage(tokenSet)); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.CompareAndSwap(ctx, "my-app", "session", nil, json.RawMessage(`{"refresh_token":"rt-SECRET-cas"}`)); !ok || err != nil {
		t.Fatalf("cas: %v %v", ok, err)
	}
	for _, app := range []string{"my-app"} {
		all, err := raw.List(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range all {
			if bytes.Contains(v, []byte("SECRET")) {
				t.Errorf("%s/%s reads back in clear: %s", app, k, v)
			}
		}
	}
	// A lock held across the write: the fenced path seals too.
	unlock, err := st.(engine.Locker).Lock(ctx, "my-app", "oauth2.api")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.CompareAndSwap(ctx, "my-app", "oauth2.api", json.RawMessage(tokenSet), json.RawMessage(`{"access_token":"at-SECRET-fenced"}`)); !ok || err != nil {
		t.Fatalf("fenced cas: %v %v", ok, err)
	}
	unlock()

	rekeyed := seal.Wrap(raw, keyring(t, "B", "A"))
	if rep, err := rekeyed.(engine.Rekeyer).Rekey(ctx, nil); err != nil || rep.Resealed != 2 {
		t.Fatalf("rekey: %+v %v", rep, err)
	}
	got, err := seal.Wrap(raw, keyring(t, "B")).Get(ctx, "my-app", "oauth2.api")
	if err != nil || string(got) != `{"access_token":"at-SECRET-fenced"}` {
		t.Fatalf("with B alone: %s %v", got, err)
	}

	raw.Close()
	srv.Stop() // etcd's files, at rest
	filepath.WalkDir(srv.DataDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte("SECRET")) {
			t.Errorf("%s holds a token in clear", path)
		}
		return nil
	})
}
