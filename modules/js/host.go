// The host: what a JS realm may ask of modrun, and the instance's side of
// it. This file, instance.go, run.go and loop.go do not import goja
// (TestHostImportsNoGoja): they schedule; the realm's files run JS.

package js

import (
	"context"
	"log/slog"
	"time"

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
	// await runs w's work off the loop, for the run served now and
	// with its context — on its waiting caller if that is free — then
	// w's deliver on the loop (a request, a token, a lock awaited).
	await(w asyncWork)
	// background runs blocking work on a worker goroutine, never on a
	// caller (a durable write the caller must wait for).
	background(f func())
	// now is the loop's clock: when the current job began. Timers count
	// their delays from it, as Node.js counts from its loop's cached
	// time, so that timers set in one job fire in the order of their
	// delays whatever the job's own pace.
	now() time.Time
}

var _ host = (*Instance)(nil)

func (in *Instance) now() time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.inJob {
		return in.jobStart
	}
	return time.Now()
}

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

func (in *Instance) background(f func()) { in.goWork(f) }

func (in *Instance) await(w asyncWork) {
	t := &task{in: in, r: in.cur, gen: in.gen, w: w}
	t.ctx, t.cancel = in.workContext(t.r)
	in.loop.Hold()
	in.spawn(t.r, t.run)
}

// task carries an await from the loop to the work and back.
type task struct {
	in     *Instance
	r      *run // the run it works for; nil for the instance's own
	gen    int  // the realm it was started on
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

// workContext is the context of blocking work started now for run r. If
// cancel is nil the context is r's, held: call r.unhold when the work is
// done; otherwise call cancel.
func (in *Instance) workContext(r *run) (ctx context.Context, cancel context.CancelFunc) {
	if r != nil && r.cancel != nil && r.hold() {
		return r.ctx, nil
	}
	return context.WithTimeoutCause(context.Background(), in.opts.Timeout, engine.ErrDeadline)
}

// interrupter stops the JS a realm's runtime is running (goja's
// Runtime.Interrupt): the watchdog's and Close's brake.
type interrupter interface{ Interrupt(v any) }

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
