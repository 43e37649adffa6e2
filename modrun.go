package modrun

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/heapfloor"
	"github.com/modrun/modrun/internal/tracing"
	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/modules/query"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/worker"
)

// Options configure an Engine. The zero value works except that Store is
// required to create instances.
type Options struct {
	// Store persists storeValue's values for every instance.
	Store engine.Store
	// Registry is the directory of published packages; empty means
	// references by name cannot be resolved.
	Registry string
	// Logger receives logs of every instance, secrets redacted. Nil
	// discards.
	Logger *slog.Logger
	// Timeout is each call's deadline. Zero means 60 s.
	Timeout time.Duration
	// Isolate runs instances' JS in worker processes (package worker):
	// a run that exhausts memory or a core takes down only its worker.
	// The program's main must call WorkerMain first. Start them with
	// Start; Close stops them.
	Isolate bool
	// Workers is the number of worker processes; zero means one per CPU.
	Workers int
	// MaxMemory is each worker's heap limit in bytes; zero means 256 MiB.
	MaxMemory uint64
	// OnWorkerRestart is told each time a worker is replaced, and why.
	OnWorkerRestart func(reason string)
	// Transport sends every HTTP request of the engine's instances:
	// queries and OAuth2 token requests (runner test records and replays
	// through it). Nil means the default transports. Not with Isolate:
	// workers send their own.
	Transport http.RoundTripper
}

// Engine loads packages and creates instances of them.
type Engine struct {
	opts   Options
	kinds  []engine.Kind
	flight engine.Flight
	pool   *worker.Pool // with Options.Isolate

	mu    sync.Mutex
	cache map[string]*engine.Package // by digest: published bundles compile once
}

// New returns an engine. It does no I/O: with Options.Isolate, the first
// worker starts in the background when Load is called, the others on
// the calls that need them.
func New(opts Options) *Engine {
	qk := query.NewKind()
	if opts.Transport != nil {
		qk.Transport = opts.Transport
	}
	e := &Engine{
		opts:  opts,
		kinds: append([]engine.Kind{qk, js.Kind{}}, engine.RegisteredKinds()...),
		cache: map[string]*engine.Package{},
	}
	if opts.Isolate {
		e.pool = worker.NewPool(worker.Options{Size: opts.Workers, MaxMemory: opts.MaxMemory, Timeout: opts.Timeout,
			Store: opts.Store, Flights: &e.flight, Logger: opts.Logger, OnRestart: opts.OnWorkerRestart})
	}
	return e
}

// Close stops the engine's workers (with Options.Isolate); instances of
// it fail afterwards. It does not close the store.
func (e *Engine) Close() error {
	if e.pool != nil {
		return e.pool.Close()
	}
	return nil
}

// Kinds returns the module kinds the engine compiles: query modules, JS
// modules, then those engine.RegisterKind added.
func (e *Engine) Kinds() []engine.Kind { return e.kinds }

// Registry returns the engine's registry.
func (e *Engine) Registry() *packages.Registry { return &packages.Registry{Dir: e.opts.Registry} }

// IsPath reports whether ref names a directory rather than a registry
// package: it contains a path separator, starts with a dot, or is a
// directory holding a package.yaml.
func IsPath(ref string) bool {
	if strings.ContainsRune(ref, '/') || strings.ContainsRune(ref, filepath.Separator) || strings.HasPrefix(ref, ".") {
		return true
	}
	_, err := os.Stat(filepath.Join(ref, packages.ManifestFile))
	return err == nil
}

// Load loads a package directory, or resolves a registry reference (NAME,
// NAME@1.2.3, NAME@^1, NAME@~1.2), verifies the bundle's digest and loads
// it. Published versions are compiled once and cached.
//
// A bare name that is both a directory holding a package.yaml and a
// published package means the directory (a warning is logged); NAME@*
// means the newest published version.
func (e *Engine) Load(ref string) (*engine.Package, error) {
	if e.pool != nil {
		// The worker's start overlaps the load: a cold isolated run
		// waits for the slower of the two, not for both.
		e.pool.Warm()
	}
	if filepath.Base(ref) == packages.ManifestFile {
		if fi, err := os.Stat(ref); err == nil && !fi.IsDir() {
			return nil, fmt.Errorf("%s is a package's manifest: pass its directory, %s", ref, filepath.Dir(ref))
		}
	}
	if IsPath(ref) {
		if e.opts.Registry != "" && !strings.ContainsAny(ref, "/.@"+string(filepath.Separator)) {
			if p, err := e.Registry().Resolve(ref); err == nil {
				e.log().Warn("both a directory and a published package have this name: using the directory (write NAME@* for the published one)",
					"directory", ref, "published", p.Name+"@"+p.Version)
			}
		}
		return packages.LoadDir(ref, e.kinds...)
	}
	if e.opts.Registry == "" {
		return nil, fmt.Errorf("%s: no registry configured (use --registry or $MODRUN_REGISTRY), and no such directory", ref)
	}
	reg := e.Registry()
	p, err := reg.Resolve(ref)
	if err != nil {
		return nil, err
	}
	files, digest, err := reg.Open(p)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	pkg, ok := e.cache[digest]
	e.mu.Unlock()
	if ok {
		return pkg, nil
	}
	pkg, err = packages.Load(files, e.kinds...)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", p.Name, p.Version, err)
	}
	if pkg.Manifest.Name != p.Name || pkg.Manifest.Version != p.Version {
		return nil, fmt.Errorf("%s@%s: the bundle's package.yaml says %s", p.Name, p.Version, pkg.Ref())
	}
	pkg.Digest = digest
	e.mu.Lock()
	e.cache[digest] = pkg
	e.mu.Unlock()
	return pkg, nil
}

func (e *Engine) log() *slog.Logger {
	if e.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.opts.Logger
}

// Published returns every published package of the registry as
// NAME@VERSION, each name's versions oldest first (none without a
// registry).
func (e *Engine) Published() ([]string, error) {
	if e.opts.Registry == "" {
		return nil, nil
	}
	pubs, err := e.Registry().List()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(pubs))
	for i, p := range pubs {
		out[i] = p.Name + "@" + p.Version
	}
	return out, nil
}

// InstanceOptions configure one instance.
type InstanceOptions struct {
	// App is the store namespace; empty means the package's name.
	App string
	// Inputs are the package's inputs; defaults fill the rest.
	Inputs map[string]any
	// Timeout overrides the engine's call deadline when positive.
	Timeout time.Duration
	// Observer is told of every query's outcome (metrics); nil: none.
	Observer engine.Observer
}

// NewInstance binds pkg to an app, its inputs and the engine's store. A
// required input without a value is an error naming it. With
// Options.Isolate its calls run on the engine's workers.
func (e *Engine) NewInstance(pkg *engine.Package, opts InstanceOptions) (engine.Instance, error) {
	if e.opts.Store == nil {
		return nil, errors.New("modrun: Options.Store is required to create instances")
	}
	inputs, err := pkg.ResolveInputs(opts.Inputs)
	if err != nil {
		return nil, err
	}
	if e.pool != nil {
		return e.pool.NewInstance(pkg, opts.App, inputs, opts.Observer), nil
	}
	timeout := e.opts.Timeout
	if opts.Timeout > 0 {
		timeout = opts.Timeout
	}
	return js.NewInstance(pkg, js.Options{
		Store:     e.opts.Store,
		App:       opts.App,
		Inputs:    inputs,
		Logger:    e.opts.Logger,
		Timeout:   timeout,
		Flight:    &e.flight,
		Observer:  opts.Observer,
		Transport: e.opts.Transport,
	}), nil
}

// DefaultHeapFloor is the heap floor the runner sets (see SetHeapFloor).
const DefaultHeapFloor = 32 << 20

// SetHeapFloor lets the process's heap grow to floor bytes before the
// garbage collector runs, as the runner does: nearly everything a call
// allocates is short-lived JS machinery, and under Go's default 4 MB
// minimum the collector took 13% of the CPU of a busy engine (see
// bench/README.md). Past floor/2 of live heap, GOGC=100 applies as usual.
//
// It changes the whole process, so only a program's main should call it,
// once. It does nothing and reports false if GOGC or GOMEMLIMIT is set in
// the environment, or floor is zero. stop restores GOGC=100.
func SetHeapFloor(floor uint64) (stop func(), ok bool) { return heapfloor.Set(floor) }

// WorkerMain makes this process a worker of an engine with
// Options.Isolate, if it was started as one (the environment says so): it
// then serves its parent and exits, never returning. Otherwise it returns
// at once. A program that isolates calls it first thing in main, before
// flags or output, since the parent re-executes the program itself:
//
//	func main() {
//		modrun.WorkerMain()
//		...
//	}
func WorkerMain() {
	if os.Getenv(worker.EnvWorker) != "1" {
		return
	}
	// A Ctrl-C reaches the whole process group: the parent drains its
	// runs, so the worker must not die first. It ends when its parent
	// closes the pipe.
	signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	maxMem, _ := strconv.ParseUint(os.Getenv(worker.EnvMaxMemory), 10, 64)
	level, _ := strconv.Atoi(os.Getenv(worker.EnvLogLevel))
	floor, _ := strconv.ParseUint(os.Getenv(worker.EnvHeapFloor), 10, 64)
	SetHeapFloor(worker.HeapFloor(floor, maxMem))
	if maxMem > 0 {
		// The collector works to keep the whole process under the limit
		// that Serve enforces on its resident set, not only its heap.
		debug.SetMemoryLimit(int64(maxMem))
	}
	h := &workerHost{kinds: New(Options{}).kinds, pkgs: map[[32]byte]*engine.Package{}}
	// A worker exports its own spans (queries, token requests), joined to
	// the run's trace by the traceparent its calls carry.
	stopTracing, err := tracing.Setup(context.Background(), "modrun-worker")
	if err != nil {
		fmt.Fprintln(os.Stderr, "modrun worker: tracing:", err)
	}
	err = worker.Serve(os.Stdin, os.Stdout, h, maxMem, slog.Level(level))
	if stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		stopTracing(ctx)
		cancel()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modrun worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// workerHost compiles packages in a worker, each once, and makes
// instances of them.
type workerHost struct {
	kinds []engine.Kind
	mu    sync.Mutex
	pkgs  map[[32]byte]*engine.Package
}

func (h *workerHost) NewInstance(files map[string][]byte, app string, inputs map[string]any, st engine.Store, flights engine.Flights, obs engine.Observer, log *slog.Logger) (engine.Instance, error) {
	sum := filesSum(files)
	h.mu.Lock()
	pkg, ok := h.pkgs[sum]
	h.mu.Unlock()
	if !ok {
		var err error
		if pkg, err = packages.Load(files, h.kinds...); err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.pkgs[sum] = pkg
		h.mu.Unlock()
	}
	// The parent enforces the deadline of each call; the instance's own is
	// a backstop.
	return js.NewInstance(pkg, js.Options{Store: st, App: app, Inputs: inputs, Logger: log, Flight: flights, Observer: obs, Timeout: 24 * time.Hour}), nil
}

// filesSum identifies a package's files: sha256 over names and contents,
// in name order.
func filesSum(files map[string][]byte) [32]byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	hs := sha256.New()
	for _, n := range names {
		fmt.Fprintf(hs, "%d:%s%d:", len(n), n, len(files[n]))
		hs.Write(files[n])
	}
	var out [32]byte
	copy(out[:], hs.Sum(nil))
	return out
}
