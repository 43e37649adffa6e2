package js

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2/v2"

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
	env
	loop *engine.Loop

	// Loop-only state.
	rt      interrupter // the realm's runtime, for the watchdog; guarded by mu
	gen     int         // runtime generation: jobs of an older one are dropped
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
		env: env{
			pkg:     pkg,
			opts:    opts,
			session: engine.NewSession(opts.Store, opts.App),
			redact:  opts.Redactor,
			flight:  opts.Flight,
		},
		work:  make(chan func()),
		quit:  make(chan struct{}),
		calls: map[*run]struct{}{},

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

func (in *Instance) isClosed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.closed
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
		if err = in.ensureRealm(); err != nil {
			return
		}
		bc, cerr := credential(in.pkg, name)
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
