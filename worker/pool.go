package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/heapfloor"
	"github.com/modrun/modrun/internal/memlimit"
	"github.com/modrun/modrun/internal/runlog"
	"github.com/modrun/modrun/internal/tracing"
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

// closeGrace is how long Close lets a worker exit on its own (flushing
// what it buffers, such as trace spans) before it is killed.
const closeGrace = 2 * time.Second

// stop ends the worker as Close does: its input closes, so that it exits
// cleanly, and it is killed if it has not within grace. Calls still on it
// fail with ErrClosed.
func (w *proc) stop(grace time.Duration) {
	w.mu.Lock()
	if w.why == "" {
		w.why, w.whyErr = "closed", fmt.Errorf("worker pool %w", engine.ErrClosed)
	}
	w.mu.Unlock()
	w.c.c.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-w.gone:
	case <-t.C:
		w.cmd.Process.Kill()
	}
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

// proc is one worker process.
type proc struct {
	p    *Pool
	s    *slot
	cmd  *exec.Cmd
	c    *conn
	ids  atomic.Uint64
	gone chan struct{} // closed when the process has exited and calls failed

	loadMu   sync.Mutex // orders a load before the calls that need it
	mu       sync.Mutex
	loaded   map[uint64]bool
	appRefs  map[string]int // apps of the instances loaded, counted: the only ones its store operations may name
	calls    map[uint64]*pending
	leads    map[uint64]engine.FlightJoin // flights this worker leads, by join ID
	locks    map[uint64]func()            // store locks it holds, by the request that took each
	unlocked map[uint64]bool              // released before their Lock returned
	answered bool                         // it answered a call: it was healthy
	why      string                       // why it died: memory, deadline, crash
	whyErr   error
	isDead   bool
	loading  map[uint64]chan error
}

// pending is a call sent to a worker.
type pending struct {
	reply   chan *message
	started bool
	target  string
}

func (p *Pool) start(s *slot) (*proc, error) {
	var cmd *exec.Cmd
	if p.opts.Command != nil {
		cmd = p.opts.Command()
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("starting a worker: %w", err)
		}
		cmd = exec.Command(exe)
		cmd.Env = os.Environ()
	}
	level := slog.LevelError + 1
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if p.log.Enabled(context.Background(), l) {
			level = l
			break
		}
	}
	cmd.Env = append(cmd.Env, EnvWorker+"=1", EnvMaxMemory+"="+strconv.FormatUint(p.opts.MaxMemory, 10), EnvLogLevel+"="+strconv.Itoa(int(level)),
		// The worker keeps the parent's heap floor (see HeapFloor):
		// it runs the same short-lived JS machinery the floor is for.
		EnvHeapFloor+"="+strconv.FormatUint(heapfloor.Current(), 10))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr // a Go panic of the worker: for the operator
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a worker: %w", err)
	}
	w := &proc{p: p, s: s, cmd: cmd, c: newConn(stdout, stdin, stdin), gone: make(chan struct{}),
		loaded: map[uint64]bool{}, appRefs: map[string]int{}, calls: map[uint64]*pending{}, leads: map[uint64]engine.FlightJoin{}, loading: map[uint64]chan error{},
		locks: map[uint64]func(){}, unlocked: map[uint64]bool{}}
	go w.read()
	return w, nil
}

func (w *proc) dead() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.isDead
}

// kill ends the process for reason; the calls on it fail with err (or,
// for the call that overran, the deadline error).
func (w *proc) kill(reason string, err error) {
	w.mu.Lock()
	if w.why == "" {
		w.why, w.whyErr = reason, err
	}
	w.mu.Unlock()
	w.cmd.Process.Kill()
}

// read answers the worker until its pipe closes, then fails what was on
// it and waits for the process.
func (w *proc) read() {
	for {
		m, err := w.c.recv()
		if err != nil {
			break
		}
		w.handle(m)
	}
	w.cmd.Wait()
	w.mu.Lock()
	w.isDead = true
	why, whyErr, answered := w.why, w.whyErr, w.answered
	if why == "" {
		why, whyErr = "crash", fmt.Errorf("the worker process exited (%s)", w.cmd.ProcessState)
	}
	calls := w.calls
	w.calls = map[uint64]*pending{}
	leads := w.leads
	w.leads = map[uint64]engine.FlightJoin{}
	loading := w.loading
	w.loading = map[uint64]chan error{}
	locks := w.locks
	w.locks = map[uint64]func(){}
	w.mu.Unlock()
	for _, unlock := range locks {
		unlock() // its holder is gone; the fence keeps its writes out anyway
	}
	started := 0
	for _, c := range calls {
		if c.started {
			started++
		}
	}
	for _, c := range calls {
		err := whyErr
		if why == "memory" && started > 1 {
			// Which of them allocated it is not known: none is told it
			// was the one.
			err = fmt.Errorf("%w: another run on this worker exceeded its memory limit, or this one did (%s; %d runs were on it)",
				errWorkerStopped, memlimit.Format(w.p.opts.MaxMemory), started)
		}
		c.reply <- &message{Op: "dead", Msg: why, Err: toWire(err, func(s string) string { return s })}
	}
	for _, j := range leads {
		j.Finish(nil, fmt.Errorf("singleFlight: the worker leading it stopped: %w", whyErr))
	}
	for _, ch := range loading {
		ch <- whyErr
	}
	if !w.p.isClosed() {
		w.p.log.Warn("worker stopped", "worker", w.s.n, "reason", why, "error", whyErr)
		w.s.died(why, answered)
	}
	close(w.gone)
}

func (w *proc) handle(m *message) {
	switch m.Op {
	case opLog:
		attrs := make([]any, 0, 2*len(m.Attrs)+2)
		for k, v := range m.Attrs {
			attrs = append(attrs, k, v)
		}
		attrs = append(attrs, "worker", w.s.n)
		w.p.log.Log(context.Background(), slog.Level(m.Level), m.Msg, attrs...)
	case opDying:
		w.mu.Lock()
		if m.Err != nil && m.Err.Kind == "deadline" {
			w.why, w.whyErr = "deadline", fmt.Errorf("%w: its worker was stopped, as another run on it overran its deadline", errWorkerStopped)
		} else {
			w.why, w.whyErr = "memory", fmt.Errorf("%w (%s)", engine.ErrMemoryLimit, memlimit.Format(w.p.opts.MaxMemory))
		}
		w.mu.Unlock()
	case opStarted:
		w.mu.Lock()
		for _, id := range m.IDs {
			if c := w.calls[id]; c != nil {
				c.started = true
			}
		}
		w.mu.Unlock()
	case opCall:
		w.mu.Lock()
		c := w.calls[m.Re]
		delete(w.calls, m.Re)
		w.answered = true
		w.mu.Unlock()
		if c != nil {
			c.reply <- m
		}
	case opStore:
		go w.store(m)
	case opQuery:
		w.p.mu.Lock()
		o := w.p.obs[m.Inst]
		w.p.mu.Unlock()
		if o != nil {
			o.Query(m.Key, m.Level)
		}
	case opToken:
		w.p.mu.Lock()
		o := w.p.obs[m.Inst]
		w.p.mu.Unlock()
		if to, ok := o.(interface {
			TokenRequest(cred, grant, outcome string)
		}); ok {
			to.TokenRequest(m.Key, m.Target, m.Msg)
		}
	case opFlightJoin:
		j, leader := w.p.opts.Flights.Join(m.Key)
		w.c.send(&message{Re: m.ID, OK: leader})
		if leader {
			w.mu.Lock()
			w.leads[m.Inst] = j
			w.mu.Unlock()
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), w.p.opts.Timeout)
			defer cancel()
			val, err := j.Wait(ctx)
			w.c.send(&message{Op: opFlightResult, ID: m.Inst, Result: val, Err: toWire(err, func(s string) string { return s })})
		}()
	case opFlightFinish:
		w.mu.Lock()
		j := w.leads[m.Inst]
		delete(w.leads, m.Inst)
		w.mu.Unlock()
		if j != nil {
			j.Finish(m.Result, fromWire(m.Err))
		}
	default:
		if m.Re != 0 { // a load's answer
			w.mu.Lock()
			ch := w.loading[m.Re]
			delete(w.loading, m.Re)
			w.mu.Unlock()
			if ch != nil {
				ch <- fromWire(m.Err)
			}
		}
	}
}

// store runs a worker's store operation on the pool's store and answers
// once it is done (a write: once it is durable).
func (w *proc) store(m *message) {
	// A worker is untrusted (DESIGN §17): it may touch only the apps of
	// the instances it holds (and the flights' results). One that names
	// another has broken the protocol and is stopped.
	if m.Store != "unlock" && m.App != engine.FlightApp {
		w.mu.Lock()
		ok := w.appRefs[m.App] > 0
		w.mu.Unlock()
		if !ok {
			w.p.log.Error("a worker named an app none of its instances has; stopping it", "worker", w.s.n)
			w.kill("protocol", fmt.Errorf("%w: the worker broke the protocol (a store operation on another app)", errWorkerStopped))
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.p.opts.Timeout)
	defer cancel()
	st := w.p.opts.Store
	r := &message{Re: m.ID}
	var err error
	switch m.Store {
	case "get":
		r.Value, err = st.Get(ctx, m.App, m.Key)
	case "set":
		err = st.Set(ctx, m.App, m.Key, m.Value)
	case "delete":
		err = st.Delete(ctx, m.App, m.Key)
	case "list":
		r.Values, err = st.List(ctx, m.App)
	case "clear":
		err = st.Clear(ctx, m.App)
	case "cas":
		r.OK, err = st.CompareAndSwap(ctx, m.App, m.Key, m.Old, m.Value)
	case "lock":
		err = w.lock(ctx, m)
	case "unlock":
		w.mu.Lock()
		unlock := w.locks[m.Inst]
		delete(w.locks, m.Inst)
		if unlock == nil {
			w.unlocked[m.Inst] = true // the lock is still being taken
		}
		w.mu.Unlock()
		if unlock != nil {
			unlock()
		}
	default:
		err = fmt.Errorf("unknown store operation %q", m.Store)
	}
	r.Err = toWire(err, func(s string) string { return s })
	w.c.send(r)
}

// lock takes the pool store's lock for a worker (engine.Locker; a store
// without one needs no lock), held until the worker's unlock or its death.
func (w *proc) lock(ctx context.Context, m *message) error {
	l, ok := w.p.opts.Store.(engine.Locker)
	if !ok {
		return nil
	}
	unlock, err := l.Lock(ctx, m.App, m.Key)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.unlocked[m.ID] || w.isDead {
		delete(w.unlocked, m.ID)
		w.mu.Unlock()
		unlock()
		return nil
	}
	w.locks[m.ID] = unlock
	w.mu.Unlock()
	return nil
}

// load sends instance id's package to the worker once.
func (w *proc) load(id uint64, in *instance) error {
	// Held until the load frame is written: a call for the instance sent
	// by another goroutine must not overtake it on the pipe.
	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	w.mu.Lock()
	if w.loaded[id] {
		w.mu.Unlock()
		return nil
	}
	ch := make(chan error, 1)
	mid := w.ids.Add(1)
	w.loading[mid] = ch
	w.mu.Unlock()
	_, locks := w.p.opts.Store.(engine.Locker)
	var ttl time.Duration
	if l, ok := w.p.opts.Store.(engine.Leased); ok {
		ttl = l.LockTTL()
	}
	if err := w.c.send(&message{ID: mid, Op: opLoad, Inst: id, Files: in.pkg.Files, App: in.app, Inputs: in.inputs, Locks: locks, LockTTL: ttl.Milliseconds()}); err != nil {
		return err
	}
	w.mu.Lock()
	w.loaded[id] = true
	w.appRefs[in.app]++
	w.mu.Unlock()
	// Not waited for: calls sent after it run after it. Its error comes
	// back to the next call's waiter.
	go func() {
		if err := <-ch; err != nil {
			w.p.log.Error("a worker could not load a package", "package", in.pkg.Ref(), "error", err)
		}
	}()
	return nil
}

// NewInstance returns an instance of pkg for app with inputs (resolved
// by the caller) whose calls run on the pool's workers; obs (nil: none)
// is told of its queries. It does no I/O.
func (p *Pool) NewInstance(pkg *engine.Package, app string, inputs map[string]any, obs engine.Observer) engine.Instance {
	if app == "" {
		app = pkg.Manifest.Name
	}
	in := &instance{p: p, id: p.ids.Add(1), pkg: pkg, app: app, inputs: inputs}
	if obs != nil {
		p.mu.Lock()
		p.obs[in.id] = obs
		p.mu.Unlock()
	}
	return in
}

// instance is an engine.Instance on workers.
type instance struct {
	p      *Pool
	id     uint64
	pkg    *engine.Package
	app    string
	inputs map[string]any
}

var _ engine.Instance = (*instance)(nil)

// Call runs target on a worker. A call its worker had not started when
// the worker died moves to another; one it had started fails.
func (in *instance) Call(ctx context.Context, target string, args ...json.RawMessage) (json.RawMessage, error) {
	limit := engine.CallLimit(ctx, in.p.opts.Timeout)
	ctx, cancel := context.WithTimeoutCause(ctx, limit, engine.ErrDeadline)
	defer cancel()
	for attempt := 0; ; attempt++ {
		out, err, retry := in.try(ctx, target, args, attempt, engine.RoundLimit(limit))
		if !retry {
			return out, err
		}
		if attempt >= len(in.p.slots) {
			// Every worker it went to stopped (or was busy) before
			// starting it: it did not run, and says so — never a
			// success without a result.
			return nil, fmt.Errorf("%s: %w: %d workers in a row stopped before starting it", target, engine.ErrUnavailable, attempt+1)
		}
	}
}

// try makes one attempt; retry is true if the worker died before it
// started the call. The first attempt goes to the instance's home worker,
// each retry to the next one. One home, not calls dealt round the
// workers, because an instance on a worker has its own loop and its own
// onLoad: on one loop its I/O-bound calls batch, as in-process (bench
// row 9), and instances of other packages and apps spread over the
// workers by id.
func (in *instance) try(ctx context.Context, target string, args []json.RawMessage, attempt int, limit time.Duration) (json.RawMessage, error, bool) {
	s := in.p.slotFor(in.id, attempt)
	w, err := s.get(ctx)
	if err != nil {
		return nil, in.callError(limit, target, err), false
	}
	if err := w.load(in.id, in); err != nil {
		w.broken(ctx, err)
		return nil, nil, true
	}
	deadline, _ := ctx.Deadline()
	if ctx.Err() != nil {
		// Its deadline passed while it waited for a worker: it is not
		// sent, so no worker is ever stopped for it.
		return nil, in.callError(limit, target, context.Cause(ctx)), false
	}
	id := w.ids.Add(1)
	c := &pending{reply: make(chan *message, 1), target: target}
	w.mu.Lock()
	if w.isDead {
		w.mu.Unlock()
		return nil, nil, true
	}
	w.calls[id] = c
	w.mu.Unlock()
	forget := func() {
		w.mu.Lock()
		delete(w.calls, id)
		w.mu.Unlock()
	}
	// The last worker a call can go to runs it even if its copy of the
	// instance is busy; the others hand it on.
	last := attempt >= len(in.p.slots)-1
	if err := w.c.send(&message{ID: id, Op: opCall, Inst: in.id, Target: target, Args: args, Timeout: max(time.Until(deadline).Milliseconds(), 1), Deadline: deadline.UnixMilli(), Queue: last,
		Trace: tracing.TraceParent(ctx), Run: runlog.ID(ctx)}); err != nil {
		forget()
		w.broken(ctx, err)
		return nil, nil, true
	}
	// The worker has the deadline; past it plus the grace, a worker that
	// started the call is stuck (a native call, an allocation) and is
	// killed. One that never started it is busy, not stuck: the call
	// fails, the worker stays.
	kill := time.NewTimer(time.Until(deadline) + in.p.opts.Grace)
	defer kill.Stop()
	for {
		select {
		case m := <-c.reply:
			if m.Op == "dead" {
				w.mu.Lock()
				started := c.started
				w.mu.Unlock()
				if !started {
					return nil, nil, true
				}
				if m.Msg == "deadline" {
					return nil, fmt.Errorf("%s: %w: its worker was stopped, as another run on it overran its deadline", target, errWorkerStopped), false
				}
				return nil, fmt.Errorf("%s: %w", target, fromWire(m.Err)), false
			}
			if m.Err != nil && m.Err.Kind == kindBusy {
				return nil, nil, true // not started: the next worker takes it
			}
			return m.Result, fromWire(m.Err), false
		case <-kill.C:
			w.mu.Lock()
			started := c.started
			delete(w.calls, id)
			w.mu.Unlock()
			if !started {
				return nil, fmt.Errorf("%s: %w (%s; its worker was busy and never started it)", target, engine.ErrDeadline, limit), false
			}
			w.kill("deadline", fmt.Errorf("run exceeded its deadline"))
			return nil, fmt.Errorf("%s: %w (%s; its worker did not stop and was killed)", target, engine.ErrDeadline, limit), false
		case <-ctx.Done():
			// The worker ends the call itself at its deadline; the caller
			// gives it the grace (kill) unless it was cancelled outright.
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				ctx = context.WithoutCancel(ctx)
				continue
			}
			forget()
			return nil, fmt.Errorf("%s: %w", target, context.Cause(ctx)), false
		}
	}
}

// callError is the error of a call that no worker took: a deadline that
// passed while it waited says so with the call's own limit.
func (in *instance) callError(limit time.Duration, target string, err error) error {
	if errors.Is(err, engine.ErrDeadline) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w (%s; waiting for a worker)", target, engine.ErrDeadline, limit)
	}
	return fmt.Errorf("%s: %w", target, err)
}

// kindBusy is the error kind of a call a worker handed back unstarted, as
// its instance's loop there is held by a long job.
const kindBusy = "busy"

// errWorkerStopped marks runs that failed because their worker was killed
// for another run.
var errWorkerStopped = errors.New("worker stopped")

// Redact implements engine.Instance: the worker redacted its answers.
func (in *instance) Redact(s string) string { return s }

// Close implements engine.Instance: every worker that loaded the
// instance releases it (its runtime, module variables and session
// values). The pool's workers stay.
func (in *instance) Close() error {
	in.p.mu.Lock()
	delete(in.p.obs, in.id)
	in.p.mu.Unlock()
	for _, s := range in.p.slots {
		s.mu.Lock()
		w := s.w
		s.mu.Unlock()
		if w != nil {
			w.unload(in.id, in.app)
		}
	}
	return nil
}

// broken is told that writing to the worker failed (its pipe is closed:
// it died, and its reader has not seen it yet). It makes sure the worker
// is gone and waits, within ctx, until its slot knows, so that the call's
// next attempt gets a new worker instead of the same dead one.
func (w *proc) broken(ctx context.Context, err error) {
	w.kill("crash", fmt.Errorf("the worker's pipe broke: %w", err))
	select {
	case <-w.gone:
	case <-ctx.Done():
	}
}

// unload tells the worker to release instance id (of app), if it loaded
// it.
func (w *proc) unload(id uint64, app string) {
	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	w.mu.Lock()
	loaded := w.loaded[id] && !w.isDead
	if w.loaded[id] {
		if w.appRefs[app]--; w.appRefs[app] <= 0 {
			delete(w.appRefs, app)
		}
	}
	delete(w.loaded, id)
	w.mu.Unlock()
	if loaded {
		w.c.send(&message{Op: opUnload, Inst: id})
	}
}

var _ io.Closer = (*Pool)(nil)
