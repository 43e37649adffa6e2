package etcdstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/etcdstore"
	"github.com/modrun/modrun/internal/etcdtest"
)

// BenchmarkDurableWrites: 64 concurrent durable writes to one etcd, three
// ways in one run so that their ratio means something on a noisy machine:
// plain clientv3 Puts (the floor), the store's Set, and JS storeValue
// through an instance on the store. DESIGN.md §13 wants storeValue at
// 0.8× plain or better.
func BenchmarkDurableWrites(b *testing.B) {
	srv := etcdtest.Start(b)
	ctx := context.Background()
	par := max(1, 64/runtime.GOMAXPROCS(0))
	var n atomic.Int64
	b.Run("plain-put", func(b *testing.B) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}})
		if err != nil {
			b.Fatal(err)
		}
		defer cli.Close()
		b.SetParallelism(par)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := cli.Put(ctx, "/plain/kv/app/k"+strconv.FormatInt(i%1000, 10), strconv.FormatInt(i, 10)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("store-set", func(b *testing.B) {
		st, err := etcdstore.Open(srv.URL("set"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		b.SetParallelism(par)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if err := st.Set(ctx, "app", "k"+strconv.FormatInt(i%1000, 10), json.RawMessage(strconv.FormatInt(i, 10))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("storeValue", func(b *testing.B) {
		st, err := etcdstore.Open(srv.URL("js"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		dir := b.TempDir()
		os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: w\nversion: 1.0.0\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default { async put(i) { await storeValue("k" + (i % 1000), i); } };`), 0o644)
		eng := modrun.New(modrun.Options{Store: st})
		defer eng.Close()
		pkg, err := eng.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer inst.Close()
		b.SetParallelism(par)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := inst.Call(ctx, "m.put", json.RawMessage(fmt.Sprint(i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
