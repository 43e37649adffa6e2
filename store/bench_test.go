package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/modrun/modrun/store"
)

func openBench(b *testing.B) *store.DB {
	db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

var benchValue = json.RawMessage(`{"access_token":"eyJhbGciOiJIUzI1NiJ9.e30.abc","expires_in":3600}`)

// BenchmarkSetSequential is one writer: every Set is its own fsync'd commit.
func BenchmarkSetSequential(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := db.Set(ctx, "bench", strconv.Itoa(i%1000), benchValue); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkSetConcurrent64 is 64 writers; group commit shares fsyncs.
// Compare its writes/s with BenchmarkSetSequential's in the same run.
func BenchmarkSetConcurrent64(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := db.Set(ctx, "bench", strconv.FormatInt(i%1000, 10), benchValue); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func BenchmarkGet(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	if err := db.Set(ctx, "bench", "k", benchValue); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.Get(ctx, "bench", "k"); err != nil {
			b.Fatal(err)
		}
	}
}
