package engine_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/modrun/modrun/engine"
)

// TestDeepValuesAreRefused: a value nested past MaxValueDepth is refused
// on write (issue 28, finding 6: one 9,999 deep killed every worker that
// read it), one at the limit is kept, and brackets inside strings do not
// count.
func TestDeepValuesAreRefused(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	if _, err := engine.CanonicalValue(deep(engine.MaxValueDepth), 0); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	for _, n := range []int{engine.MaxValueDepth + 1, 9999, 100000} {
		_, err := engine.CanonicalValue(deep(n), 0)
		if !errors.Is(err, engine.ErrInvalidValue) || !strings.Contains(err.Error(), "the limit is 1000") {
			t.Fatalf("%d deep: %v", n, err)
		}
	}
	if d := engine.Depth([]byte(`{"a": "[[[[\"{{{", "b": [1, {"c": []}]}`)); d != 4 {
		t.Fatalf("Depth = %d, want 4", d)
	}
}

// FuzzCanonicalValue holds CanonicalValue to encoding/json: it accepts
// exactly the valid JSON within the limits, and returns json.Compact's
// text. (Its fast path for plain strings must agree with the decoder.)
func FuzzCanonicalValue(f *testing.F) {
	for _, s := range []string{`"abc"`, `""`, `"a\"b"`, `"\u00e9"`, "\"é\"", `"tab	in"`, `"a" `, ` "a"`, `"a`, `"`,
		`{"a": [1, 2]}`, `[1,2]`, `null`, engine.SealedPrefix + `v1:k1:QUJD"`, "\"\x7f\"", "\"\x1f\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := engine.CanonicalValue(v, 0)
		if errors.Is(err, engine.ErrValueTooLarge) || engine.Depth(v) > engine.MaxValueDepth {
			return
		}
		if valid := json.Valid(v); valid != (err == nil) {
			t.Fatalf("CanonicalValue(%q): error %v, but json.Valid says %v", v, err, valid)
		}
		if err != nil {
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("CanonicalValue(%q) = %q, want %q", v, got, want.Bytes())
		}
	})
}

// BenchmarkCanonicalValue: the check every store write makes. A sealed
// value (a long plain string) is the common case of a served store.
func BenchmarkCanonicalValue(b *testing.B) {
	sealed := []byte(engine.SealedPrefix + "v1:k1:" + strings.Repeat("QUJDRGVm", 60) + `"`)
	object := []byte(`{"id":"01JF3Z","status":"succeeded","result":{"access_token":"at-123","expires_in":3600},"args":[]}`)
	for _, c := range []struct {
		name string
		v    []byte
	}{{"sealed", sealed}, {"object", object}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.v)))
			for b.Loop() {
				if _, err := engine.CanonicalValue(c.v, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
