package oauth2_test

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modrun/modrun/etcdstore"
	"github.com/modrun/modrun/internal/etcdtest"
	"github.com/modrun/modrun/seal"
)

// TestTwoServesOnEtcd: two runner serve processes on one etcd (workers,
// the default), 50 concurrent calls to each after the access token
// expired, against go-oauth2's rotating, reuse-detecting server: one token
// request across both servers, no reuse (DESIGN.md §13).
func TestTwoServesOnEtcd(t *testing.T) {
	etcd := etcdtest.Start(t)
	a := newAuthServer(t)
	dir := credPackage(t)
	bin := filepath.Join(t.TempDir(), "runner")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/runner").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const token = "serve-token-0123456789"
	storeURL := etcd.URL("two")
	keys := filepath.Join(t.TempDir(), "keys") // both servers seal with it
	ring, _, err := seal.LoadOrCreate(keys)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for range 2 {
		urls = append(urls, startServe(t, bin, token, dir, "--store", storeURL, "--keys", keys,
			"--input", "baseUrl="+a.URL, "--input", "clientSecret=client-secret-xyz", "--workers", "2"))
	}
	call := func(base string) (int, string) {
		req, _ := http.NewRequest("POST", base+"/v1/run/creds/me", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call(urls[0]); code != 200 || !strings.Contains(body, `"ada"`) {
		t.Fatalf("first call (password grant): %d %s", code, body)
	}
	raw, err := etcdstore.Open(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	st := seal.Wrap(raw, ring)
	defer st.Close()
	expireToken(t, st)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if code, body := call(urls[i%2]); code != 200 || !strings.Contains(body, `"ada"`) {
				t.Errorf("call %d: %d %s", i, code, body)
			}
		})
	}
	wg.Wait()
	if a.count("refresh_token") != 1 || a.reuses.Load() != 0 {
		t.Fatalf("%d refreshes, %d reuses across two servers; want 1 and 0", a.count("refresh_token"), a.reuses.Load())
	}
}

// startServe starts runner serve on a free port and returns its URL.
func startServe(t *testing.T, bin, token string, args ...string) string {
	t.Helper()
	return startServeProc(t, bin, token, args...).url
}
