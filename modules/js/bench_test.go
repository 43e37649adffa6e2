package js_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/store"
)

// BenchmarkFreshInstanceSync is a one-shot run: a new instance from the
// precompiled package, one sync call, close.
func BenchmarkFreshInstanceSync(b *testing.B) {
	pkg := load(b, map[string]string{"m.js": `export default { add(a, b) { return a + b; } };`})
	st := store.NewMemory()
	args := []json.RawMessage{json.RawMessage("1"), json.RawMessage("2")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		inst := js.NewInstance(pkg, js.Options{Store: st})
		out, err := inst.Call(context.Background(), "m.add", args...)
		if err != nil || string(out) != "3" {
			b.Fatal(out, err)
		}
		inst.Close()
	}
}

// BenchmarkAwaitQuery compares an async JS function awaiting one query
// (and reading a field of its JSON) with plain net/http + encoding/json
// doing the same request, sequentially and in parallel: compare ns/op of
// js vs plain within each pair (target: js ≤ 1.5× plain).
func BenchmarkAwaitQuery(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-1","refresh_token":"rt-2","expires_in":3600}`))
	}))
	defer srv.Close()
	pkg := load(b, map[string]string{"refreshAPI.query.yaml": refreshQuery, "m.js": `export default {
	async refresh() {
		const tok = await refreshAPI.run({ refreshtoken: "rt-1" });
		return tok.expires_in;
	},
};`})
	st := store.NewMemory()
	inputs := map[string]any{"baseUrl": srv.URL}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	plain := func(b *testing.B) {
		body, _ := json.Marshal(map[string]string{"refresh_token": "rt-1"})
		req, _ := http.NewRequest("POST", srv.URL+"/token", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var tok map[string]any
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil || tok["expires_in"] != 3600.0 {
			b.Fatal(err)
		}
	}
	viaJS := func(b *testing.B, inst *js.Instance) {
		out, err := inst.Call(context.Background(), "m.refresh")
		if err != nil || string(out) != "3600" {
			b.Fatal(string(out), err)
		}
	}
	b.Run("sequential/js", func(b *testing.B) {
		inst := js.NewInstance(pkg, js.Options{Store: st, Inputs: inputs})
		defer inst.Close()
		for i := 0; i < b.N; i++ {
			viaJS(b, inst)
		}
	})
	b.Run("sequential/plain", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			plain(b)
		}
	})
	b.Run("parallel/js", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			inst := js.NewInstance(pkg, js.Options{Store: st, Inputs: inputs})
			defer inst.Close()
			for pb.Next() {
				viaJS(b, inst)
			}
		})
	})
	b.Run("parallel/plain", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				plain(b)
			}
		})
	})
}

// BenchmarkStoreValueDurable64 is row 5 of bench/: a durable storeValue
// from 64 concurrent runs on one instance over a bbolt file; every write
// is on disk (fsync'd, group-committed) before its run returns (target:
// ≥ 20k writes/s).
func BenchmarkStoreValueDurable64(b *testing.B) {
	pkg := load(b, map[string]string{"m.js": `export default { async store(i) { await storeValue("k", i); } };`})
	inst := js.NewInstance(pkg, js.Options{Store: openStore(b)})
	defer inst.Close()
	arg := json.RawMessage("1")
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := inst.Call(context.Background(), "m.store", arg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
