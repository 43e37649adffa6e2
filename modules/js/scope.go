// The vm as an engine.Scope: what a query module run from JS reads
// (tokens, the store, inputs, expressions) and where it logs.

package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/dop251/goja"
	"github.com/tidwall/gjson"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
)

// Token implements engine.TokenSource: the instance's OAuth2 tokens. It
// runs off the loop and touches no runtime state.
func (v *vm) Token(ctx context.Context, spec engine.TokenSpec, stale string) (string, error) {
	return v.h.tokenClient().Token(ctx, spec, stale)
}

// Learn implements engine.Learner.
func (v *vm) Learn(secret string) { v.redact.Learn(secret) }

// Logger implements engine.Logging.
func (v *vm) Logger() *slog.Logger { return v.log }

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
			v.redact.Learn(x)
		}
	case json.RawMessage:
		if secret && len(x) > 0 && x[0] == '"' {
			var s string
			if json.Unmarshal(x, &s) == nil {
				v.redact.Learn(s)
			}
		}
		v.redact.LearnJSON(x)
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
		return walk(v.opts.Inputs, keys), true, nil
	case "appsmith":
		if len(keys) < 2 || keys[0] != "store" {
			return nil, false, nil
		}
		raw, err := v.session.Get(v.ctx(), keys[1])
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
			return nil, errors.New(v.redact.String(ex.Value().String()))
		}
		return nil, v.jsError("binding "+strconv.Quote(expr.String()), err)
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
