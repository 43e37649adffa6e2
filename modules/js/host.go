// The host: what a JS realm may ask of modrun, and the instance's side of
// it. This file, instance.go, run.go and loop.go do not import goja
// (TestHostImportsNoGoja): they schedule; the realm's files run JS.

package js

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/oauth2"
	"github.com/modrun/modrun/internal/redact"
)

// env is what a realm is made with, fixed for the instance's life: the
// package, its options (app, inputs, limits, observer), the store, the
// single-flight registry, the logger and the redactor. The instance
// embeds it; each realm shares it.
type env struct {
	pkg     *engine.Package
	opts    Options
	session *engine.Session
	log     *slog.Logger // names the package and app; a record logged with a run's context names the run
	debug   bool         // debug logging is on: build those records
	redact  *redact.Redactor
	flight  engine.Flights
}

// host is what a realm asks of the instance that runs it while it runs
// JS: k6's modules.VU for modrun. Everything else a realm uses is its env.
// The realm never touches the loop, the watchdog or the runs list; it
// learns which run it serves, keeps the loop alive while Go work it
// started is pending, and hands that work its context.
type host interface {
	// tokenClient is the OAuth2 client of the package's credentials.
	tokenClient() *oauth2.Client
	// serving is the run the current job works for; nil: the
	// instance's own work (a timer of no run, keep-fresh).
	serving() *run
	// serveAs runs f, on the loop, as work for r: a timer's callback
	// works for the run that set it.
	serveAs(r *run, f func())
	// callback keeps the loop alive until the function it returns is
	// called, from any goroutine, once: job (nil: none) then runs on the
	// loop for the run served now, unless the realm was discarded since
	// (a timer, a store write, a request awaited).
	callback() (back func(job func()))
	// offload runs blocking work of the run served now: on its waiting
	// caller if that is free, else on a worker goroutine.
	offload(f func())
	// background runs blocking work on a worker goroutine, never on a
	// caller (a durable write the caller must wait for).
	background(f func())
	// workContext is the context of blocking work started now for the
	// run served now; call done when the work is over.
	workContext() (ctx context.Context, done func())
}

var _ host = (*Instance)(nil)

func (in *Instance) tokenClient() *oauth2.Client { return in.tokens() }

func (in *Instance) serving() *run { return in.cur }

func (in *Instance) serveAs(r *run, f func()) {
	prev := in.cur
	in.cur = r
	defer func() { in.cur = prev }()
	f()
}

func (in *Instance) callback() func(job func()) {
	r, gen := in.cur, in.gen
	in.loop.Hold()
	return func(job func()) {
		if job == nil {
			in.loop.Release(nil)
			return
		}
		in.loop.Release(func() { in.doFor(r, gen, job) })
	}
}

func (in *Instance) offload(f func()) { in.spawn(in.cur, f) }

func (in *Instance) background(f func()) { in.goWork(f) }

func (in *Instance) workContext() (context.Context, func()) {
	r := in.cur
	if r != nil && r.cancel != nil && r.hold() {
		return r.ctx, r.unhold
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), in.opts.Timeout, engine.ErrDeadline)
	return ctx, cancel
}

// interrupter stops the JS a realm's runtime is running (goja's
// Runtime.Interrupt): the watchdog's and Close's brake.
type interrupter interface{ Interrupt(v any) }

// promise is what a step returned that has not settled yet.
type promise interface {
	// settled reports whether the promise settled, and then the step's
	// value as the run's result (nil while steps remain, see vm.result)
	// or its rejection.
	settled() (ok bool, val json.RawMessage, err error)
}

// ensureRealm builds the instance's realm if it has none (the first call,
// or the first after a discard). It runs on the loop.
func (in *Instance) ensureRealm() error {
	if in.vm != nil {
		return nil
	}
	v, err := newVM(&in.env, in)
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.rt = v.rt
	in.mu.Unlock()
	in.vm = v
	return nil
}
