// singleFlight: one run of a function at a time across every server on
// the store, its result shared with the callers that waited.

package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
)

// singleFlight(key, fn) calls fn unless a call with the same key is already
// in flight in this engine (any instance of the same app), in which case it
// waits for that call and resolves to its result (as JSON). On a store
// shared by several processes (an engine.Locker, such as etcd) the
// engines' leaders take turns under the store's lock, and one that waited
// while a peer's call ran resolves to that call's result instead of
// running fn again (engine.TakeTurn).
func (v *vm) singleFlight(call goja.FunctionCall) goja.Value {
	key := call.Argument(0).String()
	fn, ok := goja.AssertFunction(call.Argument(1))
	if !ok {
		v.throw(errors.New("singleFlight(key, fn): fn must be a function"))
	}
	promise, resolve, reject := v.rt.NewPromise()
	c, leader := v.flight.Join(v.opts.App + "\x00" + key)
	if !leader {
		v.h.await(&flightWait{v: v, key: key, c: c, resolve: resolve, reject: reject})
		return v.rt.ToValue(promise)
	}
	l := &flightLead{v: v, c: c, key: key, fn: fn, resolve: resolve, reject: reject}
	// A leader whose promise never settles (its run abandoned, its runtime
	// discarded) must not hold the key, or the store's lock, forever: the
	// call ends at the leader's deadline.
	limit := v.opts.Timeout
	if r := v.h.serving(); r != nil && !r.done {
		if deadline, ok := r.ctx.Deadline(); ok {
			limit = time.Until(deadline)
		}
	}
	l.expire = time.AfterFunc(limit, l.expired)
	if locker, ok := v.session.Store().(engine.Locker); ok {
		v.h.await(&flightTurn{l: l, locker: locker})
	} else {
		l.run()
	}
	return v.rt.ToValue(promise)
}

// flightLead is the leader's part of a singleFlight call.
type flightLead struct {
	v               *vm
	c               engine.FlightJoin
	key             string
	fn              goja.Callable
	resolve, reject func(any) error
	expire          *time.Timer

	mu       sync.Mutex
	turn     *engine.SharedTurn // across processes; nil: none (yet)
	timedOut bool
}

// expired ends a call whose leader did not settle by its deadline.
func (l *flightLead) expired() {
	l.mu.Lock()
	l.timedOut = true
	turn := l.turn
	l.mu.Unlock()
	if turn != nil {
		turn.End()
	}
	l.c.Finish(nil, fmt.Errorf("singleFlight(%q): %w", l.key, engine.ErrDeadline))
}

// run calls fn on the loop; done follows when its result settles.
func (l *flightLead) run() {
	v := l.v
	res, err := l.fn(goja.Undefined())
	if err != nil {
		var ex *goja.Exception
		if errors.As(err, &ex) {
			l.done(ex.Value(), true)
			return
		}
		l.endTurn()
		panic(err) // uncatchable: interrupt or stack overflow
	}
	if _, ok := res.Export().(*goja.Promise); !ok {
		l.done(res, false)
		return
	}
	then, _ := goja.AssertFunction(res.ToObject(v.rt).Get("then"))
	_, err = then(res,
		v.rt.ToValue(func(call goja.FunctionCall) goja.Value { l.done(call.Argument(0), false); return goja.Undefined() }),
		v.rt.ToValue(func(call goja.FunctionCall) goja.Value { l.done(call.Argument(0), true); return goja.Undefined() }))
	if err != nil {
		l.endTurn()
		panic(err)
	}
}

func (l *flightLead) endTurn() {
	l.mu.Lock()
	turn := l.turn
	l.mu.Unlock()
	if turn != nil {
		turn.End()
	}
}

// done takes fn's outcome: published to the other processes' leaders
// first, if there are any, then handed to this engine's followers and
// settled.
func (l *flightLead) done(val goja.Value, rejected bool) {
	v := l.v
	var raw json.RawMessage
	var err error
	if rejected {
		err = v.rejection("singleFlight("+l.key+")", val)
	} else {
		raw, err = v.toJSON(val)
	}
	l.mu.Lock()
	turn := l.turn
	l.mu.Unlock()
	if turn != nil {
		v.h.await(&flightPublish{l: l, turn: turn, raw: raw, err: err, val: val, rejected: rejected})
		return
	}
	l.expire.Stop()
	l.c.Finish(raw, err)
	l.settle(val, rejected)
}

func (l *flightLead) settle(val goja.Value, rejected bool) {
	if rejected {
		l.v.check(l.reject(val))
		return
	}
	l.v.check(l.resolve(val))
}

// flightTurn waits for the leader's turn across processes.
type flightTurn struct {
	l      *flightLead
	locker engine.Locker
	turn   *engine.SharedTurn
	peer   bool
}

func (w *flightTurn) work(ctx context.Context) error {
	l := w.l
	turn, err := engine.TakeTurn(ctx, l.v.session.Store(), w.locker, l.v.opts.App, l.key)
	if err != nil {
		err = fmt.Errorf("singleFlight(%q): %w", l.key, err)
		l.expire.Stop()
		l.c.Finish(nil, err)
		return err
	}
	if val, perr, ok := turn.Peer(); ok {
		// A peer's call ran meanwhile: its result is this call's.
		w.peer = true
		l.expire.Stop()
		l.c.Finish(val, perr)
		w.turn = turn
		return nil
	}
	l.mu.Lock()
	l.turn = turn
	late := l.timedOut
	l.mu.Unlock()
	if late {
		turn.End()
	}
	return nil
}

func (w *flightTurn) deliver(err error) {
	l, v := w.l, w.l.v
	if err != nil {
		v.check(l.reject(v.newError(err, nil)))
		return
	}
	if !w.peer {
		l.run()
		return
	}
	val, perr, _ := w.turn.Peer()
	if perr != nil {
		v.check(l.reject(v.newError(perr, nil)))
		return
	}
	v.learnFlight(l.key, val)
	jv, _ := v.fromJSON(val)
	v.check(l.resolve(jv))
}

// flightPublish publishes the leader's result to the other processes,
// then releases this engine's followers.
type flightPublish struct {
	l        *flightLead
	turn     *engine.SharedTurn
	raw      json.RawMessage
	err      error
	val      goja.Value
	rejected bool
}

func (w *flightPublish) work(ctx context.Context) error {
	msg := ""
	if w.err != nil {
		msg = w.err.Error()
	}
	if err := w.turn.Publish(ctx, w.raw, msg); err != nil {
		// Peers waiting for the turn run the call themselves: a refresh
		// then reads the token this one stored, so it spends no token
		// twice. Worth a line in the log all the same.
		w.l.v.log.Warn("singleFlight: the result could not be shared with other processes", "key", w.l.key, "error", err)
	}
	w.l.expire.Stop()
	w.l.c.Finish(w.raw, w.err)
	return nil
}

func (w *flightPublish) deliver(error) { w.l.settle(w.val, w.rejected) }

// learnFlight learns the secrets of a singleFlight result that another
// call (in this engine, or another process's) made: secret here as it was
// there, its tokens are redacted before any of it can reach output. A
// string result under a secret-named key is a secret itself.
func (v *vm) learnFlight(key string, raw json.RawMessage) {
	v.redact.LearnJSON(raw)
	if redact.SecretKey(key) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			v.redact.Learn(s)
		}
	}
}

// flightWait is a singleFlight follower waiting for the leader's result.
type flightWait struct {
	v               *vm
	key             string
	c               engine.FlightJoin
	raw             json.RawMessage
	resolve, reject func(any) error
}

func (w *flightWait) work(ctx context.Context) (err error) {
	w.raw, err = w.c.Wait(ctx)
	return err
}

func (w *flightWait) deliver(err error) {
	if err != nil {
		w.v.check(w.reject(w.v.newError(err, nil)))
		return
	}
	w.v.learnFlight(w.key, w.raw)
	val, _ := w.v.fromJSON(w.raw)
	w.v.check(w.resolve(val))
}
