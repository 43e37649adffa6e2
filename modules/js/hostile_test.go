package js_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/js"
)

// TestCallReturnsByItsDeadline: whatever the JS does — native calls goja
// cannot interrupt, timers that never let the loop rest — a call returns
// by its deadline (DESIGN §15), and a settled call is not held by timers.
func TestCallReturnsByItsDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	for _, c := range []struct {
		name, src string
		want      string // in the error; "" means the call succeeds
	}{
		{"backtracking regexp", `export default { f() { return /^(a+)+(?!x)b/.test("a".repeat(25)) } }`, "deadline"},
		{"huge repeat", `export default { f() { return 'x'.repeat(2**28).length } }`, "deadline"},
		{"deep stringify", `export default { f() { let o = {}; for (let i = 0; i < 20000; i++) o = {o}; return JSON.stringify(o).length } }`, "deadline"},
		{"sync loop", `export default { f() { for (;;) {} } }`, "deadline"},
		{"10000 intervals, settled at once", `export default { f() { for (let i = 0; i < 10000; i++) setInterval(() => {}, 1); return "back" } }`, ""},
		{"10000 intervals, awaited", `export default { async f() { for (let i = 0; i < 10000; i++) setInterval(() => {}, 1); await new Promise(r => setTimeout(r, 20)); return "back" } }`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			pkg := load(t, map[string]string{"m.js": c.src})
			inst := js.NewInstance(pkg, js.Options{Timeout: deadline})
			start := time.Now()
			out, err := inst.Call(context.Background(), "m.f")
			took := time.Since(start)
			closeStart := time.Now()
			inst.Close()
			if ct := time.Since(closeStart); ct > time.Second {
				t.Errorf("Close took %v", ct)
			}
			if took > deadline+500*time.Millisecond {
				t.Errorf("the call took %v; its deadline was %v", took, deadline)
			}
			if c.want == "" {
				if err != nil || string(out) != `"back"` {
					t.Fatalf("got %s, %v; want \"back\"", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, engine.ErrDeadline) {
				t.Fatalf("got %s, %v; want an error about the %s", out, err, c.want)
			}
		})
	}
}

// TestRuntimeAfterANativeOverrun: the instance serves the next call once
// the native call that overran is over, on a new runtime.
func TestRuntimeAfterANativeOverrun(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
		n: 0,
		slow() { this.n++; return 'x'.repeat(2**27).length },
		count() { return this.n },
	}`})
	inst := js.NewInstance(pkg, js.Options{Timeout: 5 * time.Millisecond})
	defer inst.Close()
	if _, err := inst.Call(context.Background(), "m.slow"); !errors.Is(err, engine.ErrDeadline) {
		t.Fatalf("slow: %v", err)
	}
	// Later calls may queue behind the overrun; one soon succeeds, and
	// its runtime is a fresh one (n is 0 again).
	var out []byte
	var err error
	for range 200 {
		if out, err = inst.Call(context.Background(), "m.count"); err == nil {
			break
		}
	}
	if err != nil || string(out) != "0" {
		t.Fatalf("count after the overrun: %s, %v; want 0 from a fresh runtime", out, err)
	}
}
