package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/memlimit"
	"github.com/modrun/modrun/internal/runlog"
	"github.com/modrun/modrun/internal/tracing"
)

// EnvWorker marks a process started as a worker.
const EnvWorker = "MODRUN_WORKER"

// EnvMaxMemory is a worker's memory limit in bytes; EnvLogLevel the
// lowest level it sends to the parent (slog's numbers: -4 debug, 0 info).
// EnvHeapFloor the parent's GC heap floor in bytes (0: none).
const (
	EnvMaxMemory = "MODRUN_WORKER_MAX_MEMORY"
	EnvLogLevel  = "MODRUN_WORKER_LOG_LEVEL"
	EnvHeapFloor = "MODRUN_WORKER_HEAP_FLOOR"
)

// HeapFloor is the heap floor a worker keeps: its parent's, never more
// than half its memory limit (maxMemory, 0: none), so that the garbage
// the floor lets pile up never brings a worker near its limit.
func HeapFloor(parent, maxMemory uint64) uint64 {
	if maxMemory > 0 {
		return min(parent, maxMemory/2)
	}
	return parent
}

// Host makes instances in a worker: modrun's engine is one.
type Host interface {
	// NewInstance compiles files (cached by content) and makes an instance
	// for app with inputs (already resolved), the store, the flights and
	// the logger given.
	NewInstance(files map[string][]byte, app string, inputs map[string]any, st engine.Store, flights engine.Flights, obs engine.Observer, log *slog.Logger) (engine.Instance, error)
}

// Serve is a worker's main loop: it answers the parent on r and w until r
// ends. maxMemory (0: none) is the heap past which the worker says so and
// exits with status 3.
// Records under level are not sent.
func Serve(r io.Reader, w io.Writer, host Host, maxMemory uint64, level slog.Level) error {
	s := &workerSide{c: newConn(pollable(r), pollable(w), nil), host: host, insts: map[uint64]engine.Instance{},
		pending: map[uint64]chan *message{}, follow: map[uint64]chan *message{}}
	s.log = slog.New(&logHandler{s: s, level: level})
	b, err := openBoard()
	if err != nil {
		// Calls are announced by frame instead: slower, as safe.
		s.log.Warn("a worker without its started board", "error", err)
	}
	s.board = b
	defer s.c.flushPosted() // what the last calls posted, before the worker exits
	ctx, stop := memlimit.Watch(context.Background(), maxMemory)
	defer stop()
	go func() {
		<-ctx.Done()
		if errors.Is(context.Cause(ctx), engine.ErrMemoryLimit) {
			s.c.send(&message{Op: opDying, Answer: errorAnswer(context.Cause(ctx), plain)})
			os.Exit(3)
		}
	}()
	var calls []*message // read, not yet started
	for {
		m, err := s.c.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if !m.wellFormed() {
			return fmt.Errorf("the parent sent a %q frame without its payload", m.Op)
		}
		switch {
		case m.Re != 0:
			s.mu.Lock()
			ch := s.pending[m.Re]
			delete(s.pending, m.Re)
			s.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case m.Op == opFlightResult:
			s.mu.Lock()
			ch := s.follow[m.ID]
			delete(s.follow, m.ID)
			s.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case m.Op == opLoad:
			// In order: the calls that follow need the instance.
			// The instance sees a Locker only where the parent's store has
			// one: a local store needs no lock, nor its round trips.
			var st engine.Store = &remoteStore{s: s}
			if m.Load.Locks {
				st = &remoteLocker{remoteStore{s: s}, time.Duration(m.Load.LockTTL) * time.Millisecond}
			}
			inst, err := host.NewInstance(m.Load.Files, m.Load.App, m.Load.Inputs, st, &remoteFlights{s: s}, &observer{s: s, inst: m.Inst}, s.log)
			if err == nil {
				s.mu.Lock()
				s.insts[m.Inst] = inst
				s.mu.Unlock()
			}
			s.c.send(&message{Re: m.ID, Answer: errorAnswer(err, plain)})
		case m.Op == opUnload:
			// After the calls read before it: they run first.
			if len(calls) > 0 {
				s.start(calls)
				calls = calls[:0]
			}
			s.mu.Lock()
			inst := s.insts[m.Inst]
			delete(s.insts, m.Inst)
			s.mu.Unlock()
			if inst != nil {
				go inst.Close() // calls in progress on it end as closed
				s.released(1)
			}
		case m.Op == opCall: // a call (its answers go the other way)
			calls = append(calls, m)
		}
		// Calls that arrived together start together, each marked begun
		// before any of them runs (so that the parent never moves a call
		// that may have begun; calls without a board slot share one
		// "started" frame), once reading on would wait, or at maxStarted
		// calls, so that a steady stream of frames holds none back.
		if len(calls) > 0 && (!s.c.buffered() || len(calls) == maxStarted) {
			s.start(calls)
			calls = calls[:0]
		}
	}
}

// released counts n instances released; once many have been since the
// last time (and a while has passed), the memory they held goes back to
// the system, so that a worker's resident set follows the instances it
// holds, not the most it ever held.
func (s *workerSide) released(n int) {
	s.mu.Lock()
	s.unloaded += n
	due := s.unloaded >= freeAfterUnloads && time.Since(s.freed) > freeEvery
	if due {
		s.unloaded, s.freed = 0, time.Now()
	}
	s.mu.Unlock()
	if due {
		go func() {
			time.Sleep(freeEvery / 10) // let the Close calls finish
			debug.FreeOSMemory()
		}()
	}
}

// Releasing memory to the system after freeAfterUnloads instances are
// released, at most once per freeEvery.
const (
	freeAfterUnloads = 100
	freeEvery        = time.Second
)

// maxStarted is the most calls one "started" frame announces.
const maxStarted = 64

// BusyAfter is how long a job may hold an instance's loop before the
// instance's further calls are handed back to the parent, to run on
// another worker, instead of waiting behind it: a runaway run occupies its
// worker's copy of the instance, not its package.
const BusyAfter = 250 * time.Millisecond

// start marks calls begun on the started board (or, for those without a
// slot, announces them to the parent in one frame), then runs them; calls
// whose instance's loop is held by a long job go back unstarted ("busy").
func (s *workerSide) start(calls []*message) {
	ids := make([]uint64, 0, len(calls))
	run := calls[:0:0]
	for _, m := range calls {
		if !m.Call.Queue && s.busy(m.Inst) {
			s.c.send(&message{Op: opCall, Re: m.ID, Answer: &answer{Err: &wireError{Msg: m.Call.Target + ": its instance is busy on this worker", Kind: kindBusy}}})
			continue
		}
		if !s.board.mark(m.Call.Slot, m.ID) {
			ids = append(ids, m.ID)
		}
		run = append(run, m)
	}
	if len(ids) > 0 {
		s.c.send(&message{Op: opStarted, Started: ids})
	}
	for _, m := range run {
		go s.call(m)
	}
}

// busy reports whether instance id's loop has been held by one job for
// longer than BusyAfter.
func (s *workerSide) busy(id uint64) bool {
	s.mu.Lock()
	inst := s.insts[id]
	s.mu.Unlock()
	b, ok := inst.(interface{ Busy() time.Duration })
	return ok && b.Busy() > BusyAfter
}

type workerSide struct {
	c     *conn
	host  Host
	log   *slog.Logger
	ids   atomic.Uint64
	board *board // the started board; nil: calls are announced by frame

	mu      sync.Mutex
	insts   map[uint64]engine.Instance
	pending map[uint64]chan *message // RPCs to the parent, by ID
	follow  map[uint64]chan *message // flight followers, by join ID

	unloaded int       // instances released since freed
	freed    time.Time // when memory last went back to the system

	running atomic.Int64 // calls in progress
	idle    *time.Timer  // gives memory back once no call has run for idleAfter
}

// idleAfter is how long a worker runs no call before the memory its
// runs left (garbage the heap floor let pile up, free pages) goes back to
// the system: an idle worker's resident set is what its instances hold,
// not the most a burst of runs needed (issue 33: 59 MB idle after 20,000
// runs, 21 MB fresh).
const idleAfter = 2 * time.Second

// ended counts a call's end; the last one running arms the idle timer.
func (s *workerSide) ended() {
	if s.running.Add(-1) != 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle == nil {
		s.idle = time.AfterFunc(idleAfter, s.giveBack)
		return
	}
	s.idle.Reset(idleAfter)
}

// giveBack returns the memory the worker's runs left to the system, if
// no call runs, and says at debug level how much went back.
func (s *workerSide) giveBack() {
	if s.running.Load() != 0 {
		return
	}
	released := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(released)
	before := released[0].Value.Uint64()
	debug.FreeOSMemory()
	metrics.Read(released)
	var mb uint64
	if after := released[0].Value.Uint64(); after > before {
		mb = (after - before) >> 20
	}
	s.log.Debug("idle: memory given back to the system", "released_mb", mb)
}

func (s *workerSide) call(m *message) {
	s.running.Add(1)
	defer s.ended()
	c := m.Call
	s.mu.Lock()
	inst := s.insts[m.Inst]
	s.mu.Unlock()
	if inst == nil {
		s.c.send(&message{Op: opCall, Re: m.ID, Answer: &answer{Err: &wireError{Msg: c.Target + ": the worker has no such instance"}}})
		return
	}
	if c.Deadline > 0 && time.Now().UnixMilli() >= c.Deadline {
		// Its caller has given up on it: running it now would do its
		// work (writes, requests) behind the caller's back.
		s.c.send(&message{Op: opCall, Re: m.ID, Answer: errorAnswer(fmt.Errorf("%s: %w (it reached its worker too late)", c.Target, engine.ErrDeadline), plain)})
		return
	}
	ctx := runlog.WithID(tracing.WithTraceParent(context.Background(), c.Trace), c.Run)
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, time.Duration(c.Timeout)*time.Millisecond, engine.ErrDeadline)
		defer cancel()
	}
	out, err := inst.Call(ctx, c.Target, c.Args...)
	if errors.Is(err, engine.ErrDeadline) {
		go s.unstick(inst)
	}
	a := errorAnswer(err, inst.Redact)
	if err == nil {
		a.Result = json.RawMessage(inst.Redact(string(out)))
	}
	s.c.sendTogether(&message{Op: opCall, Re: m.ID, Answer: a})
}

// stuckGrace is how long after a deadline a native call may still run
// before the worker gives up and exits to be replaced.
const stuckGrace = time.Second

// unstick ends the worker if inst's loop is still stuck in a native call
// a while after a call's deadline: the core it burns is the worker's, and
// the parent replaces the worker.
func (s *workerSide) unstick(inst engine.Instance) {
	st, ok := inst.(interface{ Stuck() bool })
	if !ok {
		return
	}
	time.Sleep(stuckGrace)
	if st.Stuck() {
		s.c.send(&message{Op: opDying, Answer: &answer{Err: &wireError{Msg: "a run's native call (a RegExp, a huge string) went on past its deadline", Kind: "deadline"}}})
		os.Exit(4)
	}
}

// rpc sends m to the parent and waits for its answer. m.ID, if unset, is
// a new one.
func (s *workerSide) rpc(ctx context.Context, m *message) (*answer, error) {
	if m.ID == 0 {
		m.ID = s.ids.Add(1)
	}
	ch := make(chan *message, 1)
	s.mu.Lock()
	s.pending[m.ID] = ch
	s.mu.Unlock()
	if err := s.c.send(m); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		a := r.answered()
		return a, fromWire(a.Err)
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, m.ID)
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}
