package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
)

func (v *vm) installGlobals() {
	rt := v.rt
	appsmith := rt.NewObject()
	appsmith.Set("store", rt.NewDynamicObject(&storeView{v: v}))
	rt.Set("appsmith", appsmith)
	rt.Set("inputs", v.inputs())
	rt.Set("storeValue", v.storeValue)
	rt.Set("removeValue", v.removeValue)
	rt.Set("clearStore", v.clearStore)
	rt.Set("compareAndSwapValue", v.compareAndSwapValue)
	rt.Set("singleFlight", v.singleFlight)
	rt.Set("showAlert", func(call goja.FunctionCall) goja.Value {
		v.in.log.InfoContext(v.in.cur.context(), v.format(call.Arguments[:min(1, len(call.Arguments))]), "source", "showAlert", "type", call.Argument(1).String())
		return goja.Undefined()
	})
	console := rt.NewObject()
	for name, level := range map[string]slog.Level{
		"log": slog.LevelInfo, "info": slog.LevelInfo, "debug": slog.LevelDebug,
		"warn": slog.LevelWarn, "error": slog.LevelError, "trace": slog.LevelDebug,
	} {
		console.Set(name, func(call goja.FunctionCall) goja.Value {
			msg := v.format(call.Arguments)
			if !v.in.cur.logQuota(len(msg), v.in.log) {
				return goja.Undefined()
			}
			v.in.log.Log(v.in.cur.context(), level, msg, "source", "console")
			return goja.Undefined()
		})
	}
	rt.Set("console", console)
	for _, name := range engine.HeadlessActions {
		rt.Set(name, func(goja.FunctionCall) goja.Value {
			v.in.log.InfoContext(v.in.cur.context(), "headless: "+name+" ignored", "source", name)
			return v.resolved(goja.Undefined())
		})
	}
	rt.Set("setTimeout", func(call goja.FunctionCall) goja.Value { return v.setTimer(call, false) })
	rt.Set("setInterval", func(call goja.FunctionCall) goja.Value { return v.setTimer(call, true) })
	rt.Set("clearTimeout", v.clearTimer)
	rt.Set("clearInterval", v.clearTimer)
}

// installOAuth2 makes oauth2.NAME for each credential of the package:
// accessToken() (a Promise of a fresh token), refresh() (forced, shared
// with concurrent callers) and logout() (the token set removed).
func (v *vm) installOAuth2() error {
	obj := v.rt.NewObject()
	names := binding.Names{Modules: map[string]bool{}}
	for _, m := range v.in.pkg.Modules {
		names.Modules[m.Name()] = true
	}
	v.creds = map[string]*binding.Credential{}
	for name, cred := range v.in.pkg.Manifest.OAuth2 {
		bc, err := binding.CompileCredential(name, cred, names)
		if err != nil {
			return err
		}
		v.creds[name] = bc
		c := v.rt.NewObject()
		c.Set("accessToken", func(goja.FunctionCall) goja.Value { return v.tokenCall(bc, false) })
		c.Set("refresh", func(goja.FunctionCall) goja.Value { return v.tokenCall(bc, true) })
		c.Set("logout", func(goja.FunctionCall) goja.Value {
			spec, err := bc.Bind(v, nil)
			if err == nil {
				err = v.in.tokens().Logout(v.ctx(), spec)
			}
			if err != nil {
				v.throw(fmt.Errorf("oauth2.%s.logout: %w", name, err))
			}
			return v.resolved(goja.Undefined())
		})
		obj.Set(name, c)
	}
	v.rt.Set("oauth2", obj)
	return nil
}

func (v *vm) tokenCall(bc *binding.Credential, force bool) goja.Value {
	spec, err := bc.Bind(v, nil)
	if err != nil {
		v.throw(err)
	}
	promise, resolve, reject := v.rt.NewPromise()
	v.await(&tokenWork{v: v, spec: spec, force: force, resolve: resolve, reject: reject})
	return v.rt.ToValue(promise)
}

// keepFresh is the function of engine.KeepFreshTarget(name): the token
// call of oauth2.name, with the margin widened to what keep-fresh asks,
// resolving to true instead of the token.
func (v *vm) keepFresh(name string) (goja.Callable, goja.Value, error) {
	bc, ok := v.creds[name]
	if !ok {
		return nil, nil, fmt.Errorf("keep fresh: package %s has no credential %q", v.in.pkg.Ref(), name)
	}
	fn := func(call goja.FunctionCall) goja.Value {
		var opt engine.KeepFresh
		if raw, err := v.toJSON(call.Argument(0)); err == nil {
			json.Unmarshal(raw, &opt)
		}
		spec, err := bc.Bind(v, nil)
		if err != nil {
			v.throw(err)
		}
		spec.Margin = max(spec.Margin, time.Duration(opt.Within)*time.Millisecond)
		promise, resolve, reject := v.rt.NewPromise()
		v.await(&tokenWork{v: v, spec: spec, force: opt.Force, quiet: true, resolve: resolve, reject: reject})
		return v.rt.ToValue(promise)
	}
	f, _ := goja.AssertFunction(v.rt.ToValue(fn))
	return f, goja.Undefined(), nil
}

// tokenWork is an oauth2.NAME call: the token request off the loop, the
// promise settled on it.
type tokenWork struct {
	v               *vm
	spec            engine.TokenSpec
	force           bool
	quiet           bool // resolve to true, not the token (keep-fresh)
	tok             string
	resolve, reject func(any) error
}

func (w *tokenWork) work(ctx context.Context) error {
	c := w.v.in.tokens()
	stale := ""
	if w.force {
		stale = c.Current(ctx, w.spec)
	}
	var err error
	w.tok, err = c.Token(ctx, w.spec, stale)
	return err
}

func (w *tokenWork) deliver(err error) {
	if err != nil {
		w.v.check(w.reject(w.v.newError(err, nil)))
		return
	}
	if w.quiet {
		w.v.check(w.resolve(true))
		return
	}
	w.v.check(w.resolve(w.tok))
}

func (v *vm) inputs() *goja.Object {
	obj := v.rt.NewObject()
	for k, val := range v.in.opts.Inputs {
		obj.Set(k, val)
	}
	freeze, _ := goja.AssertFunction(v.rt.Get("Object").ToObject(v.rt).Get("freeze"))
	freeze(goja.Undefined(), obj)
	return obj
}

// format renders console arguments like a browser console: strings as
// they are, errors as String(err), other values as JSON. The result goes
// to the instance's logger, whose handler redacts secrets.
func (v *vm) format(args []goja.Value) string {
	parts := make([]string, len(args))
	for i, a := range args {
		switch {
		case a == nil || goja.IsUndefined(a):
			parts[i] = "undefined"
		case isString(a):
			parts[i] = a.String()
		default:
			if obj, ok := a.(*goja.Object); ok && obj.ClassName() == "Error" {
				parts[i] = a.String()
				continue
			}
			if s, err := v.toJSON(a); err == nil {
				parts[i] = string(s)
			} else {
				parts[i] = a.String()
			}
		}
	}
	return strings.Join(parts, " ")
}

// isString reports whether a is a JS string; unlike Export, ExportType
// boxes nothing.
func isString(a goja.Value) bool {
	return a != nil && a.ExportType() == stringType
}

// throw raises err as a JS Error in the calling JS code.
func (v *vm) throw(err error) {
	panic(v.newError(err, nil))
}

// resolved returns a promise already resolved to undefined, true or
// false. The store functions return one; they are shared per runtime,
// since creating and resolving a promise per call is measurable and an
// already-resolved promise has no state to share.
func (v *vm) resolved(val goja.Value) goja.Value {
	i := 0
	switch val {
	case v.rt.ToValue(true):
		i = 1
	case v.rt.ToValue(false):
		i = 2
	}
	if v.done[i] == nil {
		p, resolve, _ := v.rt.NewPromise()
		resolve(val)
		v.done[i] = v.rt.ToValue(p)
	}
	return v.done[i]
}

func (v *vm) storeKey(call goja.FunctionCall, fn string) string {
	k := call.Argument(0)
	if _, sym := k.(*goja.Symbol); sym || !isString(k) {
		v.throw(fmt.Errorf("%s: the key must be a string, got %s", fn, k.String()))
	}
	key := k.String()
	if engine.ReservedKey(key) {
		v.throw(fmt.Errorf("%s(%s): oauth2.* keys hold credentials' token sets, which only modrun writes (oauth2.NAME.refresh(), .logout(), runner login)", fn, engine.QuoteKey(key)))
	}
	if err := engine.CheckKey(key); err != nil {
		v.throw(fmt.Errorf("%s(%s): %w", fn, engine.QuoteKey(key), err))
	}
	return key
}

// storeValue(key, value, persist = true) stores durably (fsync) before
// returning; appsmith.store sees the value at once.
func (v *vm) storeValue(call goja.FunctionCall) goja.Value {
	key := v.storeKey(call, "storeValue")
	raw, err := v.storable(key, call.Argument(1))
	if err != nil {
		v.throw(err)
	}
	persist := true
	if p := call.Argument(2); !goja.IsUndefined(p) {
		persist = p.ToBoolean()
	}
	if err := v.in.cur.storeQuota(len(key) + len(raw)); err != nil {
		v.throw(fmt.Errorf("storeValue(%q): %w", key, err))
	}
	v.learnStored(key, call.Argument(1), raw)
	if v.in.debug {
		v.in.log.Debug("storeValue", "key", key, "persist", persist, "bytes", len(raw))
	}
	if !persist {
		if err := v.in.session.Set(v.ctx(), key, raw, false); err != nil {
			v.throw(fmt.Errorf("storeValue(%q): %w", key, err))
		}
		return v.resolved(goja.Undefined())
	}
	// Visible at once; durable when the promise resolves. The loop does not
	// wait for the disk, so other runs of this instance share the commit.
	wait := v.in.session.SetAsync(v.ctx(), key, raw)
	promise, resolve, reject := v.rt.NewPromise()
	// The run's caller gets its result only once this write is durable,
	// awaited or not (see Call); so the wait runs on a worker, never on
	// that caller.
	r := v.in.cur
	counted := r != nil && !r.done
	if counted {
		r.writes.Add(1)
	}
	in, gen := v.in, v.in.gen
	in.loop.Hold()
	in.goWork(func() {
		err := wait()
		in.loop.Release(func() {
			in.doFor(r, gen, func() {
				if err != nil {
					v.check(reject(v.newError(fmt.Errorf("storeValue(%q): %w", key, err), nil)))
					return
				}
				v.check(resolve(goja.Undefined()))
			})
		})
		if counted {
			r.writes.Done()
		}
	})
	return v.rt.ToValue(promise)
}

// learnStored learns the secrets in a value stored under key: the value
// itself under a secret-named key, and secret-named fields within it.
func (v *vm) learnStored(key string, val goja.Value, raw json.RawMessage) {
	if isString(val) && redact.SecretKey(key) {
		v.in.redact.Learn(val.String())
	}
	v.in.redact.LearnJSON(raw)
}

func (v *vm) removeValue(call goja.FunctionCall) goja.Value {
	key := v.storeKey(call, "removeValue")
	if err := v.in.session.Delete(v.ctx(), key); err != nil {
		v.throw(fmt.Errorf("removeValue(%q): %w", key, err))
	}
	return v.resolved(goja.Undefined())
}

func (v *vm) clearStore(call goja.FunctionCall) goja.Value {
	if err := v.in.session.Clear(v.ctx()); err != nil {
		v.throw(fmt.Errorf("clearStore: %w", err))
	}
	return v.resolved(goja.Undefined())
}

// compareAndSwapValue(key, old, new) resolves to true if the persisted
// value of key was old (undefined: absent) and is now new (undefined:
// removed).
func (v *vm) compareAndSwapValue(call goja.FunctionCall) goja.Value {
	key := v.storeKey(call, "compareAndSwapValue")
	var old, new json.RawMessage
	var err error
	if a := call.Argument(1); !goja.IsUndefined(a) {
		if old, err = v.storable(key, a); err != nil {
			v.throw(err)
		}
	}
	if a := call.Argument(2); !goja.IsUndefined(a) {
		if new, err = v.storable(key, a); err != nil {
			v.throw(err)
		}
		v.learnStored(key, a, new)
	}
	ok, err := v.in.session.CompareAndSwap(v.ctx(), key, old, new)
	if err != nil {
		v.throw(fmt.Errorf("compareAndSwapValue(%q): %w", key, err))
	}
	return v.resolved(v.rt.ToValue(ok))
}

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
	c, leader := v.in.flight.Join(v.in.opts.App + "\x00" + key)
	if !leader {
		v.await(&flightWait{v: v, key: key, c: c, resolve: resolve, reject: reject})
		return v.rt.ToValue(promise)
	}
	l := &flightLead{v: v, c: c, key: key, fn: fn, resolve: resolve, reject: reject}
	// A leader whose promise never settles (its run abandoned, its runtime
	// discarded) must not hold the key, or the store's lock, forever: the
	// call ends at the leader's deadline.
	limit := v.in.opts.Timeout
	if r := v.in.cur; r != nil && !r.done {
		if deadline, ok := r.ctx.Deadline(); ok {
			limit = time.Until(deadline)
		}
	}
	l.expire = time.AfterFunc(limit, l.expired)
	if locker, ok := v.in.session.Store().(engine.Locker); ok {
		v.await(&flightTurn{l: l, locker: locker})
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
		err = v.in.rejection("singleFlight("+l.key+")", val)
	} else {
		raw, err = v.toJSON(val)
	}
	l.mu.Lock()
	turn := l.turn
	l.mu.Unlock()
	if turn != nil {
		v.await(&flightPublish{l: l, turn: turn, raw: raw, err: err, val: val, rejected: rejected})
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
	turn, err := engine.TakeTurn(ctx, l.v.in.session.Store(), w.locker, l.v.in.opts.App, l.key)
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
		w.l.v.in.log.Warn("singleFlight: the result could not be shared with other processes", "key", w.l.key, "error", err)
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
	v.in.redact.LearnJSON(raw)
	if redact.SecretKey(key) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			v.in.redact.Learn(s)
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

// --- timers ---

func (v *vm) setTimer(call goja.FunctionCall, repeat bool) goja.Value {
	fn, ok := goja.AssertFunction(call.Argument(0))
	if !ok {
		v.throw(errors.New("setTimeout/setInterval: the first argument must be a function"))
	}
	// As in Node.js, a delay under 1 ms is 1 ms: setInterval(f, 0) must
	// not spin a core for the life of the instance.
	delay := time.Duration(call.Argument(1).ToFloat() * float64(time.Millisecond))
	if !(delay >= time.Millisecond) { // also NaN and missing
		delay = time.Millisecond
	}
	var args []goja.Value
	if len(call.Arguments) > 2 {
		args = call.Arguments[2:]
	}
	// Appsmith's setInterval(fn, ms, "id"): a string third argument names
	// the interval (not an argument of fn); clearInterval("id") clears it,
	// and a second setInterval with that id replaces the first.
	name := ""
	if repeat && len(call.Arguments) == 3 && isString(call.Arguments[2]) {
		name, args = call.Arguments[2].String(), nil
		if old, ok := v.named[name]; ok {
			v.stopTimer(old)
		}
	}
	v.nextTimer++
	id := v.nextTimer
	if name != "" {
		if v.named == nil {
			v.named = map[string]int64{}
		}
		v.named[name] = id
	}
	v.arm(id, fn, args, delay, repeat)
	return v.rt.ToValue(id)
}

func (v *vm) arm(id int64, fn goja.Callable, args []goja.Value, delay time.Duration, repeat bool) {
	in, r, gen := v.in, v.in.cur, v.in.gen
	tm := &timer{due: time.Now().Add(delay), id: id, fn: fn, args: args, delay: delay, repeat: repeat, r: r}
	v.timers[id] = tm
	in.loop.Hold()
	tm.t = time.AfterFunc(delay, func() {
		in.loop.Release(func() {
			in.doFor(r, gen, v.fireDue)
		})
	})
}

// fireDue runs every timer that is due, earliest first: each timer's
// goroutine posts this job when it fires, but under load a later timer's
// goroutine may post before an earlier one's, and timers must run in the
// order they are due (as in browsers and Node.js). A timer run here
// before its own job comes finds itself gone then.
func (v *vm) fireDue() {
	now := time.Now()
	var due []*timer
	for _, tm := range v.timers {
		if !tm.due.After(now) {
			due = append(due, tm)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].due.Equal(due[j].due) {
			return due[i].due.Before(due[j].due)
		}
		return due[i].id < due[j].id
	})
	for _, tm := range due {
		if v.timers[tm.id] != tm {
			continue // cleared by an earlier callback
		}
		delete(v.timers, tm.id)
		if tm.repeat {
			v.arm(tm.id, tm.fn, tm.args, tm.delay, true)
		}
		prev := v.in.cur
		v.in.cur = tm.r
		_, err := tm.fn(goja.Undefined(), tm.args...)
		v.in.cur = prev
		if err != nil {
			e := v.in.jsError("timer", err)
			if errors.Is(e, engine.ErrDeadline) || v.overflowed {
				panic(err)
			}
			v.in.log.Error("uncaught exception in a timer callback", "error", e)
		}
	}
}

// stopTimers cancels every timer, releasing their holds on the loop.
func (v *vm) stopTimers() {
	for id, tm := range v.timers {
		delete(v.timers, id)
		if tm.t.Stop() {
			v.in.loop.Release(nil)
		}
	}
}

func (v *vm) clearTimer(call goja.FunctionCall) goja.Value {
	if a := call.Argument(0); isString(a) {
		if id, ok := v.named[a.String()]; ok {
			delete(v.named, a.String())
			v.stopTimer(id)
			return goja.Undefined()
		}
	}
	v.stopTimer(call.Argument(0).ToInteger())
	return goja.Undefined()
}

// stopTimer cancels timer id, if it is still armed.
func (v *vm) stopTimer(id int64) {
	if tm, ok := v.timers[id]; ok {
		delete(v.timers, id)
		if tm.t.Stop() {
			v.in.loop.Release(nil)
		}
	}
}

// --- the store view ---

// storeView is appsmith.store: reads see the session layer, writes throw.
type storeView struct{ v *vm }

func (s *storeView) Get(key string) goja.Value {
	raw, err := s.v.in.session.Get(s.v.ctx(), key)
	if errors.Is(err, engine.ErrNotFound) || engine.CheckKey(key) != nil {
		return nil
	}
	if err != nil {
		s.v.throw(fmt.Errorf("appsmith.store.%s: %w", key, err))
	}
	val, err := s.v.fromJSON(raw)
	if err != nil {
		s.v.throw(fmt.Errorf("appsmith.store.%s: %w", key, err))
	}
	if isString(val) && redact.SecretKey(key) {
		s.v.in.redact.Learn(val.String())
	}
	s.v.in.redact.LearnJSON(raw)
	return val
}

func (s *storeView) readOnly(key string) {
	panic(s.v.rt.NewTypeError("appsmith.store is read-only: use storeValue(%q, value) to change it", key))
}

func (s *storeView) Set(key string, _ goja.Value) bool { s.readOnly(key); return false }

func (s *storeView) Delete(key string) bool { s.readOnly(key); return false }

func (s *storeView) Has(key string) bool {
	_, err := s.v.in.session.Get(s.v.ctx(), key)
	return err == nil
}

func (s *storeView) Keys() []string {
	keys, err := s.v.in.session.Keys(s.v.ctx())
	if err != nil {
		s.v.throw(fmt.Errorf("appsmith.store: %w", err))
	}
	return keys
}
