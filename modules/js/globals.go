package js

import (
	"log/slog"
	"strings"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/engine"
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
		v.log.InfoContext(v.h.serving().context(), v.format(call.Arguments[:min(1, len(call.Arguments))]), "source", "showAlert", "type", call.Argument(1).String())
		return goja.Undefined()
	})
	console := rt.NewObject()
	for name, level := range map[string]slog.Level{
		"log": slog.LevelInfo, "info": slog.LevelInfo, "debug": slog.LevelDebug,
		"warn": slog.LevelWarn, "error": slog.LevelError, "trace": slog.LevelDebug,
	} {
		console.Set(name, func(call goja.FunctionCall) goja.Value {
			msg := v.format(call.Arguments)
			if !v.h.serving().logQuota(len(msg), v.log) {
				return goja.Undefined()
			}
			v.log.Log(v.h.serving().context(), level, msg, "source", "console")
			return goja.Undefined()
		})
	}
	rt.Set("console", console)
	for _, name := range engine.HeadlessActions {
		rt.Set(name, func(goja.FunctionCall) goja.Value {
			v.log.InfoContext(v.h.serving().context(), "headless: "+name+" ignored", "source", name)
			return v.resolved(goja.Undefined())
		})
	}
	rt.Set("setTimeout", func(call goja.FunctionCall) goja.Value { return v.setTimer(call, false) })
	rt.Set("setInterval", func(call goja.FunctionCall) goja.Value { return v.setTimer(call, true) })
	rt.Set("clearTimeout", v.clearTimer)
	rt.Set("clearInterval", v.clearTimer)
}

func (v *vm) inputs() *goja.Object {
	obj := v.rt.NewObject()
	for k, val := range v.opts.Inputs {
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
