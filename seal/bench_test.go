package seal_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/seal"
	"github.com/modrun/modrun/store"
)

var benchValue = json.RawMessage(`{"access_token":"eyJhbGciOiJIUzI1NiJ9.e30.abc","refresh_token":"rt-0123456789abcdef","expires_in":3600}`)

// BenchmarkDurableSet is the durable storeValue path on bbolt, plain and
// sealed, in one run: compare the two rows (DESIGN §17 allows sealing
// 10%). go test ./seal -bench DurableSet -count 5 | benchstat
func BenchmarkDurableSet(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := "plain"
		if sealed {
			name = "sealed"
		}
		b.Run(name, func(b *testing.B) {
			db := openBolt(b, filepath.Join(b.TempDir(), "s.db"))
			var st engine.Store = db
			if sealed {
				st = seal.Wrap(db, keyring(b, "a"))
			}
			defer st.Close()
			s := engine.NewSession(st, "bench")
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.SetAsync(ctx, strconv.Itoa(i%100), benchValue)(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealOpen is the cost sealing adds, without the disk.
func BenchmarkSealOpen(b *testing.B) {
	st := seal.Wrap(store.NewMemory(), keyring(b, "a"))
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		st.Set(ctx, "bench", "k", benchValue)
		if _, err := st.Get(ctx, "bench", "k"); err != nil {
			b.Fatal(err)
		}
	}
}
