package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modrun/modrun/seal"
	"github.com/modrun/modrun/store"
)

// kvPackage is a package whose put stores a secret-looking value.
func kvPackage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: kv\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default {
		async put(key, n) { await storeValue(key, {n, refresh_token: "rt-SECRET-" + key}); return n },
	}`), 0o644)
	return dir
}

// TestRekeyUnderServe is DESIGN §17's rotation, end to end with real
// processes: a bbolt store sealed by key A; keygen puts B first; a server
// reloads with B, A while 64 clients keep writing through runs, and
// runner store rekey --server re-seals everything; afterwards the store
// opens with B alone, every acknowledged write is there, and the file
// holds no value in clear.
func TestRekeyUnderServe(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := seal.AddKey(keys); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "s.db")
	pkg := kvPackage(t)
	const token = "rekey-test-token-0123456789"

	srv := startServe(t, token, "--store", db, "--keys", keys, pkg)
	for i := range 100 {
		if code, out, _ := srv.call("POST", "/v1/run/kv/m.put", fmt.Sprintf(`{"args": ["old%d", %d]}`, i, i)); code != 200 {
			t.Fatalf("put %d: %d %v", i, code, out)
		}
	}
	srv.stop()

	out, errOut, code := runBinary(t, nil, "store", "keygen", "--keys", keys)
	if code != 0 || !strings.Contains(out, "added first to "+keys) {
		t.Fatalf("keygen: %d %q %q", code, out, errOut)
	}
	srv = startServe(t, token, "--store", db, "--keys", keys, pkg)

	const clients = 64
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		last    [clients]int // each client's last acknowledged n
		failed  atomic.Int64
		rekeyed = make(chan struct{})
	)
	for c := range clients {
		last[c] = -1
		wg.Go(func() {
			for n := 0; n < 5 || !stop.Load(); n++ {
				body := fmt.Sprintf(`{"args": ["c%d", %d]}`, c, n)
				if post(srv, "/v1/run/kv/m.put", body) != 200 {
					failed.Add(1)
					continue
				}
				last[c] = n
			}
		})
	}
	go func() {
		defer close(rekeyed)
		out, errOut, code := runBinary(t, []string{"MODRUN_TOKEN=" + token}, "store", "rekey", "--server", srv.url)
		if code != 0 || !strings.Contains(out, "resealed") {
			t.Errorf("rekey: exit %d, %q %q", code, out, errOut)
		}
		t.Logf("rekey: %s", strings.TrimSpace(out))
	}()
	<-rekeyed
	stop.Store(true)
	wg.Wait()
	srv.stop()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d writes failed during the rekey", n)
	}

	// Drop key A: B alone must open everything.
	ring, _ := os.ReadFile(keys)
	var onlyB []string
	for _, line := range strings.Split(string(ring), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			onlyB = append(onlyB, line)
			break // the first: B
		}
	}
	os.WriteFile(keys, []byte(strings.Join(onlyB, "\n")+"\n"), 0o600)

	out, errOut, code = runBinary(t, nil, "store", "list", "--store", db, "--keys", keys, "--app", "kv", "--reveal")
	if code != 0 {
		t.Fatalf("list with B alone: exit %d: %s", code, errOut)
	}
	var all map[string]struct{ N int }
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	for i := range 100 {
		if v, ok := all[fmt.Sprintf("old%d", i)]; !ok || v.N != i {
			t.Errorf("old%d: %+v, %v", i, v, ok)
		}
	}
	for c := range clients {
		if v, ok := all[fmt.Sprintf("c%d", c)]; !ok || v.N != last[c] {
			t.Errorf("client %d: stored %+v (%v), last acknowledged %d", c, v, ok, last[c])
		}
	}
	// The run history is sealed too, and opens with B alone: a server
	// starts on it.
	srv = startServe(t, token, "--store", db, "--keys", keys, pkg)
	srv.stop()

	raw, _ := os.ReadFile(db)
	if bytes.Contains(raw, []byte("SECRET")) || bytes.Contains(raw, []byte("refresh_token")) {
		t.Error("the store file holds a value in clear")
	}
}

// seed writes value under (app, key) of the bbolt store at db, sealed with
// the tests' keyring, as modrun itself would (for keys runner store
// refuses).
func seed(t *testing.T, db, app, key, value string) {
	t.Helper()
	ring, err := seal.LoadKeyring(os.Getenv("MODRUN_KEYS_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	bolt, err := store.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := seal.Wrap(bolt, ring)
	defer st.Close()
	if err := st.Set(context.Background(), app, key, json.RawMessage(value)); err != nil {
		t.Fatal(err)
	}
}

// post sends an authorized POST and returns its status (0 if it failed
// to send); safe from any goroutine.
func post(s *served, path, body string) int {
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestDefaultKeyring: with neither --keys nor $MODRUN_KEYS_FILE, the
// first command that opens a store makes the keyring at
// $XDG_STATE_HOME/modrun/keys (0600) and says so once; later commands
// use it; a keyring others can read is refused; a store sealed by a key
// the keyring lacks fails naming the key id.
func TestDefaultKeyring(t *testing.T) {
	state := t.TempDir()
	env := []string{"MODRUN_KEYS_FILE=", "XDG_STATE_HOME=" + state}
	db := filepath.Join(t.TempDir(), "s.db")
	_, errOut, code := runBinary(t, env, "store", "set", "--store", db, "--app", "a", "token", `"tok-SECRET-1"`)
	keys := filepath.Join(state, "modrun", "keys")
	if code != 0 || !strings.Contains(errOut, "keys: written to "+keys) {
		t.Fatalf("first use: exit %d, %q", code, errOut)
	}
	if fi, err := os.Stat(keys); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring: %v %v", fi, err)
	}
	out, errOut, code := runBinary(t, env, "store", "get", "--store", db, "--app", "a", "token", "--reveal")
	if code != 0 || out != "\"tok-SECRET-1\"\n" || strings.Contains(errOut, "keys:") {
		t.Fatalf("second use: exit %d, %q, %q", code, out, errOut)
	}
	os.Chmod(keys, 0o644)
	if _, errOut, code := runBinary(t, env, "store", "list", "--store", db, "--app", "a"); code == 0 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("a readable keyring: exit %d, %q", code, errOut)
	}
	os.Chmod(keys, 0o600)
	other := filepath.Join(t.TempDir(), "keys")
	seal.AddKey(other)
	_, errOut, code = runBinary(t, nil, "store", "get", "--store", db, "--app", "a", "token", "--keys", other)
	if code == 0 || !strings.Contains(errOut, "sealed by key \"k") || strings.Contains(errOut, "SECRET") {
		t.Fatalf("another keyring: exit %d, %q", code, errOut)
	}
	raw, _ := os.ReadFile(db)
	if bytes.Contains(raw, []byte("SECRET")) {
		t.Error("the store file holds the value in clear")
	}
}
