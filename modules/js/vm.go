package js

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/tidwall/gjson"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
)

var (
	_ engine.Scope       = (*vm)(nil)
	_ engine.Learner     = (*vm)(nil)
	_ engine.TokenSource = (*vm)(nil)
)

// vm is one goja runtime with a package's modules and the globals. It is
// touched only on the instance's loop.
type vm struct {
	in      *Instance
	rt      *goja.Runtime
	modules map[string]*goja.Object // JS modules and query modules by name
	queries map[string]*queryState
	targets map[string]engine.Target       // resolved against the package: checked once
	creds   map[string]*binding.Credential // the package's oauth2: credentials, compiled
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
	r      *run // the run that set it
}

// programmer is the binding expression's compiled form (binding.Expr).
type programmer interface{ Program() *goja.Program }

func newVM(in *Instance) (*vm, error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(in.opts.MaxCallStack)
	v := &vm{
		in:      in,
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
	for _, m := range in.pkg.Modules {
		if q, ok := m.(engine.Query); ok {
			v.installQuery(q)
		}
	}
	// The libraries the package's modules use, before the modules.
	libs := map[string]bool{}
	for _, m := range in.pkg.Modules {
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
	for _, m := range in.pkg.Modules {
		jm, ok := m.(*Module)
		if !ok {
			continue
		}
		wrapper, err := rt.RunProgram(jm.prog)
		if err != nil {
			return nil, in.jsError(jm.name, err)
		}
		fn, _ := goja.AssertFunction(wrapper)
		exp, err := fn(goja.Undefined())
		if err != nil {
			return nil, fmt.Errorf("%s: evaluating the module: %w", jm.path, in.jsError(jm.name, err))
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
			_, err = v.in.pkg.Resolve(tg)
		}
		switch {
		case errors.Is(err, engine.ErrNoModule):
			return nil, nil, fmt.Errorf("%s: package %s has no module %q (modules: %s)", t, v.in.pkg.Ref(), tg.Module, strings.Join(v.names(), ", "))
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
	if r := v.in.cur; r != nil && !r.done {
		return r.ctx
	}
	return context.Background()
}

// --- conversions ---

// fromJSON converts JSON text to a JS value without JSON.parse.
func (v *vm) fromJSON(raw []byte) (goja.Value, error) {
	return v.parse(raw, false)
}

// MaxJSONDepth is the deepest nesting of arrays and objects converted to
// JS (a response body, a store value, an argument); deeper is an error.
const MaxJSONDepth = 1000

// shallow is the nesting up to which JSON is converted by walking gjson
// results. That walk rescans a nested value once for each level above it,
// so it is linear only for bounded depth; deeper JSON goes through
// encoding/json's decoder, linear at any depth.
const shallow = 32

// parse converts JSON text to a JS value in time linear in its size, or
// fails past MaxJSONDepth. With learn set, secret-named string fields are
// given to the redactor on the way.
func (v *vm) parse(raw []byte, learn bool) (goja.Value, error) {
	if len(raw) == 0 {
		return goja.Undefined(), nil
	}
	if !gjson.ValidBytes(raw) {
		return nil, errors.New("not valid JSON")
	}
	depth := jsonDepth(raw)
	switch {
	case depth > MaxJSONDepth:
		return nil, fmt.Errorf("JSON nested deeper than %d levels", MaxJSONDepth)
	case depth > shallow:
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		return v.decode(dec, learn)
	}
	return v.value(gjson.ParseBytes(raw), learn), nil
}

// jsonDepth returns the deepest nesting of arrays and objects in valid
// JSON, in one pass.
func jsonDepth(raw []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// decode converts the next JSON value of dec (valid, at most
// MaxJSONDepth deep) to JS.
func (v *vm) decode(dec *json.Decoder, learn bool) (goja.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return goja.Null(), nil
	case bool:
		return v.rt.ToValue(t), nil
	case string:
		return v.rt.ToValue(t), nil
	case json.Number:
		if i, err := t.Int64(); err == nil && i > -1<<53 && i < 1<<53 {
			return v.rt.ToValue(i), nil
		}
		f, _ := t.Float64()
		return v.rt.ToValue(f), nil
	case json.Delim:
		if t == '[' {
			var items []any
			for dec.More() {
				el, err := v.decode(dec, learn)
				if err != nil {
					return nil, err
				}
				items = append(items, el)
			}
			_, err := dec.Token()
			return v.rt.NewArray(items...), err
		}
		obj := v.rt.NewObject()
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := kt.(string)
			el, err := v.decode(dec, learn)
			if err != nil {
				return nil, err
			}
			if learn && isString(el) && redact.SecretKey(key) {
				v.in.redact.Learn(el.String())
			}
			v.setField(obj, key, el)
		}
		_, err := dec.Token()
		return obj, err
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// setField sets obj[key] = val as JSON.parse would: "__proto__" is data,
// not the prototype.
func (v *vm) setField(obj *goja.Object, key string, val goja.Value) {
	if key == "__proto__" {
		obj.DefineDataProperty(key, val, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
		return
	}
	obj.Set(key, val)
}

// value converts a gjson result straight into JS values; see parse. With learn set
// (a response body), the string values of secret-looking fields are given
// to the redactor on the way, so the body is walked once.
func (v *vm) value(r gjson.Result, learn bool) goja.Value {
	switch r.Type {
	case gjson.Null:
		return goja.Null()
	case gjson.False:
		return v.rt.ToValue(false)
	case gjson.True:
		return v.rt.ToValue(true)
	case gjson.Number:
		if i, err := strconv.ParseInt(r.Raw, 10, 64); err == nil && i > -1<<53 && i < 1<<53 {
			return v.rt.ToValue(i)
		}
		return v.rt.ToValue(r.Num)
	case gjson.String:
		return v.rt.ToValue(r.Str)
	}
	if r.IsArray() {
		var items []any
		r.ForEach(func(_, el gjson.Result) bool {
			items = append(items, v.value(el, learn))
			return true
		})
		return v.rt.NewArray(items...)
	}
	obj := v.rt.NewObject()
	r.ForEach(func(k, el gjson.Result) bool {
		key := k.String()
		if learn && el.Type == gjson.String && redact.SecretKey(key) {
			v.in.redact.Learn(el.Str)
		}
		v.setField(obj, key, v.value(el, learn))
		return true
	})
	return obj
}

// toJSON is JSON.stringify(val); undefined becomes null.
func (v *vm) toJSON(val goja.Value) (json.RawMessage, error) {
	if val == nil || goja.IsUndefined(val) {
		return json.RawMessage("null"), nil
	}
	if raw, ok := primitiveJSON(val); ok {
		return raw, nil
	}
	s, err := v.stringify(goja.Undefined(), val)
	if err != nil {
		return nil, v.in.jsError("JSON.stringify", err)
	}
	if goja.IsUndefined(s) {
		return json.RawMessage("null"), nil
	}
	return json.RawMessage(s.String()), nil
}

// storable is JSON.stringify for storeValue: functions, symbols, cycles and
// BigInts are errors naming the key.
func (v *vm) storable(key string, val goja.Value) (json.RawMessage, error) {
	if val == nil || goja.IsUndefined(val) {
		return nil, fmt.Errorf("storeValue(%q): undefined cannot be stored; use removeValue(%q)", key, key)
	}
	if _, ok := goja.AssertFunction(val); ok {
		return nil, fmt.Errorf("storeValue(%q): a function cannot be stored", key)
	}
	if raw, ok := primitiveJSON(val); ok {
		return raw, nil
	}
	s, err := v.stringify(goja.Undefined(), val, v.replacer)
	if err != nil {
		var ex *goja.Exception
		if errors.As(err, &ex) {
			return nil, fmt.Errorf("storeValue(%q): the value is not JSON-serialisable: %s", key, ex.Value().String())
		}
		return nil, fmt.Errorf("storeValue(%q): %w", key, err)
	}
	if goja.IsUndefined(s) {
		return nil, fmt.Errorf("storeValue(%q): the value is not JSON-serialisable", key)
	}
	return json.RawMessage(s.String()), nil
}

// primitiveJSON encodes strings, finite numbers, booleans and null
// without JSON.stringify; ok is false for anything else.
func primitiveJSON(val goja.Value) (json.RawMessage, bool) {
	if _, isObj := val.(*goja.Object); isObj {
		return nil, false
	}
	if goja.IsNull(val) {
		return json.RawMessage("null"), true
	}
	// ExportType, unlike Export, boxes nothing; nor do the typed encoders.
	switch val.ExportType() {
	case stringType:
		return binding.StringJSON(val.String()), true
	case boolType:
		if val.ToBoolean() {
			return json.RawMessage("true"), true
		}
		return json.RawMessage("false"), true
	case int64Type:
		return strconv.AppendInt(make([]byte, 0, 20), val.ToInteger(), 10), true
	case float64Type:
		f := val.ToFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return binding.NumberJSON(f), true
	}
	return nil, false
}

var (
	stringType  = reflect.TypeOf("")
	boolType    = reflect.TypeOf(false)
	int64Type   = reflect.TypeOf(int64(0))
	float64Type = reflect.TypeOf(float64(0))
)

// --- engine.Scope ---

// Token implements engine.TokenSource: the instance's OAuth2 tokens. It
// runs off the loop and touches no runtime state.
func (v *vm) Token(ctx context.Context, spec engine.TokenSpec, stale string) (string, error) {
	return v.in.tokens().Token(ctx, spec, stale)
}

// Learn implements engine.Learner.
func (v *vm) Learn(secret string) { v.in.redact.Learn(secret) }

// Logger implements engine.Logging.
func (v *vm) Logger() *slog.Logger { return v.in.log }

// Lookup implements engine.Scope: params, inputs, appsmith.store.KEY… and
// QUERY.data… resolve without running JavaScript. A value read through a
// secret-named key (<<appsmith.store.accesstoken>>), or nested under a
// secret-named field, is learned by the redactor: it is about to be sent,
// and an error that echoes the request must not print it.
func (v *vm) Lookup(root string, keys []string, params any) (any, bool, error) {
	val, ok, err := v.lookup(root, keys, params)
	if ok && err == nil && val != nil {
		v.learnRead(keys, val)
	}
	return val, ok, err
}

func (v *vm) learnRead(keys []string, val any) {
	secret := len(keys) > 0 && redact.SecretKey(keys[len(keys)-1])
	switch x := val.(type) {
	case string:
		if secret {
			v.in.redact.Learn(x)
		}
	case json.RawMessage:
		if secret && len(x) > 0 && x[0] == '"' {
			var s string
			if json.Unmarshal(x, &s) == nil {
				v.in.redact.Learn(s)
			}
		}
		v.in.redact.LearnJSON(x)
	}
}

func (v *vm) lookup(root string, keys []string, params any) (any, bool, error) {
	switch root {
	case "params":
		if jp, ok := params.(goja.Value); ok {
			return v.walkJS(jp, keys), true, nil
		}
		return walk(params, keys), true, nil
	case "inputs":
		return walk(v.in.opts.Inputs, keys), true, nil
	case "appsmith":
		if len(keys) < 2 || keys[0] != "store" {
			return nil, false, nil
		}
		raw, err := v.in.session.Get(v.ctx(), keys[1])
		if errors.Is(err, engine.ErrNotFound) {
			return engine.Undefined, true, nil
		}
		if err != nil {
			return nil, true, err
		}
		return jsonPath(raw, keys[2:]), true, nil
	}
	q, ok := v.queries[root]
	if !ok || len(keys) == 0 || keys[0] != "data" {
		return nil, false, nil
	}
	switch {
	case q.last == nil:
		return nil, true, nil
	case q.last.Kind == engine.BodyJSON:
		return jsonPath(q.last.DataJSON(), keys[1:]), true, nil
	case len(keys) == 1:
		return q.last.DataJSON(), true, nil
	}
	return nil, false, nil
}

// Eval implements engine.Scope.
func (v *vm) Eval(expr engine.Expr, params any) (any, error) {
	p, ok := expr.(programmer)
	if !ok {
		return nil, fmt.Errorf("binding %q was not compiled for JavaScript", expr.String())
	}
	prog := p.Program()
	fn, ok := v.evals[prog]
	if !ok {
		f, err := v.rt.RunProgram(prog)
		if err != nil {
			return nil, err
		}
		fn, _ = goja.AssertFunction(f)
		v.evals[prog] = fn
	}
	var pv goja.Value
	switch p := params.(type) {
	case goja.Value:
		pv = p
	case nil:
		// this.params is an object even when the query got none, so that
		// <<this.params.scope ?? 'read'>> works.
		pv = v.rt.NewObject()
	default:
		pv = v.rt.ToValue(params)
	}
	this := v.rt.NewObject()
	this.Set("params", pv)
	res, err := fn(this, pv)
	if err != nil {
		// The binding's own position is added by binding.Expr; goja's
		// (inside our wrapper) would only mislead.
		var ex *goja.Exception
		if errors.As(err, &ex) {
			return nil, errors.New(v.in.redact.String(ex.Value().String()))
		}
		return nil, v.in.jsError("binding "+strconv.Quote(expr.String()), err)
	}
	return res.Export(), nil
}

// walkJS follows keys through a JS value and exports only the value found.
func (v *vm) walkJS(val goja.Value, keys []string) any {
	for _, k := range keys {
		obj, ok := val.(*goja.Object)
		if !ok {
			return engine.Undefined
		}
		val = obj.Get(k)
		if val == nil {
			return engine.Undefined
		}
	}
	if goja.IsUndefined(val) {
		return engine.Undefined
	}
	return val.Export()
}

// walk follows keys through exported JS values; a missing key is
// engine.Undefined.
func walk(v any, keys []string) any {
	for _, k := range keys {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				return engine.Undefined
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return engine.Undefined
			}
			v = c[i]
		default:
			return engine.Undefined
		}
	}
	return v
}

// jsonPath follows keys through JSON text; a missing key is nil.
func jsonPath(raw []byte, keys []string) any {
	if len(keys) == 0 {
		return json.RawMessage(raw)
	}
	esc := make([]string, len(keys))
	for i, k := range keys {
		esc[i] = gjson.Escape(k)
	}
	r := gjson.GetBytes(raw, strings.Join(esc, "."))
	if !r.Exists() {
		return engine.Undefined
	}
	return json.RawMessage(r.Raw)
}
