package js

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/engine"
)

var (
	_ engine.Scope       = (*vm)(nil)
	_ engine.Learner     = (*vm)(nil)
	_ engine.TokenSource = (*vm)(nil)
)

// vm is one goja runtime with a package's modules and the globals. It is
// touched only on the instance's loop.
type vm struct {
	*env
	h       host
	rt      *goja.Runtime
	modules map[string]*goja.Object // JS modules and query modules by name
	queries map[string]*queryState
	targets map[string]engine.Target // resolved against the package: checked once
	evals   map[*goja.Program]goja.Callable

	stringify  goja.Callable
	replacer   goja.Value
	done       [3]goja.Value // resolved promises: undefined, true, false
	overflowed bool

	timers    map[int64]*timer
	named     map[string]int64 // Appsmith's interval ids: setInterval(fn, ms, "id")
	nextTimer int64
}

type queryState struct {
	mod  engine.Query
	obj  *goja.Object
	last *engine.Response
}

// timer is a setTimeout or setInterval; it holds the loop until it fires
// or is cleared (a Stop that succeeds releases the hold).
type timer struct {
	t      *time.Timer
	due    time.Time
	id     int64
	fn     goja.Callable
	args   []goja.Value
	delay  time.Duration
	repeat bool
	r      *run         // the run that set it
	back   func(func()) // its hold on the loop (host.callback)
}

// programmer is the binding expression's compiled form (binding.Expr).
type programmer interface{ Program() *goja.Program }

func newVM(e *env, h host) (*vm, error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(e.opts.MaxCallStack)
	v := &vm{
		env:     e,
		h:       h,
		rt:      rt,
		modules: map[string]*goja.Object{},
		queries: map[string]*queryState{},
		evals:   map[*goja.Program]goja.Callable{},
		timers:  map[int64]*timer{},
	}
	v.stringify, _ = goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))
	v.replacer = rt.ToValue(func(call goja.FunctionCall) goja.Value {
		val := call.Argument(1)
		if _, ok := goja.AssertFunction(val); ok {
			panic(rt.NewTypeError("a function cannot be stored (at key %q)", call.Argument(0).String()))
		}
		if _, ok := val.(*goja.Symbol); ok {
			panic(rt.NewTypeError("a symbol cannot be stored"))
		}
		return val
	})
	v.installGlobals()
	if err := v.installOAuth2(); err != nil {
		return nil, err
	}
	for _, m := range v.pkg.Modules {
		if q, ok := m.(engine.Query); ok {
			v.installQuery(q)
		}
	}
	// The libraries the package's modules use, before the modules.
	libs := map[string]bool{}
	for _, m := range v.pkg.Modules {
		if jm, ok := m.(*Module); ok {
			for _, l := range jm.libs {
				libs[l] = true
			}
		}
	}
	if err := loadLibraries(rt, libs); err != nil {
		return nil, err
	}
	// JS modules in name order; they reach each other by name at call time.
	for _, m := range v.pkg.Modules {
		jm, ok := m.(*Module)
		if !ok {
			continue
		}
		wrapper, err := rt.RunProgram(jm.prog)
		if err != nil {
			return nil, v.jsError(jm.name, err)
		}
		fn, _ := goja.AssertFunction(wrapper)
		exp, err := fn(goja.Undefined())
		if err != nil {
			return nil, fmt.Errorf("%s: evaluating the module: %w", jm.path, v.jsError(jm.name, err))
		}
		obj, ok := exp.(*goja.Object)
		if !ok || goja.IsNull(exp) {
			return nil, fmt.Errorf("%s: export default must be an object, got %s", jm.path, exp.String())
		}
		v.modules[jm.name] = obj
		rt.Set(jm.name, obj)
	}
	return v, nil
}

// target resolves "module.function", or a query module's name (its run),
// checked by engine's one parser and resolver.
func (v *vm) target(t string) (goja.Callable, goja.Value, error) {
	if name, ok := engine.KeepFreshCredential(t); ok {
		return v.keepFresh(name)
	}
	tg, ok := v.targets[t]
	if !ok {
		var err error
		tg, err = engine.ParseTarget(t)
		if err == nil {
			_, err = v.pkg.Resolve(tg)
		}
		switch {
		case errors.Is(err, engine.ErrNoModule):
			return nil, nil, fmt.Errorf("%s: package %s has no module %q (modules: %s)", t, v.pkg.Ref(), tg.Module, strings.Join(v.names(), ", "))
		case err != nil:
			return nil, nil, fmt.Errorf("%s: %w", t, err)
		}
		if v.targets == nil {
			v.targets = map[string]engine.Target{}
		}
		v.targets[t] = tg
	}
	obj := v.modules[tg.Module]
	fn := cmp.Or(tg.Function, "run")
	f, ok := goja.AssertFunction(obj.Get(fn))
	if !ok {
		return nil, nil, fmt.Errorf("%s: module %s has no function %q (functions: %s)", t, tg.Module, fn, strings.Join(v.functions(obj), ", "))
	}
	return f, obj, nil
}

// call calls run r's current target with its arguments. It returns the
// promise the target returned, or its value as the run's result (see
// result), or the error it threw.
func (v *vm) call(r *run) (any, json.RawMessage, error) {
	fn, this, err := v.target(r.target)
	if err != nil {
		return nil, nil, err
	}
	args := make([]goja.Value, len(r.args))
	for i, a := range r.args {
		if args[i], err = v.fromJSON(a); err != nil {
			return nil, nil, fmt.Errorf("%s: argument %d: %w", r.target, i+1, err)
		}
	}
	val, err := fn(this, args...)
	if err != nil {
		return nil, nil, v.jsError(r.target, err)
	}
	if p, ok := val.Export().(*goja.Promise); ok {
		return p, nil, nil
	}
	raw, err := v.result(r, val)
	return nil, raw, err
}

// result is the value a step of r resolved to, as r's result: nil while
// onLoad steps remain; a query target's JSON body as sent; else the value
// as JSON (undefined is null).
func (v *vm) result(r *run, val goja.Value) (json.RawMessage, error) {
	if len(r.steps) > 0 {
		return nil, nil
	}
	if raw, ok := r.queryBody(); ok {
		return raw, nil
	}
	raw, err := v.toJSON(val)
	if err != nil {
		return nil, fmt.Errorf("%s: the result is not JSON: %w", r.target, err)
	}
	return raw, nil
}

// settled reports whether the promise r's step returned (r.promise)
// settled, and then the step's value as r's result (see result) or its
// rejection.
func (v *vm) settled(r *run) (bool, json.RawMessage, error) {
	p := r.promise.(*goja.Promise)
	switch p.State() {
	case goja.PromiseStatePending:
		return false, nil, nil
	case goja.PromiseStateFulfilled:
		raw, err := v.result(r, p.Result())
		return true, raw, err
	default:
		return true, nil, v.rejection(r.target, p.Result())
	}
}

func (v *vm) names() []string {
	out := make([]string, 0, len(v.modules))
	for n := range v.modules {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (v *vm) functions(obj *goja.Object) []string {
	var out []string
	for _, k := range obj.Keys() {
		if _, ok := goja.AssertFunction(obj.Get(k)); ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// ctx is the context of the run being served, for I/O started now.
func (v *vm) ctx() context.Context {
	if r := v.h.serving(); r != nil && !r.done {
		return r.ctx
	}
	return context.Background()
}
