package packages_test

import (
	"testing"

	"github.com/modrun/modrun/packages"
)

// BenchmarkLoad is the load of the example's package (read once, then
// compiled with every load check) — what runner run, validate and
// publish pay before anything runs.
func BenchmarkLoad(b *testing.B) {
	files, err := packages.ReadDir("../examples/refresh-token/package", kinds()...)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := packages.Load(files, kinds()...); err != nil {
			b.Fatal(err)
		}
	}
}
