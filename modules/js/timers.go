// setTimeout, setInterval and their clears, on the instance's event loop.

package js

import (
	"errors"
	"sort"
	"time"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/engine"
)

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

// arm sets timer id due delay after the current job began (the loop's
// clock, v.h.now). Counted from the moment of the call instead, a 20 ms
// timer set before a 1 ms one was due first whenever the job was held up
// more than 19 ms between the two calls (a loaded machine: CI saw it).
func (v *vm) arm(id int64, fn goja.Callable, args []goja.Value, delay time.Duration, repeat bool) {
	back := v.h.callback()
	due := v.h.now().Add(delay)
	tm := &timer{due: due, id: id, fn: fn, args: args, delay: delay, repeat: repeat, r: v.h.serving(), back: back}
	v.timers[id] = tm
	tm.t = time.AfterFunc(time.Until(due), func() { back(v.fireDue) })
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
		var err error
		v.h.serveAs(tm.r, func() { _, err = tm.fn(goja.Undefined(), tm.args...) })
		if err != nil {
			e := v.jsError("timer", err)
			if errors.Is(e, engine.ErrDeadline) || v.overflowed {
				panic(err)
			}
			v.log.Error("uncaught exception in a timer callback", "error", e)
		}
	}
}

// stopTimers cancels every timer, releasing their holds on the loop.
func (v *vm) stopTimers() {
	for id, tm := range v.timers {
		delete(v.timers, id)
		if tm.t.Stop() {
			tm.back(nil)
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
			tm.back(nil)
		}
	}
}
