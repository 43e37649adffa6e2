package heapfloor

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		floor, live, roots uint64
		want               int
	}{
		{32 * mb, 2 * mb, 0, 800},       // not 1500: the minimum, 4 MB × 15, would pass the floor
		{32 * mb, 2 * mb, 2 * mb, 750},  // goal 2 + 4 × 7.5 = 32 MB
		{32 * mb, 16 * mb, 0, 100},      // floor = 2 × live: the default does it
		{32 * mb, 12 * mb, 8 * mb, 100}, // the default goal is past the floor
		{32 * mb, 64 * mb, 0, 100},      // above the floor
		{32 * mb, 1 << 10, 0, 800},      // the minimum: 4 MB × 8 = 32 MB
		{32 * mb, 0, 0, 800},
		{4 * mb, 0, 0, 100},
	} {
		if got := Percent(c.floor, c.live, c.roots); got != c.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", c.floor, c.live, c.roots, got, c.want)
		}
	}
}

// sink keeps the allocations below from being optimised away.
var sink []byte

// cycles counts the collections made while allocating 256 MB of
// short-lived garbage over a small live heap.
func cycles() uint32 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 256 << 10 {
		sink = make([]byte, 1<<10)
	}
	runtime.ReadMemStats(&after)
	return after.NumGC - before.NumGC
}

func TestSetCutsCollections(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	without := cycles()
	stop, ok := Set(64 << 20)
	if !ok {
		t.Fatal("Set refused with GOGC and GOMEMLIMIT unset")
	}
	if c := Current(); c != 64<<20 {
		t.Errorf("Current() = %d while set, want %d", c, 64<<20)
	}
	runtime.GC() // the adjustment runs after a collection
	with := cycles()
	stop()
	if c := Current(); c != 0 {
		t.Errorf("Current() = %d after stop, want 0", c)
	}
	t.Logf("collections for 256 MB of garbage: %d without a floor, %d with 64 MB", without, with)
	// 256 MB through a goal of about 64 MB: about 4 collections; without
	// the floor, dozens when the test runs alone, but as few as 15 seen
	// when other test binaries load the machine (the runtime's pacer
	// then lags behind): the floor must at least halve them.
	if with < 2 || with*2 > without {
		t.Fatalf("with a 64 MB floor %d collections, without %d: want under half", with, without)
	}
	// No adjustment may outlive stop, even one due after a collection.
	runtime.GC()
	runtime.GC()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("GOGC after stop: %d, want 100", p)
	}
}

func TestSetLeavesUserSettings(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "200")
			if _, ok := Set(64 << 20); ok {
				t.Fatalf("Set changed the GC with %s set", env)
			}
		})
	}
	if _, ok := Set(0); ok {
		t.Fatal("Set(0) changed the GC")
	}
	if c := Current(); c != 0 {
		t.Fatalf("Current() = %d after refused Sets, want 0", c)
	}
}

func ExamplePercent() {
	// A 2 MB live heap, 2 MB of stacks and globals and a 32 MB floor:
	// GOGC 750 makes the goal 2 + 4 × 7.5 = 32 MB.
	fmt.Println(Percent(32<<20, 2<<20, 2<<20))
	// Output: 750
}
