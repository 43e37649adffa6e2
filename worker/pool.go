package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/memlimit"
)

// Defaults of Options.
const (
	DefaultMaxMemory = memlimit.DefaultLimit
	DefaultGrace     = 2 * time.Second
	DefaultTimeout   = 60 * time.Second
)

// MaxBackoff is the longest a slot waits before it starts a worker again
// after workers in a row died before answering a call.
const MaxBackoff = 5 * time.Second

// Options configure a Pool. Store is required.
type Options struct {
	// Command starts one worker; nil means this executable again with
	// MODRUN_WORKER=1 (its main must call modrun.WorkerMain first).
	Command func() *exec.Cmd
	// Size is the number of workers; zero means one per CPU.
	Size int
	// MaxMemory is each worker's heap limit in bytes; zero means
	// DefaultMaxMemory.
	MaxMemory uint64
	// Grace is how long past a call's deadline its worker may take to
	// answer before it is killed; zero means DefaultGrace.
	Grace time.Duration
	// Timeout is a call's deadline when its context has none sooner; zero
	// means DefaultTimeout.
	Timeout time.Duration
	// Store serves the workers' store operations.
	Store engine.Store
	// Flights serves their singleFlight calls; nil means one of the pool's.
	Flights engine.Flights
	// Logger receives the workers' logs and the pool's own; nil discards.
	Logger *slog.Logger
	// OnRestart is told each time a worker is replaced, and why: memory,
	// deadline, crash.
	OnRestart func(reason string)
}

// Pool runs instances on worker processes. See the package doc.
type Pool struct {
	opts  Options
	log   *slog.Logger
	ids   atomic.Uint64 // of instances; an instance's home worker is id mod Size
	slots []*slot

	mu     sync.Mutex
	closed bool
	obs    map[uint64]engine.Observer // of instances, by id
}

// slot holds one worker at a time: a dead one is replaced in it.
type slot struct {
	p        *Pool
	n        int
	mu       sync.Mutex
	w        *proc
	starting chan struct{} // while a start is under way; closed when it is over
	// failures counts the workers in a row that died before answering a
	// call: a crash loop (a package whose every run kills its worker).
	// A worker that answered once resets it: one killed from outside
	// after serving is replaced at once.
	failures  int
	notBefore time.Time // the next start waits until then (the backoff)
}

// NewPool returns a pool; it starts no process.
func NewPool(opts Options) *Pool {
	if opts.Size <= 0 {
		opts.Size = runtime.NumCPU()
	}
	if opts.MaxMemory == 0 {
		opts.MaxMemory = DefaultMaxMemory
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Flights == nil {
		opts.Flights = &engine.Flight{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{opts: opts, log: log, obs: map[uint64]engine.Observer{}}
	for i := range opts.Size {
		p.slots = append(p.slots, &slot{p: p, n: i})
	}
	return p
}

// Warm starts, in the background, the worker of the next instance, so
// that its start (an exec and a Go runtime's init, tens of milliseconds
// on a busy machine) overlaps what the caller does before that call,
// such as loading a package. A worker that fails to start is reported by
// the call, which starts it again.
func (p *Pool) Warm() {
	go p.slotFor(p.ids.Load()+1, 0).get(context.Background())
}

// slotFor is the worker slot of instance id's attempt at a call: its home
// (instances take the workers in turn) first, then the next one.
func (p *Pool) slotFor(id uint64, attempt int) *slot {
	return p.slots[(id+uint64(attempt))%uint64(len(p.slots))]
}

// Close stops every worker; calls in progress fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range p.slots {
		s.mu.Lock()
		w := s.w
		s.w = nil
		s.mu.Unlock()
		if w != nil {
			wg.Go(func() { w.stop(closeGrace) })
		}
	}
	wg.Wait()
	return nil
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// get returns the slot's live worker, starting one once the backoff of
// a crash loop allows. A call whose deadline comes before that start does
// not wait for it: it fails at once with ErrUnavailable, so that the
// backoff never outlasts the calls waiting on it.
func (s *slot) get(ctx context.Context) (*proc, error) {
	for {
		s.mu.Lock()
		if s.w != nil && !s.w.dead() {
			w := s.w
			s.mu.Unlock()
			return w, nil
		}
		if s.p.isClosed() {
			s.mu.Unlock()
			return nil, fmt.Errorf("worker pool %w", engine.ErrClosed)
		}
		if ch := s.starting; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
		if wait := time.Until(s.notBefore); wait > 0 {
			failures := s.failures
			s.mu.Unlock()
			if d, ok := ctx.Deadline(); ok && d.Before(s.notBefore) {
				return nil, fmt.Errorf("%w: restarting after %d crashes (next start in %s)",
					engine.ErrUnavailable, failures, wait.Round(time.Millisecond))
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, context.Cause(ctx)
			}
		}
		ch := make(chan struct{})
		s.starting = ch
		s.mu.Unlock()
		w, err := s.p.start(s)
		s.mu.Lock()
		if err == nil {
			s.w = w
		}
		s.starting = nil
		close(ch)
		s.mu.Unlock()
		return w, err
	}
}

// died records a death and sets the next start's backoff. A worker that
// answered a call was healthy: its death (a kill from outside, a run
// that overran) costs no wait. Workers that die before answering
// anything are a crash loop: the first is replaced at once, then the
// wait doubles from 100 ms to MaxBackoff.
func (s *slot) died(reason string, answered bool) {
	s.mu.Lock()
	if answered {
		s.failures = 0
	} else {
		s.failures++
	}
	var backoff time.Duration
	if s.failures > 1 {
		backoff = min(100*time.Millisecond<<min(s.failures-2, 16), MaxBackoff)
	}
	s.notBefore = time.Now().Add(backoff)
	failures := s.failures
	s.mu.Unlock()
	if failures >= 3 {
		s.p.log.Warn("a worker keeps dying before it answers: restarting with a backoff (a package whose runs crash it?)",
			"worker", s.n, "reason", reason, "failures in a row", failures, "backoff", backoff)
	}
	if s.p.opts.OnRestart != nil && !s.p.isClosed() {
		s.p.opts.OnRestart(reason)
	}
}

var _ io.Closer = (*Pool)(nil)
