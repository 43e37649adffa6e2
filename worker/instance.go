// An instance served by a worker: engine.Instance over the pool, with
// its calls tried again on another worker when theirs dies.

package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/runlog"
	"github.com/modrun/modrun/internal/tracing"
)

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
	c := &pending{reply: make(chan reply, 1), target: target}
	w.mu.Lock()
	if w.isDead {
		w.mu.Unlock()
		return nil, nil, true
	}
	w.calls[id] = c
	c.slot = w.board.lend(id)
	w.mu.Unlock()
	forget := func() {
		w.mu.Lock()
		w.forget(id, c)
		w.mu.Unlock()
	}
	// The last worker a call can go to runs it even if its copy of the
	// instance is busy; the others hand it on.
	last := attempt >= len(in.p.slots)-1
	if err := w.c.sendTogether(&message{ID: id, Op: opCall, Inst: in.id, Call: &callFrame{Target: target, Args: args, Timeout: max(time.Until(deadline).Milliseconds(), 1), Deadline: deadline.UnixMilli(), Queue: last,
		Trace: tracing.TraceParent(ctx), Run: runlog.ID(ctx), Slot: c.slot}}); err != nil {
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
		case r := <-c.reply:
			if r.dead != "" {
				w.mu.Lock()
				started := c.started // set from the board when it died
				w.mu.Unlock()
				if !started {
					return nil, nil, true
				}
				if r.dead == "deadline" {
					return nil, fmt.Errorf("%s: %w: its worker was stopped, as another run on it overran its deadline", target, errWorkerStopped), false
				}
				return nil, fmt.Errorf("%s: %w", target, fromWire(r.answer.Err)), false
			}
			if r.answer.Err != nil && r.answer.Err.Kind == kindBusy {
				return nil, nil, true // not started: the next worker takes it
			}
			return r.answer.Result, fromWire(r.answer.Err), false
		case <-kill.C:
			w.mu.Lock()
			started := w.begun(id, c)
			w.forget(id, c)
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
