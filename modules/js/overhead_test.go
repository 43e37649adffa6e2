package js_test

import (
	"context"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/heapfloor"
	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/store"
)

// cannedQuery answers at once with a fixed token response: what is left
// is modrun's and goja's own cost of an awaited query.
type cannedQuery struct{}

func (cannedQuery) Name() string { return "refreshAPI" }
func (cannedQuery) File() string { return "refreshAPI.query.yaml" }
func (cannedQuery) Bind(engine.Scope, any) (engine.Request, error) {
	return cannedQuery{}, nil
}
func (cannedQuery) Send(context.Context) (*engine.Response, error) {
	return &engine.Response{
		StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Kind: engine.BodyJSON,
		Body: []byte(`{"access_token":"at-0123456789abcdef","refresh_token":"rt-0123456789abcdef","token_type":"Bearer","expires_in":3600}`),
	}, nil
}

// cannedPackage is the seed's refresh flow over cannedQuery.
func cannedPackage(b *testing.B) *engine.Package {
	// A real refreshAPI module makes the load check see the name; the
	// canned one replaces it below.
	base := load(b, map[string]string{"refreshAPI.query.yaml": "url: http://127.0.0.1:1/\n", "auth.js": `export default {
	async refresh() {
		const rt = appsmith.store.refreshtoken ?? "rt-0";
		const tok = await refreshAPI.run({ refreshtoken: rt });
		await storeValue("accesstoken", tok.access_token, false);
		await storeValue("refreshtoken", tok.refresh_token, false);
		return tok.expires_in;
	},
};`})
	pkg := *base
	pkg.Modules = []engine.Module{base.Module("auth"), cannedQuery{}}
	return &pkg
}

// BenchmarkRefreshFlowOverhead is the seed's refresh flow with the network
// taken out: read the store, await a query, two storeValue(…, false).
func BenchmarkRefreshFlowOverhead(b *testing.B) {
	inst := js.NewInstance(cannedPackage(b), js.Options{Store: store.NewMemory()})
	defer inst.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if out, err := inst.Call(ctx, "auth.refresh"); err != nil || string(out) != "3600" {
			b.Fatal(string(out), err)
		}
	}
}

// BenchmarkRefreshFlowOverhead64 is the same with 64 callers sharing a
// pool of instances: what concurrency adds (hand-offs, contention).
func BenchmarkRefreshFlowOverhead64(b *testing.B) {
	pkg := cannedPackage(b)
	var insts []*js.Instance
	for range 2 {
		inst := js.NewInstance(pkg, js.Options{Store: store.NewMemory()})
		defer inst.Close()
		insts = append(insts, inst)
	}
	var next atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		inst := insts[next.Add(1)%2]
		for pb.Next() {
			if out, err := inst.Call(context.Background(), "auth.refresh"); err != nil || string(out) != "3600" {
				b.Fatal(string(out), err)
			}
		}
	})
}

// BenchmarkHeapFloor is BenchmarkRefreshFlowOverhead64 under Go's default
// GC and under the runner's 32 MB heap floor (internal/heapfloor), in one
// run: compare the two ns/op.
func BenchmarkHeapFloor(b *testing.B) {
	pkg := cannedPackage(b)
	flow := func(b *testing.B) {
		inst := js.NewInstance(pkg, js.Options{Store: store.NewMemory()})
		defer inst.Close()
		b.SetParallelism(32)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if out, err := inst.Call(context.Background(), "auth.refresh"); err != nil || string(out) != "3600" {
					b.Fatal(string(out), err)
				}
			}
		})
	}
	b.Run("default-gc", flow)
	b.Run("floor-32MB", func(b *testing.B) {
		stop, ok := heapfloor.Set(32 << 20)
		if !ok {
			b.Skip("GOGC or GOMEMLIMIT is set in the environment: the floor does not apply")
		}
		defer stop()
		runtime.GC() // the floor takes effect after a collection
		flow(b)
	})
}
