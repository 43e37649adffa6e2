// A worker process: started, read from, stopped, and told when it is
// dead.

package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/heapfloor"
	"github.com/modrun/modrun/internal/memlimit"
	"github.com/modrun/modrun/internal/monitor"
)

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
	board    *board // the worker's started board; nil: "started" frames
}

// begun reports whether call id (c) has begun on the worker: the worker
// said so by frame, or marked its slot. The caller holds w.mu.
func (w *proc) begun(id uint64, c *pending) bool {
	return c.started || w.board.began(c.slot, id)
}

// forget drops call id (c) from the calls on w: its slot goes back.
// The caller holds w.mu.
func (w *proc) forget(id uint64, c *pending) {
	if w.calls[id] == c {
		delete(w.calls, id)
		w.board.give(c.slot)
	}
}

// pending is a call sent to a worker.
type pending struct {
	reply   chan reply
	started bool   // the worker announced it by frame (or, once it died, marked it)
	slot    uint32 // its slot on the started board; 0: none
	target  string
}

// reply ends a pending call: the worker's answer, or its death.
type reply struct {
	answer *answer
	dead   string // why the worker died before answering: memory, deadline, crash…
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
	// The worker's runtime monitor stays awake (internal/monitor), and
	// the trace lines that may print are not the operator's business.
	env, awake := monitor.Env(cmd.Env)
	cmd.Env = env
	if awake {
		cmd.Stderr = &monitor.Filter{W: os.Stderr}
	}
	b, f := newBoard()
	if f != nil {
		cmd.Env = append(cmd.Env, EnvBoard+"="+strconv.Itoa(3+len(cmd.ExtraFiles)))
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	err = cmd.Start()
	if f != nil {
		f.Close() // the worker has its own; the mapping stays
	}
	if err != nil {
		b.close()
		return nil, fmt.Errorf("starting a worker: %w", err)
	}
	w := &proc{p: p, s: s, cmd: cmd, c: newConn(stdout, stdin, stdin), gone: make(chan struct{}), board: b,
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
	for id, c := range calls {
		c.started = w.begun(id, c) // read before the board goes
	}
	w.board.close()
	w.board = nil
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
		c.reply <- reply{answer: errorAnswer(err, plain), dead: why}
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
	if err := w.c.send(&message{ID: mid, Op: opLoad, Inst: id, Load: &loadFrame{Files: in.pkg.Files, App: in.app, Inputs: in.inputs, Locks: locks, LockTTL: ttl.Milliseconds()}}); err != nil {
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
