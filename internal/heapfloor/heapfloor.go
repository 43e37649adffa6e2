// Package heapfloor keeps the garbage collector from running while the
// heap is small, as the Go compiler does for itself
// (cmd/compile/internal/base/startheap.go).
//
// A modrun process typically has a live heap of 2-3 MB (goja runtimes,
// connections) and allocates about 14 KB per awaited query, nearly all of
// it short-lived (promises, resolving functions, response objects). With
// the default GOGC=100 the heap goal is then 4-6 MB, so the collector runs
// every ~150 runs, and marking, assists and stack scans took 13% of the
// CPU of runner bench. A floor of a few tens of MB cuts the cycles by an
// order of magnitude for a bounded cost in memory: the heap goal becomes
// max(floor, 2 × live), never more.
package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// current is the floor Set keeps, 0 when none: the process has one GC.
var current atomic.Uint64

// Current returns the floor in force in this process (0: none), for the
// worker processes an isolated engine starts: they keep the same floor.
func Current() uint64 { return current.Load() }

// minHeap is the runtime's minimum heap goal at GOGC=100; it scales with
// GOGC, so a GOGC above floor/minHeap × 100 would put the goal past the
// floor however small the live heap.
const minHeap = 4 << 20

// Set keeps the heap goal at floor bytes or more, by raising GOGC after
// each collection while the live heap is under about floor/2 and returning
// it to 100 above that. It does nothing if the environment sets GOGC or
// GOMEMLIMIT (the user's settings win) or floor is zero, and then reports
// false. stop ends the adjustment and restores GOGC=100.
func Set(floor uint64) (stop func(), ok bool) {
	if floor == 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}, false
	}
	// mu orders an adjustment running after a collection with stop.
	var mu sync.Mutex
	stopped := false
	sample := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	adjust := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return false
		}
		metrics.Read(sample)
		for _, s := range sample {
			if s.Value.Kind() != metrics.KindUint64 {
				return false // a metric is gone: leave GOGC alone
			}
		}
		live := sample[0].Value.Uint64()
		roots := sample[1].Value.Uint64() + sample[2].Value.Uint64()
		debug.SetGCPercent(Percent(floor, live, roots))
		return true
	}
	if !adjust() {
		return func() {}, false
	}
	current.Store(floor)
	forEachGC(adjust)
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		current.Store(0)
		debug.SetGCPercent(100)
	}, true
}

// Percent is the GOGC that puts the heap goal at floor, never less than
// the default 100. The runtime's goal is the larger of
// live + (live + roots) × GOGC/100, where roots are the scannable stacks
// and globals, and 4 MB × GOGC/100.
func Percent(floor, live, roots uint64) int {
	if floor <= live+(live+roots) || floor <= minHeap {
		return 100
	}
	p := floor * 100 / minHeap
	if live+roots > 0 {
		p = min(p, (floor-live)*100/(live+roots))
	}
	return int(max(p, 100))
}

// forEachGC calls fn after each collection until it returns false: a
// cleanup on an unreachable object runs once that object is collected.
func forEachGC(fn func() bool) {
	var arm func(struct{})
	arm = func(struct{}) {
		if fn() {
			// 32 bytes: big enough to stay out of the tiny allocator, whose
			// blocks live as long as their longest-lived neighbour.
			runtime.AddCleanup(new([32]byte), arm, struct{}{})
		}
	}
	runtime.AddCleanup(new([32]byte), arm, struct{}{})
}
