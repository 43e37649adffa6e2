package js

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/oauth2"
	"github.com/modrun/modrun/internal/redact"
	"github.com/modrun/modrun/internal/runlog"
)

// Defaults of an instance's limits.
const (
	DefaultTimeout      = 60 * time.Second
	DefaultMaxCallStack = 1024
)

// Options configure an instance. The zero value works.
type Options struct {
	// Store persists storeValue's values. Nil means none: persist=false
	// values work, and persisted writes fail with engine.ErrNoStore.
	Store engine.Store
	// App is the store namespace. Empty means the package's name.
	App string
	// Inputs are the package inputs, already resolved (see
	// engine.Package.ResolveInputs).
	Inputs map[string]any
	// Logger receives console.*, showAlert and diagnostics. Nil discards.
	Logger *slog.Logger
	// Timeout is a call's deadline when its context has none sooner. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// MaxCallStack limits JS call depth. Zero means DefaultMaxCallStack.
	MaxCallStack int
	// Flight deduplicates singleFlight calls. Share one between the
	// instances of an engine so that they share refreshes; nil means one
	// per instance.
	Flight engine.Flights
	// Redactor hides secrets in logs and errors. Nil means one holding the
	// package's secret inputs.
	Redactor *redact.Redactor
	// Observer is told of every query's outcome (metrics). Nil: none.
	Observer engine.Observer
	// Transport sends the OAuth2 token requests of oauth2: credentials.
	// Nil means a keep-alive transport shared by every instance.
	Transport http.RoundTripper
}

var _ engine.Instance = (*Instance)(nil)

// Instance is a package bound to an app, inputs and a store: one goja
// runtime and one event loop. Module variables live as long as the
// instance (or until a deadline forces the runtime to be rebuilt).
type Instance struct {
	pkg     *engine.Package
	opts    Options
	session *engine.Session
	loop    *engine.Loop
	log     *slog.Logger
	debug   bool // debug logging is on: build those records
	redact  *redact.Redactor
	flight  engine.Flights

	// Loop-only state.
	rt      *goja.Runtime
	gen     int // runtime generation: jobs of an older one are dropped
	vm      *vm
	runs    []*run // runs waiting on a promise; a slice: it is scanned after every job
	cur     *run   // the run the current job serves, nil for the instance's own
	loaded  bool   // onLoad has run on this runtime
	loading *run   // the onLoad chain in progress

	tokensOnce sync.Once
	oauth      *oauth2.Client

	// Shared with watchdog timers.
	mu          sync.Mutex
	calls       map[*run]struct{} // calls in progress, cancelled by Close
	inJob       bool              // a job is running
	trip        bool              // Interrupt was called during the current job
	jobDeadline time.Time         // when the current job must have returned
	jobStart    time.Time         // when the current job began
	closed      bool

	// watchdog interrupts the job running at its deadline; one timer,
	// re-armed for every job.
	watchdog *time.Timer

	// Worker goroutines for blocking work (HTTP, durable writes): kept
	// between uses, so each request does not pay for a new goroutine
	// growing its stack, and ended after workerIdle without work.
	work       chan func()
	quit       chan struct{}
	workerIdle time.Duration
	workers    atomic.Int32 // worker goroutines alive
}

// goWork runs f on an idle worker, or on a new one.
func (in *Instance) goWork(f func()) {
	select {
	case in.work <- f:
	default:
		go in.worker(f)
	}
}

// defaultWorkerIdle is how long a worker waits for more work before it
// exits: a burst of concurrent requests must not leave as many goroutines
// parked for the life of the instance. (Instance.workerIdle; tests
// shorten it.)
const defaultWorkerIdle = 30 * time.Second

func (in *Instance) worker(f func()) {
	in.workers.Add(1)
	defer in.workers.Add(-1)
	idle := time.NewTimer(in.workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(in.workerIdle)
		select {
		case f = <-in.work:
		case <-idle.C:
			return
		case <-in.quit:
			return
		}
	}
}

// NewInstance returns an instance of pkg. It compiles nothing (pkg is
// compiled) and does no I/O; the runtime is built on the first call, when
// the package's onLoad functions run.
func NewInstance(pkg *engine.Package, opts Options) *Instance {
	boundRegexps()
	if opts.App == "" {
		opts.App = pkg.Manifest.Name
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxCallStack <= 0 {
		opts.MaxCallStack = DefaultMaxCallStack
	}
	in := &Instance{
		pkg:     pkg,
		opts:    opts,
		session: engine.NewSession(opts.Store, opts.App),
		redact:  opts.Redactor,
		flight:  opts.Flight,
		work:    make(chan func()),
		quit:    make(chan struct{}),
		calls:   map[*run]struct{}{},

		workerIdle: defaultWorkerIdle,
	}
	if in.redact == nil {
		in.redact = redact.New()
		in.redact.Add(pkg.Secrets(opts.Inputs)...)
	}
	if in.flight == nil {
		in.flight = &engine.Flight{}
	}
	in.log = opts.Logger
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	// Records logged with a run's context name it (runlog): a server
	// shows each run's own lines.
	in.log = slog.New(runlog.Handler(redact.Handler(in.log.Handler(), in.redact))).With("package", pkg.Ref(), "app", opts.App)
	in.debug = in.log.Enabled(context.Background(), slog.LevelDebug)
	in.loop = engine.NewLoop(in.onPanic)
	in.watchdog = time.AfterFunc(time.Hour, in.interruptOverrun)
	in.watchdog.Stop()
	return in
}

// Session returns the instance's view of the store.
func (in *Instance) Session() *engine.Session { return in.session }

// run is one call in progress, or the instance's onLoad chain.
type run struct {
	ctx     context.Context
	target  string // the step running now
	args    []json.RawMessage
	steps   []string      // targets still to call after this one (onLoad)
	settled chan struct{} // closed by finish, once result is set
	result  result
	onDone  func(json.RawMessage, error) // instead of res, for internal runs
	waiters []*run                       // calls waiting for onLoad
	promise *goja.Promise                // the current step's promise, if it returned one
	// logged and stored count the bytes the run has written to the log
	// and to the store (loop-only), against MaxRunLog and MaxRunStore.
	logged, stored int
	// query is the request of a run whose target is a query module: its
	// JSON body is the result as sent, not as JS numbers (an id past 2^53
	// keeps its digits).
	query *queryCall
	done  bool
	// work takes blocking work (an HTTP request) of this run to its
	// driver goroutine, which would otherwise sit idle waiting: no hop to
	// another goroutine and back. Nil for runs without a caller.
	work chan func()

	gone     chan struct{}      // closed when the caller has left
	limit    time.Duration      // the deadline, as a duration from the call
	cancel   context.CancelFunc // of ctx; nil for internal runs
	mu       sync.Mutex         // guards ended, inflight and sends on work
	ended    bool               // the caller has left
	inflight int                // blocking work using ctx
	writes   sync.WaitGroup     // durable writes not yet on disk
}

// Per-run quotas (DESIGN §17): what one run may write to the log and to
// the store. Past MaxRunLog, its console lines are dropped (one line says
// so); past MaxRunStore, storeValue throws.
const (
	MaxRunLog   = 1 << 20
	MaxRunStore = 10 << 20
)

// logQuota counts n bytes of log for r and reports whether they may be
// written. r nil (the instance's own work) is not counted.
func (r *run) logQuota(n int, log *slog.Logger) bool {
	if r == nil {
		return true
	}
	if r.logged > MaxRunLog {
		return false
	}
	r.logged += n
	if r.logged > MaxRunLog {
		log.WarnContext(r.context(), "this run wrote more than its log quota; its further console lines are dropped", "target", r.target, "quota bytes", MaxRunLog)
		return false
	}
	return true
}

// context is r's context for its log lines: they name the run. r nil
// (the instance's own work) or an internal run has none.
func (r *run) context() context.Context {
	if r == nil || r.ctx == nil {
		return context.Background()
	}
	return r.ctx
}

// storeQuota counts n bytes written to the store by r, and fails past
// MaxRunStore.
func (r *run) storeQuota(n int) error {
	if r == nil {
		return nil
	}
	r.stored += n
	if r.stored > MaxRunStore {
		return fmt.Errorf("the run wrote more than %d MiB to the store, its quota", MaxRunStore>>20)
	}
	return nil
}

// queryBody is the JSON body of a query target's response, compacted.
func (r *run) queryBody() (json.RawMessage, bool) {
	q := r.query
	if q == nil || q.resp == nil || q.resp.Kind != engine.BodyJSON || len(q.resp.Body) == 0 || q.withMeta {
		return nil, false
	}
	var b bytes.Buffer
	if json.Compact(&b, q.resp.Body) != nil {
		return nil, false
	}
	return b.Bytes(), true
}

type result struct {
	val json.RawMessage
	err error
}

func (r *run) finish(val json.RawMessage, err error) {
	if r.done {
		return
	}
	r.done = true
	if r.onDone != nil {
		r.onDone(val, err)
		return
	}
	r.result = result{val, err}
	close(r.settled)
}

// Call runs target — "module.function" or a query module's name — with
// args (JSON values: positional arguments of a function, or the single
// params object of a query) and returns its resolved value as JSON
// (undefined is null).
//
// The run's JavaScript never runs on the calling goroutine: a driver
// goroutine posts it and does its blocking work, so Call returns by the
// deadline whatever the JS is doing, even inside a native call goja
// cannot interrupt (a runaway RegExp, a huge String.repeat), and however
// busy timers keep the loop.
func (in *Instance) Call(ctx context.Context, target string, args ...json.RawMessage) (json.RawMessage, error) {
	// The run's deadline: the instance's, or the caller's if sooner, whose
	// context then ends with ErrDeadline as the cause too.
	limit := in.opts.Timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < limit {
		limit = time.Until(d)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, limit, engine.ErrDeadline)
	r := &run{ctx: ctx, cancel: cancel, target: target, args: args, settled: make(chan struct{}),
		work: make(chan func(), 1), gone: make(chan struct{}), limit: limit}
	closedErr := func() error { return fmt.Errorf("%s: instance %w", target, engine.ErrClosed) }
	// Close cancels the calls in progress: their requests end at once,
	// and so do the calls, instead of at their deadlines.
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		cancel()
		return nil, closedErr()
	}
	in.calls[r] = struct{}{}
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		delete(in.calls, r)
		in.mu.Unlock()
	}()
	in.goWork(func() { in.drive(r) })
	select {
	case <-r.settled:
		res := r.result
		// Every storeValue the run made is durable before it returns.
		r.writes.Wait()
		r.end(false)
		return res.val, res.err
	case <-ctx.Done(): // the caller's, the deadline, or Close
		r.end(true)
		if in.isClosed() {
			return nil, closedErr()
		}
		// Queued behind a job that may never end: the loop drops r when
		// it gets there.
		in.loop.Post(func() { in.do(nil, func() { in.abandon(r) }) })
		return nil, in.deadlineError(r, ctx)
	}
}

// drive runs on a goroutine of its own for run r: it posts r's first job
// (running the loop if it is idle) and does r's blocking work — its
// requests — until r settles. It is back among the idle workers before
// the caller runs again, so that the next call reuses it, with the stack
// it has grown, instead of starting a goroutine. Work r started after
// the caller has gone goes to workers.
func (in *Instance) drive(r *run) {
	if err := in.loop.Post(func() { in.do(r, func() { in.start(r) }) }); err != nil {
		r.finish(nil, fmt.Errorf("%s: instance %w", r.target, engine.ErrClosed))
	}
	for {
		select {
		case f := <-r.work:
			f()
		case <-r.settled:
			// Usually the driver settles r itself, at the end of its
			// drain: the caller it woke runs once the driver is parked.
			// When timers keep the loop busy, the driver stays in Post,
			// and the caller returns all the same. (A settled run takes
			// no more work: spawn sends it to workers.)
			in.handOff(r)
			return
		case <-r.gone:
			in.handOff(r)
			return
		}
	}
}

// handOff gives work r's driver did not get to to workers: it must still
// run (its request is cancelled if r was abandoned) to end its hold on the
// loop.
func (in *Instance) handOff(r *run) {
	for {
		select {
		case f := <-r.work:
			in.goWork(f)
		default:
			return
		}
	}
}

// Stuck reports whether a job is still running after the watchdog
// interrupted it at its deadline: a native call goja cannot interrupt (a
// runaway RegExp, a huge repeat). The call has returned; the instance's
// loop is not free until the native call ends. A worker process in that
// state is replaced.
func (in *Instance) Stuck() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.inJob && in.trip
}

// Busy reports how long the job running on the instance's loop has run
// (0 when the loop is free): a sync loop or a long computation holds every
// other call of the instance until it ends or its deadline interrupts it.
// A worker sends calls that would wait behind one to another worker.
func (in *Instance) Busy() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.inJob {
		return 0
	}
	return time.Since(in.jobStart)
}

func (in *Instance) isClosed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.closed
}

// hold counts one piece of blocking work that uses r's context. It
// reports false once r has ended.
func (r *run) hold() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return false
	}
	r.inflight++
	return true
}

// unhold ends one piece of work; the last one after r ended cancels r's
// context.
func (r *run) unhold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
	if r.ended && r.inflight == 0 {
		r.cancel()
	}
}

// end is called when r's caller leaves. An abandoned run's context is
// cancelled now, cancelling its requests; a run that returned normally
// keeps its context until the work it started is done, since JS it
// started may still be running for another call (a shared promise) or on
// its own (a request not awaited).
func (r *run) end(abandon bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	close(r.gone)
	if abandon || r.inflight == 0 {
		r.cancel()
	}
}

// workContext is the context of blocking work started now for run r. If
// cancel is nil the context is r's, held: call r.unhold when the work is
// done; otherwise call cancel.
func (in *Instance) workContext(r *run) (ctx context.Context, cancel context.CancelFunc) {
	if r != nil && r.cancel != nil && r.hold() {
		return r.ctx, nil
	}
	return context.WithTimeoutCause(context.Background(), in.opts.Timeout, engine.ErrDeadline)
}

// spawn runs blocking work of run r: on r's driver if it is free, else on
// a worker. Work offered once r's caller has gone goes to a worker, so
// none is left in a channel no one reads.
func (in *Instance) spawn(r *run, f func()) {
	if r != nil && r.work != nil && !r.done {
		r.mu.Lock()
		sent := false
		if !r.ended {
			select {
			case r.work <- f:
				sent = true
			default:
			}
		}
		r.mu.Unlock()
		if sent {
			return
		}
	}
	in.goWork(f)
}

func (in *Instance) deadlineError(r *run, ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, engine.ErrDeadline) {
		return fmt.Errorf("%s: %w (%s)", r.target, engine.ErrDeadline, engine.RoundLimit(r.limit))
	}
	return fmt.Errorf("%s: %w", r.target, cause)
}

// abandon drops a run whose caller has gone (deadline or cancellation).
func (in *Instance) abandon(r *run) {
	in.unwait(r)
	r.finish(nil, in.deadlineError(r, r.ctx))
}

// start is the first job of a call: it builds the runtime if needed, waits
// for onLoad, then calls the target.
func (in *Instance) start(r *run) {
	if r.ctx.Err() != nil {
		r.finish(nil, in.deadlineError(r, r.ctx))
		return
	}
	if in.vm == nil {
		v, err := newVM(in)
		if err != nil {
			r.finish(nil, err)
			return
		}
		in.mu.Lock()
		in.rt = v.rt
		in.mu.Unlock()
		in.vm = v
	}
	if !in.loaded && len(in.pkg.Manifest.OnLoad) > 0 {
		if in.loading != nil {
			in.loading.waiters = append(in.loading.waiters, r)
			return
		}
		in.startOnLoad(r)
		return
	}
	in.step(r)
}

// startOnLoad runs the package's onLoad functions in order, each awaited
// before the next, then first and the calls that arrived meanwhile.
func (in *Instance) startOnLoad(first *run) {
	steps := in.pkg.Manifest.OnLoad
	l := &run{ctx: first.ctx, target: steps[0], steps: steps[1:], waiters: []*run{first}}
	in.loading = l
	l.onDone = func(_ json.RawMessage, err error) {
		in.loading = nil
		in.loaded = err == nil
		for _, w := range l.waiters {
			if err != nil {
				w.finish(nil, fmt.Errorf("onLoad %s: %w", l.target, err))
			} else {
				in.step(w)
			}
		}
	}
	in.step(l)
}

// step calls r's current target. Whatever job it runs in, the JS it runs
// works for r: its requests use r's context and r's caller.
func (in *Instance) step(r *run) {
	prev := in.cur
	in.cur = r
	defer func() { in.cur = prev }()
	fn, this, err := in.vm.target(r.target)
	if err != nil {
		r.finish(nil, err)
		return
	}
	jsArgs := make([]goja.Value, len(r.args))
	for i, a := range r.args {
		if jsArgs[i], err = in.vm.fromJSON(a); err != nil {
			r.finish(nil, fmt.Errorf("%s: argument %d: %w", r.target, i+1, err))
			return
		}
	}
	v, err := fn(this, jsArgs...)
	if err != nil {
		r.finish(nil, in.jsError(r.target, err))
		return
	}
	if p, ok := v.Export().(*goja.Promise); ok {
		r.promise = p
		in.runs = append(in.runs, r)
		return
	}
	in.next(r, v)
}

// next moves r on after its step resolved to v.
func (in *Instance) next(r *run, v goja.Value) {
	if len(r.steps) > 0 {
		r.target, r.steps, r.promise = r.steps[0], r.steps[1:], nil
		in.step(r)
		return
	}
	if raw, ok := r.queryBody(); ok {
		r.finish(raw, nil)
		return
	}
	val, err := in.vm.toJSON(v)
	if err != nil {
		err = fmt.Errorf("%s: the result is not JSON: %w", r.target, err)
	}
	r.finish(val, err)
}

// do runs job on the loop on behalf of run r (nil for the instance's own
// work): it arms the deadline watchdog, recovers panics and uncatchable
// JS errors, and then settles every run whose promise has settled.
func (in *Instance) do(r *run, job func()) {
	gen := in.gen
	limit := in.opts.Timeout
	if r != nil && !r.done {
		if deadline, ok := r.ctx.Deadline(); ok {
			limit = min(limit, time.Until(deadline))
		}
	}
	in.mu.Lock()
	in.inJob = true
	in.jobStart = time.Now()
	in.jobDeadline = in.jobStart.Add(limit)
	in.trip = false
	in.mu.Unlock()
	in.watchdog.Reset(limit)
	prev := in.cur
	in.cur = r
	var panicked any
	func() {
		defer func() { panicked = recover() }()
		job()
		// settle may run JS too (the next onLoad step, a waiting call):
		// the watchdog stays armed until it returns.
		if !in.tripped() && in.vm != nil && !in.vm.overflowed {
			in.settle()
		}
	}()
	in.cur = prev
	in.watchdog.Stop()
	in.mu.Lock()
	tripped := in.trip
	in.inJob = false
	in.mu.Unlock()

	switch {
	case panicked != nil && !tripped:
		in.log.Error("internal error in a job", "panic", fmt.Sprint(panicked))
		if r != nil {
			r.finish(nil, fmt.Errorf("%s: internal error: %v", r.target, panicked))
		}
		in.discard("internal error")
	case tripped && gen == in.gen:
		if r != nil {
			r.finish(nil, fmt.Errorf("%s: %w: a synchronous loop was interrupted", r.target, engine.ErrDeadline))
		}
		in.discard("interrupted at its deadline")
	case in.vm != nil && in.vm.overflowed:
		in.discard("call stack overflow")
	}
}

// doFor is do for work handed back to the loop: job runs only if the
// runtime is still the one of generation gen, which started the work.
// (The generation changes only in a job, so checking before do is
// checking during it.)
func (in *Instance) doFor(r *run, gen int, job func()) {
	if gen == in.gen {
		in.do(r, job)
	}
}

// interruptOverrun is the watchdog: it interrupts the job that is still
// running at its deadline. A job that ended meanwhile has cleared inJob.
func (in *Instance) interruptOverrun() {
	in.mu.Lock()
	defer in.mu.Unlock()
	// A late firing armed for an earlier job finds a later deadline.
	if in.inJob && in.rt != nil && !time.Now().Before(in.jobDeadline) {
		in.trip = true
		in.rt.Interrupt(engine.ErrDeadline)
	}
}

func (in *Instance) tripped() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.trip
}

// settle finishes runs whose promises settled, and runs that can never
// settle because nothing is pending on the loop.
func (in *Instance) settle() {
	for i := 0; i < len(in.runs); {
		r := in.runs[i]
		state := r.promise.State()
		if state == goja.PromiseStatePending {
			i++
			continue
		}
		in.unwaitAt(i)
		if state == goja.PromiseStateFulfilled {
			in.next(r, r.promise.Result())
		} else {
			r.finish(nil, in.rejection(r.target, r.promise.Result()))
		}
	}
	if len(in.runs) > 0 && in.loop.Idle() {
		runs := in.runs
		in.runs = nil
		for _, r := range runs {
			r.finish(nil, fmt.Errorf("%s: the returned promise can never settle: nothing is pending (a promise that is never resolved?)", r.target))
		}
	}
}

// unwait removes r from the waiting runs, if it is there.
func (in *Instance) unwait(r *run) {
	for i, w := range in.runs {
		if w == r {
			in.unwaitAt(i)
			return
		}
	}
}

// unwaitAt removes the waiting run at i; order does not matter.
func (in *Instance) unwaitAt(i int) {
	last := len(in.runs) - 1
	in.runs[i] = in.runs[last]
	in.runs[last] = nil
	in.runs = in.runs[:last]
}

// discard throws the runtime away after an interrupt, a stack overflow or
// an internal error: goja leaves such a runtime broken. Runs waiting on it
// fail; the next call builds a new one.
func (in *Instance) discard(why string) {
	in.log.Warn("discarding the JS runtime", "reason", why)
	runs := in.runs
	in.runs = nil
	for _, r := range runs {
		r.finish(nil, fmt.Errorf("%s: the instance's runtime was reset (%s) while this call waited", r.target, why))
	}
	if l := in.loading; l != nil {
		l.finish(nil, fmt.Errorf("the instance's runtime was reset (%s)", why))
	}
	in.mu.Lock()
	in.rt = nil
	in.mu.Unlock()
	if in.vm != nil {
		in.vm.stopTimers()
	}
	in.vm = nil
	in.gen++
	in.loaded = false
}

func (in *Instance) onPanic(v any) {
	in.log.Error("internal error on the loop", "panic", fmt.Sprint(v))
}

// Close stops the instance. Calls in progress return at once with an
// error wrapping engine.ErrClosed, their requests cancelled; so do later
// calls.
func (in *Instance) Close() error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	if in.rt != nil && in.inJob {
		in.rt.Interrupt(engine.ErrClosed)
	}
	for r := range in.calls {
		r.cancel()
	}
	in.mu.Unlock()
	// Interruptible JS has stopped; a native call goja cannot interrupt
	// (a runaway RegExp, a huge repeat) may go on. Close does not wait
	// for it past closeGrace: it ends on its own, finds the loop closed
	// and its runtime unused.
	closed := make(chan struct{})
	go func() {
		in.loop.Close()
		close(closed)
	}()
	grace := time.NewTimer(closeGrace)
	select {
	case <-closed:
	case <-grace.C:
		in.log.Warn("closed while a native call (RegExp, repeat, JSON) was still running; it is abandoned")
	}
	grace.Stop()
	in.watchdog.Stop()
	close(in.quit)
	return nil
}

// maxMatch bounds one regular-expression match. goja runs RegExps that Go's
// regexp cannot (backreferences, lookaround) on regexp2, which backtracks
// and is not interrupted by Runtime.Interrupt; its match timeout is the
// one brake. A call still returns at its deadline (Call), but the match
// would go on burning a core: past maxMatch it gives up (goja then
// reports no match, and the interrupted runtime throws at its next
// instruction). regexp2 reads the timeout when it compiles a pattern, from
// a package variable, so it is set once for the process.
const maxMatch = DefaultTimeout

var regexpsBounded sync.Once

func boundRegexps() {
	regexpsBounded.Do(func() { regexp2.DefaultMatchTimeout = maxMatch })
}

// closeGrace is how long Close waits for a job that ignores Interrupt.
const closeGrace = 200 * time.Millisecond

// tokens is the instance's OAuth2 client, made on first use.
func (in *Instance) tokens() *oauth2.Client {
	in.tokensOnce.Do(func() {
		in.oauth = &oauth2.Client{
			HTTP:    &http.Client{Transport: cmp.Or[http.RoundTripper](in.opts.Transport, oauthTransport)},
			Store:   in.session,
			App:     in.opts.App,
			Flights: in.flight,
			Package: in.pkg.Manifest.Name,
			Learn:   in.redact.Learn,
			Log:     in.log,
		}
		// A store shared by several processes locks each refresh across
		// them (etcd); a local store needs no lock.
		if l, ok := in.session.Store().(engine.Locker); ok {
			in.oauth.Locker = l
		}
		if o, ok := in.opts.Observer.(interface {
			TokenRequest(cred, grant, outcome string)
		}); ok {
			in.oauth.Observe = o.TokenRequest
		}
	})
	return in.oauth
}

// Login runs the authorization code grant of credential name (runner
// login): open is called with the URL to visit; the token set is stored
// in the instance's app.
func (in *Instance) Login(ctx context.Context, name string, open func(url string)) error {
	cred, ok := in.pkg.Manifest.OAuth2[name]
	if !ok {
		return fmt.Errorf("package %s has no oauth2 credential %q", in.pkg.Manifest.Name, name)
	}
	if cred.Grant != engine.GrantAuthorizationCode {
		return fmt.Errorf("%s: runner login is for the authorization_code grant; this one is %s", name, cred.Grant)
	}
	var (
		spec                engine.TokenSpec
		authorize, redirect string
		err                 error
	)
	done := make(chan struct{})
	// The bindings evaluate in the runtime, on the loop.
	perr := in.loop.Post(func() {
		defer close(done)
		if in.vm == nil {
			v, verr := newVM(in)
			if verr != nil {
				err = verr
				return
			}
			in.mu.Lock()
			in.rt = v.rt
			in.mu.Unlock()
			in.vm = v
		}
		names := binding.Names{Modules: map[string]bool{}}
		for _, m := range in.pkg.Modules {
			names.Modules[m.Name()] = true
		}
		bc, cerr := binding.CompileCredential(name, cred, names)
		if cerr != nil {
			err = cerr
			return
		}
		if spec, err = bc.Bind(in.vm, nil); err == nil {
			authorize, redirect, err = bc.BindLogin(in.vm)
		}
	})
	if perr != nil {
		return perr
	}
	<-done
	if err != nil {
		return err
	}
	return in.tokens().Login(ctx, spec, authorize, redirect, open)
}

// oauthTransport sends every instance's token requests: keep-alive
// connections shared, as the query modules' are.
var oauthTransport = http.DefaultTransport.(*http.Transport).Clone()

// Redact hides in s every secret the instance knows: secret inputs and the
// token-like values it has seen in the store and in responses.
func (in *Instance) Redact(s string) string { return in.redact.String(s) }
