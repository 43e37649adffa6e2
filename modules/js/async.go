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
	t := &task{back: v.h.callback(), w: w}
	t.ctx, t.done = v.h.workContext()
	v.h.offload(t.run)
}

// task carries an await from the loop to the work and back.
type task struct {
	back func(job func()) // to the loop (host.callback)
	ctx  context.Context
	done func() // the work is over (host.workContext)
	w    asyncWork
	err  error
}

// run does the work off the loop and hands the result back to it.
func (t *task) run() {
	t.err = t.w.work(t.ctx)
	t.done()
	t.back(t.handBack)
}

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
