// Work a global starts off the event loop (a store write, a token
// request) and hands back to it.

package js

import (
	"context"
	"errors"

	"github.com/dop251/goja"
)

// asyncWork is Go work that JS awaits: work runs off the loop, then
// deliver on it. One value serves both, so that an await allocates it and
// a task, not a closure per step.
type asyncWork interface {
	work(ctx context.Context) error
	deliver(err error)
}

// await runs w's work off the loop — on the waiting caller of the current
// run if it is free — and delivers its result on the loop.
func (v *vm) await(w asyncWork) {
	t := &task{in: v.in, r: v.in.cur, gen: v.in.gen, w: w}
	t.ctx, t.cancel = v.in.workContext(t.r)
	v.in.loop.Hold()
	v.in.spawn(t.r, t.run)
}

// task carries an await from the loop to the work and back.
type task struct {
	in     *Instance
	r      *run // the run it works for; nil for the instance's own
	gen    int  // the runtime it was started on
	ctx    context.Context
	cancel context.CancelFunc // nil: ctx is r's, held (see run.hold)
	w      asyncWork
	err    error
}

// run does the work off the loop and hands the result back to it.
func (t *task) run() {
	t.err = t.w.work(t.ctx)
	if t.cancel != nil {
		t.cancel()
	} else {
		t.r.unhold()
	}
	t.in.loop.Release(t.onLoop)
}

func (t *task) onLoop() { t.in.doFor(t.r, t.gen, t.handBack) }

func (t *task) handBack() { t.w.deliver(t.err) }

// check handles the error of resolving a promise from Go: only
// uncatchable errors (interrupt, stack overflow) are possible.
func (v *vm) check(err error) {
	if err != nil {
		var soe *goja.StackOverflowError
		if errors.As(err, &soe) {
			v.overflowed = true
		}
		panic(err)
	}
}
