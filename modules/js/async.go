// Work a global starts off the event loop (a store write, a token
// request) and hands back to it.

package js

import (
	"context"
	"errors"

	"github.com/dop251/goja"
)

// asyncWork is Go work that JS awaits (host.await): work runs off the
// loop, then deliver on it. One value serves both, so that an await
// allocates it and a task, not a closure per step.
type asyncWork interface {
	work(ctx context.Context) error
	deliver(err error)
}

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
