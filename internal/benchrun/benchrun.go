package benchrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/internal/progress"
)

// Options configure Run.
type Options struct {
	Runs        int // measured runs in total; zero means 1000
	Concurrency int // workers; zero means 1
	Warmup      int // unmeasured runs per worker first
	// Progress, if set, shows the runs done so far while they go on
	// (internal/progress: nothing for quick benchmarks).
	Progress io.Writer
}

// Result is what Run measured. Its JSON is runner bench --json's output.
type Result struct {
	Runs        int     `json:"runs"`
	Concurrency int     `json:"concurrency"`
	RunsPerSec  float64 `json:"runs_per_sec"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
}

// Run calls newWorker once per worker, then each worker's function until
// Runs calls have been made in all, and measures them.
func Run(ctx context.Context, opts Options, newWorker func(i int) (func(context.Context) error, error)) (Result, error) {
	if opts.Runs <= 0 {
		opts.Runs = 1000
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Concurrency > opts.Runs {
		opts.Concurrency = opts.Runs
	}
	workers := make([]func(context.Context) error, opts.Concurrency)
	for i := range workers {
		w, err := newWorker(i)
		if err != nil {
			return Result{}, err
		}
		workers[i] = w
	}
	var next atomic.Int64
	var began atomic.Int64 // when the measured runs began (UnixNano); 0: warming up
	if opts.Progress != nil {
		line := progress.Start(opts.Progress, func() string {
			t0 := began.Load()
			if t0 == 0 {
				return "bench: warming up"
			}
			done := min(next.Load(), int64(opts.Runs))
			return fmt.Sprintf("bench: %d of %d runs, %.0f runs/s so far", done, opts.Runs, float64(done)/time.Since(time.Unix(0, t0)).Seconds())
		})
		defer line.Stop()
	}
	for _, w := range workers {
		for range opts.Warmup {
			if err := w(ctx); err != nil {
				return Result{}, fmt.Errorf("warmup: %w", err)
			}
		}
	}
	lat := make([]time.Duration, opts.Runs)
	var errCount atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	began.Store(start.UnixNano())
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(opts.Runs) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := w(ctx); err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	r := Result{
		Runs:        opts.Runs,
		Concurrency: opts.Concurrency,
		RunsPerSec:  float64(opts.Runs) / elapsed.Seconds(),
		P50ms:       pct(0.50),
		P90ms:       pct(0.90),
		P99ms:       pct(0.99),
		Errors:      int(errCount.Load()),
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	return r, nil
}

// Print writes r as text, or as one JSON object if asJSON.
func (r Result) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	_, err := fmt.Fprintf(w, "runs %d  concurrency %d  %.0f runs/s  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  errors %d\n",
		r.Runs, r.Concurrency, r.RunsPerSec, r.P50ms, r.P90ms, r.P99ms, r.Errors)
	if err == nil && r.FirstError != "" {
		_, err = fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
	return err
}
