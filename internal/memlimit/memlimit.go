package memlimit

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/procs"
)

// DefaultLimit is the memory limit of a run when none is given.
const DefaultLimit = 256 << 20

// Interval and MaxInterval bound the time between two looks at the heap.
// How long Watch waits within them depends on how fast the process
// allocates (see nextLook): a process that allocates nothing is looked at
// ten times a second, not two hundred (issue 33: the 5 ms ticker alone
// kept an idle worker's runtime waking about 1,800 times a second, and
// cost 0.6 system calls per request served under load).
const (
	Interval    = 5 * time.Millisecond
	MaxInterval = 100 * time.Millisecond
)

// looks counts the watches' looks at the heap: tests wait on it rather
// than on the clock.
var looks atomic.Uint64

// rssInterval is the least time between two reads of the resident set (a
// file in /proc).
const rssInterval = 50 * time.Millisecond

// Watch returns a context derived from ctx that is cancelled with an
// error wrapping engine.ErrMemoryLimit once the live Go heap exceeds
// limit bytes, or the process's resident set passes limit plus what it
// held when the watch began (after returning what memory it can to the
// system). Under the race detector, whose shadow memory is resident too,
// only the heap is watched. stop ends the watch. A limit of 0 watches nothing.
func Watch(ctx context.Context, limit uint64) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	if limit == 0 {
		return ctx, func() { cancel(nil) }
	}
	done := make(chan struct{})
	// What the process held before it ran anything (its code, the Go
	// runtime) is not the runs': the resident set may pass the limit by
	// that much.
	base := RSS()
	go func() {
		heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(heap)
		allocs, looked, rssRead := uint64At(heap[1]), time.Now(), time.Now()
		wait := Interval
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := time.Now()
			// The resident set, less often (a file read): what the
			// process holds, heap or not (runtimes, stacks, memory the Go
			// runtime has not returned yet), is bounded too.
			if now.Sub(rssRead) >= rssInterval && !raceEnabled {
				rssRead = now
				if err := overResident(limit, base); err != nil {
					cancel(err)
					return
				}
			}
			metrics.Read(heap)
			looks.Add(1)
			inUse, total := uint64At(heap[0]), uint64At(heap[1])
			wait = nextLook(limit, inUse, total-allocs, now.Sub(looked))
			allocs, looked = total, now
			if inUse > limit {
				// Twice: what is allocated while a collection marks
				// counts as live in it, so a fast allocator of garbage
				// on a loaded machine (a slow mark) can look over the
				// limit once; a run that holds the memory is over it in
				// the next collection too.
				if liveOver(limit, 2) {
					cancel(fmt.Errorf("%w (%s)", engine.ErrMemoryLimit, Format(limit)))
					return
				}
			}
			t.Reset(wait)
		}
	}()
	return ctx, func() {
		close(done)
		cancel(nil)
	}
}

// nextLook is how long the watch waits before it looks again, given the
// heap's bytes in use now and the bytes allocated over the last wait
// (an upper bound on how fast the heap can grow): the time that rate
// takes to allocate half of what is left below the limit, between
// Interval and MaxInterval. A heap over the limit, or one that could
// reach it within Interval, is looked at again after Interval.
func nextLook(limit, inUse, allocated uint64, waited time.Duration) time.Duration {
	if inUse >= limit {
		return Interval
	}
	if allocated == 0 || waited <= 0 {
		return MaxInterval
	}
	d := time.Duration(float64(waited) * float64(limit-inUse) / float64(allocated) / 2)
	return min(max(d, Interval), MaxInterval)
}

// uint64At is a sample's value, 0 if the runtime does not have it.
func uint64At(s metrics.Sample) uint64 {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s.Value.Uint64()
}

// overResident is the resident-set check: an error wrapping
// engine.ErrMemoryLimit if the process holds more than limit+base bytes
// once it has returned what memory it can to the system.
func overResident(limit, base uint64) error {
	if rss := RSS(); rss > limit+base {
		debug.FreeOSMemory()
		if rss = RSS(); rss > limit+base {
			return fmt.Errorf("%w (%s): the process held %s", engine.ErrMemoryLimit, Format(limit), Format(rss&^(1<<20-1)))
		}
	}
	return nil
}

// RSS returns the process's resident set in bytes, from /proc; 0 where
// there is none.
func RSS() uint64 { return procs.RSS(os.Getpid()) }

// Live collects garbage and returns the bytes of heap objects that
// collection found live. (Not the heap's objects:bytes after it: that
// also counts what other goroutines allocated since, which a fast
// allocator of garbage makes large.)
func Live() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// liveOver reports whether each of n collections in a row finds more than
// limit bytes live.
func liveOver(limit uint64, n int) bool {
	for range n {
		if Live() <= limit {
			return false
		}
	}
	return true
}

// Format writes n bytes as the largest whole unit: "256 MiB", "1 GiB",
// "1536 KiB", "100 B".
func Format(n uint64) string {
	for _, u := range []struct {
		name string
		size uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatUint(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatUint(n, 10) + " B"
}

// Parse reads a size: a whole number of bytes with an optional unit, KiB,
// MiB or GiB (also K, M, G, KB, MB, GB, all binary), such as 256MiB or
// "1 GiB". "0" means no limit.
func Parse(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, such as 256MiB or 1GiB", s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	var shift uint
	switch strings.ToUpper(strings.TrimSpace(t[i:])) {
	case "", "B":
	case "K", "KB", "KIB":
		shift = 10
	case "M", "MB", "MIB":
		shift = 20
	case "G", "GB", "GIB":
		shift = 30
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q; use KiB, MiB or GiB", s, strings.TrimSpace(t[i:]))
	}
	if n > (1<<64-1)>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << shift, nil
}
