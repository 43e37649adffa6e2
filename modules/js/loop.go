// The instance's event loop: one runtime driven by one goroutine at a
// time, runs started, stepped, settled, timed out and abandoned.

package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modrun/modrun/engine"
)

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
	if err := in.ensureRealm(); err != nil {
		r.finish(nil, err)
		return
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
	p, val, err := in.vm.call(r)
	switch {
	case err != nil:
		r.finish(nil, err)
	case p != nil:
		r.promise = p
		in.runs = append(in.runs, r)
	default:
		in.next(r, val)
	}
}

// next moves r on after its step resolved to val: the next onLoad step,
// or r's end.
func (in *Instance) next(r *run, val json.RawMessage) {
	if len(r.steps) > 0 {
		r.target, r.steps, r.promise = r.steps[0], r.steps[1:], nil
		in.step(r)
		return
	}
	r.finish(val, nil)
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
		settled, val, err := in.vm.settled(r)
		if !settled {
			i++
			continue
		}
		in.unwaitAt(i)
		if err != nil {
			r.finish(nil, err)
		} else {
			in.next(r, val)
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
