package etcdstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/etcdstore"
	"github.com/modrun/modrun/internal/etcdtest"
	"github.com/modrun/modrun/store"
)

// BenchmarkDurableWrites: 64 concurrent durable writes to one etcd, three
// ways in one run so that their ratio means something on a noisy machine:
// plain clientv3 Puts (the floor), the store's Set, and JS storeValue
// through an instance on the store. DESIGN.md §13 wants storeValue at
// 0.8× plain or better.
func BenchmarkDurableWrites(b *testing.B) {
	srv := etcdtest.Start(b)
	ctx := context.Background()
	b.Run("plain-put", func(b *testing.B) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}})
		if err != nil {
			b.Fatal(err)
		}
		defer cli.Close()
		parallel64(b, func(i int64) error {
			_, err := cli.Put(ctx, "/plain/kv/app/k"+strconv.FormatInt(i%1000, 10), strconv.FormatInt(i, 10))
			return err
		})
	})
	b.Run("store-set", func(b *testing.B) {
		st, err := etcdstore.Open(srv.URL("set"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		parallel64(b, func(i int64) error {
			return st.Set(ctx, "app", "k"+strconv.FormatInt(i%1000, 10), json.RawMessage(strconv.FormatInt(i, 10)))
		})
	})
	b.Run("storeValue", func(b *testing.B) {
		st, err := etcdstore.Open(srv.URL("js"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() }) // after the instance (cleanups run last first)
		dir := b.TempDir()
		os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: w\nversion: 1.0.0\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default { async put(i) { await storeValue("k" + (i % 1000), i); } };`), 0o644)
		inst := instanceOn(b, st, dir, nil)
		parallel64(b, func(i int64) error {
			_, err := inst.Call(ctx, "m.put", json.RawMessage(fmt.Sprint(i)))
			return err
		})
	})
}

// BenchmarkRefreshFlowDurable: bench/refresh's auth.refreshDurable (read
// the store, POST the token request over loopback, two durable
// storeValue) at concurrency 64, on bbolt and on etcd in one run: what a
// shared store costs the refresh flow (reported, no target).
func BenchmarkRefreshFlowDurable(b *testing.B) {
	srv := etcdtest.Start(b)
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at-1","refresh_token":"rt-1","expires_in":3600}`)
	}))
	defer tokens.Close()
	ctx := context.Background()
	for _, backend := range []string{"bbolt", "etcd"} {
		b.Run(backend, func(b *testing.B) {
			var st engine.Store
			var err error
			if backend == "etcd" {
				st, err = etcdstore.Open(srv.URL("refresh"))
			} else {
				st, err = store.Open(filepath.Join(b.TempDir(), "s.db"), nil)
			}
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			inst := instanceOn(b, st, "../bench/refresh", map[string]any{"baseUrl": tokens.URL})
			parallel64(b, func(int64) error {
				_, err := inst.Call(ctx, "auth.refreshDurable")
				return err
			})
		})
	}
}

// parallel64 calls op b.N times from 64 goroutines (whatever GOMAXPROCS
// is), each call with its own sequence number.
func parallel64(b *testing.B, op func(i int64) error) {
	var n atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// instanceOn loads the package in dir on an engine over st; both close
// when the benchmark ends.
func instanceOn(b *testing.B, st engine.Store, dir string, inputs map[string]any) engine.Instance {
	eng := modrun.New(modrun.Options{Store: st})
	b.Cleanup(func() { eng.Close() })
	pkg, err := eng.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: inputs})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { inst.Close() })
	return inst
}
