package memlimit

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
)

var sink [][]byte

func TestWatchCancelsPastTheLimit(t *testing.T) {
	ctx, stop := Watch(context.Background(), 64<<20)
	defer stop()
	deadline := time.After(10 * time.Second)
	for ctx.Err() == nil {
		select {
		case <-deadline:
			t.Fatal("the watch did not trip with 1 GiB live")
		default:
		}
		if len(sink) < 1024 {
			sink = append(sink, make([]byte, 1<<20))
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	sink = nil
	err := context.Cause(ctx)
	if !errors.Is(err, engine.ErrMemoryLimit) || err.Error() != "run exceeded its memory limit (64 MiB)" {
		t.Fatalf("cause = %v", err)
	}
}

func TestWatchIgnoresGarbage(t *testing.T) {
	ctx, stop := Watch(context.Background(), 64<<20)
	defer stop()
	// 2 GiB allocated in all, never more than 1 MiB of it live.
	for range 2048 {
		b := make([]byte, 1<<20)
		b[0] = 1
	}
	// Two looks after the churn, however long a loaded machine takes.
	// (looks counts every watch's; this test's is the only one running.)
	since, deadline := looks.Load(), time.Now().Add(30*time.Second)
	for looks.Load() < since+2 {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not look at the heap in 30 s")
		}
		time.Sleep(time.Millisecond)
	}
	if err := context.Cause(ctx); err != nil {
		t.Fatalf("tripped on garbage: %v", err)
	}
}

// TestNextLook: the watch looks again sooner the faster the process
// allocates towards its limit, within Interval and MaxInterval.
func TestNextLook(t *testing.T) {
	const limit = 256 << 20
	for _, c := range []struct {
		inUse, allocated uint64
		waited, want     time.Duration
	}{
		{10 << 20, 0, MaxInterval, MaxInterval},                         // idle
		{10 << 20, 1 << 20, MaxInterval, MaxInterval},                   // 10 MB/s: 12 s to go halfway
		{56 << 20, 100 << 20, 100 * time.Millisecond, MaxInterval},      // 1 GB/s, 200 MiB left: 100 ms to halfway
		{156 << 20, 100 << 20, 100 * time.Millisecond, MaxInterval / 2}, // 1 GB/s, 100 MiB left
		{250 << 20, 100 << 20, 100 * time.Millisecond, Interval},        // 6 MiB left at 1 GB/s: 3 ms
		{300 << 20, 0, MaxInterval, Interval},                           // over: look again soon
		{10 << 20, 1 << 20, 0, MaxInterval},
	} {
		if got := nextLook(limit, c.inUse, c.allocated, c.waited); got != c.want {
			t.Errorf("nextLook(%d MiB in use, %d MiB allocated in %v) = %v, want %v", c.inUse>>20, c.allocated>>20, c.waited, got, c.want)
		}
	}
}

func TestParseAndFormat(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		fmt  string
	}{
		{"256MiB", 256 << 20, "256 MiB"}, {"1 GiB", 1 << 30, "1 GiB"}, {"512M", 512 << 20, "512 MiB"},
		{"1536k", 1536 << 10, "1536 KiB"}, {"100", 100, "100 B"}, {"0", 0, "0 B"},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if f := Format(got); f != c.fmt {
			t.Errorf("Format(%d) = %q, want %q", got, f, c.fmt)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "12 parsecs", "99999999999999999999", "17179869184GiB"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"256MiB", "1 GiB", "0", "12kb", "x", "18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		// What Format writes, Parse reads back.
		if back, err := Parse(Format(n)); err != nil || back != n {
			t.Fatalf("Parse(Format(%d)) = %d, %v", n, back, err)
		}
	})
}

// TestWatchBoundsTheResidentSet: memory the Go heap does not count (here
// an anonymous mapping; in a worker, runtimes and memory the runtime has
// not returned) trips the resident-set check once the process holds more
// than the limit over what it held at start. Watch runs the check except
// under the race detector (its shadow memory is resident): then the check
// itself is what is tested, and .ci/run also runs this without -race.
func TestWatchBoundsTheResidentSet(t *testing.T) {
	base := RSS()
	if base == 0 {
		t.Fatal("no resident set from /proc/self/statm")
	}
	const limit = 64 << 20
	if err := overResident(limit, base+64<<20); err != nil {
		t.Fatalf("tripped with nothing held: %v", err)
	}
	var ctx context.Context = context.Background()
	stop := func() {}
	if !raceEnabled {
		ctx, stop = Watch(context.Background(), limit)
	}
	defer stop()
	m, err := syscall.Mmap(-1, 0, 128<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	for i := 0; i < len(m); i += os.Getpagesize() {
		m[i] = 1
	}
	err = overResident(limit, base)
	if !errors.Is(err, engine.ErrMemoryLimit) || !strings.Contains(err.Error(), "the process held") {
		t.Fatalf("128 MiB held over a 64 MiB limit: %v", err)
	}
	if raceEnabled {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the watch did not trip with %d MiB resident", RSS()>>20)
	}
	if err := context.Cause(ctx); !errors.Is(err, engine.ErrMemoryLimit) || !strings.Contains(err.Error(), "the process held") {
		t.Fatalf("cause: %v", err)
	}
}
