package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
)

// Defaults of Options.
const (
	DefaultMaxConcurrent   = 64
	DefaultQueue           = 256
	DefaultHistory         = 1000
	DefaultMaxBody         = 1 << 20
	DefaultShutdownTimeout = 30 * time.Second
	DefaultIdleInstance    = 10 * time.Minute
)

// Loader loads packages: a directory, or a registry reference (NAME,
// NAME@1.2.3, NAME@^1). modrun.Engine is one.
type Loader interface {
	Load(ref string) (*engine.Package, error)
}

// Lister is an optional ability of a Loader: the published packages, as
// NAME@VERSION, newest version of each name last. With it, the server
// lists and runs every published package.
type Lister interface {
	Published() ([]string, error)
}

// Options configure a Server. Loader, NewInstance and Store are required.
type Options struct {
	Loader Loader
	// Packages are the references served by name: directories or
	// registry references, loaded by Load and again by Reload. Their
	// schedules run.
	Packages []string
	// Registry, when set, also serves every package the Loader can
	// resolve by NAME@RANGE.
	Registry bool
	// NewInstance makes an instance of pkg for app.
	NewInstance func(pkg *engine.Package, app string, obs engine.Observer) (engine.Instance, error)
	// Store holds the run history and serves /v1/store.
	Store engine.Store
	// Token is the bearer token every API request must carry.
	Token string
	// Logger receives access logs and the server's own; nil discards.
	Logger *slog.Logger
	// RunLogs, if set, keeps each run's own log lines in its history
	// entry (Run.Log); its Handler must wrap the instances' logger.
	RunLogs *RunLogs
	// MaxConcurrent runs execute at once; zero means DefaultMaxConcurrent.
	MaxConcurrent int
	// Queue runs wait for a slot; zero means DefaultQueue, negative none.
	Queue int
	// History runs are kept; zero means DefaultHistory.
	History int
	// MaxBody bytes of a request body; zero means DefaultMaxBody.
	MaxBody int64
	// ShutdownTimeout is how long runs in flight may take to finish once
	// Serve's context ends; zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Name is this server's name in a history shared with other servers
	// on one store: when it starts, the runs it left unfinished (by this
	// name) are failed. Empty means the host name; give each server on one
	// host its own.
	Name string
	// Secrets returns the values of pkg's secret inputs as the server
	// gives them, redacted from /v1/store wherever they stand; nil: none.
	Secrets func(pkg *engine.Package) []string
	// Notify is a URL that gets a JSON POST (an Event) when a credential
	// enters refresh_failing or needs_login, or its refresh token expires
	// within WarnBefore. Empty: only log lines.
	Notify string
	// WatchEvery is how often the credentials' health is read for those
	// announcements; zero means DefaultWatchEvery.
	WatchEvery time.Duration
	// WarnBefore is how long before a refresh token expires that it is
	// announced; zero means DefaultWarnBefore.
	WarnBefore time.Duration
	// IdleInstance is how long an instance (of a package version for an
	// app) may go unused before it is released, here and in every worker;
	// zero means DefaultIdleInstance.
	IdleInstance time.Duration
	// Instances per pool (package version and app); zero means one. One
	// event loop per pool batches an I/O-bound flow best (bench/run.sh
	// row 7: 8.7k runs/s with one, 6.2k with two, on 2 cores); more let a
	// CPU-bound package use more cores.
	Instances int
}

// HistoryApp is the store app that holds the run history.
const HistoryApp = "modrun.history"

// ErrShuttingDown is the cause of runs cut short by a shutdown.
var ErrShuttingDown = errors.New("server shutting down")

// Server is runner serve. See the package doc.
type Server struct {
	credKick chan struct{} // wakes watchCredentials
	opts     Options
	log      *slog.Logger
	metrics  *metrics
	history  *history
	guesses  guesses          // wrong tokens by client address
	tokens   tokens           // scoped API tokens, checked against the store
	secrets  *redact.Redactor // the served packages' secret inputs

	// base is the context of every run; cancelled with ErrShuttingDown
	// past the shutdown timeout.
	base   context.Context
	cancel context.CancelCauseFunc

	slots    chan struct{} // one per run executing
	waiting  atomic.Int64  // runs waiting for a slot
	draining atomic.Bool
	runs     sync.WaitGroup // runs in flight, sync and async
	loaded   atomic.Bool

	mu       sync.Mutex
	pinned   map[string]*engine.Package // by name: Options.Packages
	byRef    map[string]*engine.Package // the same, by the reference that loaded each
	resolved map[string]*engine.Package // registry references, until Reload
	pools    map[poolKey]*pool
	sched    *scheduler
}

// New returns a server. It does no I/O.
func New(opts Options) *Server {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.Queue == 0 {
		opts.Queue = DefaultQueue
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Instances <= 0 {
		opts.Instances = 1
	}
	if opts.IdleInstance <= 0 {
		opts.IdleInstance = DefaultIdleInstance
	}
	if opts.WatchEvery <= 0 {
		opts.WatchEvery = DefaultWatchEvery
	}
	if opts.WarnBefore <= 0 {
		opts.WarnBefore = DefaultWarnBefore
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancelCause(context.Background())
	s := &Server{
		opts:     opts,
		log:      log,
		metrics:  newMetrics(),
		base:     base,
		cancel:   cancel,
		slots:    make(chan struct{}, opts.MaxConcurrent),
		pinned:   map[string]*engine.Package{},
		resolved: map[string]*engine.Package{},
		pools:    map[poolKey]*pool{},
		secrets:  redact.New(),
		tokens:   tokens{st: opts.Store},
		credKick: make(chan struct{}, 1),
	}
	// A failed token request makes the credential watch read the health
	// now: a revoked login is announced at once, not a tick later.
	s.metrics.onRefreshFailure = func() {
		select {
		case s.credKick <- struct{}{}:
		default:
		}
	}
	if opts.Name == "" {
		opts.Name, _ = os.Hostname()
	}
	s.opts.Name = opts.Name
	s.history = newHistory(opts.Store, opts.History, opts.Name, log)
	s.metrics.reg.MustRegister(newCredentialCollector(opts.Store))
	return s
}

// Serve answers on l until ctx ends, then shuts down: /readyz turns 503,
// new runs get 503, runs in flight have Options.ShutdownTimeout to finish
// (then they fail with ErrShuttingDown), history is flushed, pools are
// closed. It returns nil after a clean shutdown. The store is the
// caller's to close.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A sync run may take its whole deadline; a wait= poll up to a
		// minute. Slow readers of a response are cut off past this.
		WriteTimeout: 5 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.sched.start()
	s.mu.Unlock()
	reapCtx, stopReaper := context.WithCancel(context.Background())
	defer stopReaper()
	go s.reaper(reapCtx)
	go s.watchCredentials(reapCtx)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "runs in flight", s.metrics.inFlightValue(), "timeout", s.opts.ShutdownTimeout)
	s.draining.Store(true)
	s.mu.Lock()
	s.sched.stop()
	s.mu.Unlock()
	// Runs in flight get the shutdown timeout; then their contexts end.
	done := make(chan struct{})
	go func() {
		s.runs.Wait()
		close(done)
	}()
	timer := time.NewTimer(s.opts.ShutdownTimeout)
	select {
	case <-done:
	case <-timer.C:
		s.log.Warn("runs still in flight at the shutdown timeout: cancelling them")
		s.cancel(ErrShuttingDown)
		<-done
	}
	timer.Stop()
	// Their responses are written; close the connections.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	fctx, cancelFlush := context.WithTimeout(context.Background(), historyFlushTimeout)
	s.history.flush(fctx)
	cancelFlush()
	s.mu.Lock()
	for _, p := range s.pools {
		if p.insts != nil {
			p.close()
		}
	}
	s.pools = map[poolKey]*pool{}
	s.mu.Unlock()
	s.cancel(ErrShuttingDown)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // idle keep-alive connections closed by force
	}
	return err
}

// WorkerRestarted counts a worker process replaced for reason (memory,
// deadline, crash) in modrun_worker_restarts_total. A nil server counts
// nothing.
func (s *Server) WorkerRestarted(reason string) {
	if s != nil {
		s.metrics.restarts.WithLabelValues(reason).Inc()
	}
}

// ready reports whether packages are loaded and the store answers.
func (s *Server) ready(ctx context.Context) error {
	if s.draining.Load() {
		return ErrShuttingDown
	}
	if !s.loaded.Load() {
		return errors.New("packages not loaded yet")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.opts.Store.Get(ctx, HistoryApp, "ready-probe"); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// apiError is an error with the HTTP status it answers with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errNotFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func errBadRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}
