package engine_test

import (
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
