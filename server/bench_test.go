package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/server"
	"github.com/modrun/modrun/store"
)

// BenchmarkServeRefresh is bench/refresh's auth.refresh through the
// server's handler over loopback HTTP, 64 clients at once, against a token
// server in the same process: what serving adds to a run (bench/run.sh
// row 7 compares it with plain Go and Node.js as separate processes).
func BenchmarkServeRefresh(b *testing.B) {
	var n atomic.Int64
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = i // the same tokens every time, as bench/tokenserver: a new token costs the redactor a rebuild (internal/redact)
		fmt.Fprint(w, `{"access_token":"at-0123456789abcdef","refresh_token":"rt-0123456789abcdef","token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokens.Close()
	db, err := store.Open(filepath.Join(b.TempDir(), "s.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	eng := modrun.New(modrun.Options{Store: db})
	dir, _ := filepath.Abs("../bench/refresh")
	srv := server.New(server.Options{Loader: eng, Packages: []string{dir}, Store: db, Token: token,
		NewInstance: func(pkg *engine.Package, app string, obs engine.Observer) (engine.Instance, error) {
			return eng.NewInstance(pkg, modrun.InstanceOptions{App: app, Observer: obs, Inputs: map[string]any{"baseUrl": tokens.URL}})
		}})
	if err := srv.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: t}
	url := ts.URL + "/v1/run/bench-refresh/auth.refresh"
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(`{"args": []}`))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var out struct{ Result json.RawMessage }
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(out.Result) != "3600" {
				b.Errorf("HTTP %d %s", resp.StatusCode, out.Result)
				return
			}
		}
	})
	b.StopTimer()
	os.Stderr.Sync()
}
