package js

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/dop251/goja"
	"github.com/tidwall/gjson"

	"github.com/modrun/modrun/engine"
)

// installQuery exposes a query module as an object with run(params),
// data and responseMeta, like Appsmith's.
func (v *vm) installQuery(q engine.Query) {
	obj := v.rt.NewObject()
	qs := &queryState{mod: q, obj: obj}
	obj.Set("name", q.Name())
	obj.Set("data", goja.Undefined())
	// responseMeta is built when read, not for every response.
	var meta goja.Value
	var metaOf *engine.Response
	obj.DefineAccessorProperty("responseMeta", v.rt.ToValue(func(goja.FunctionCall) goja.Value {
		if qs.last == nil {
			return goja.Undefined()
		}
		if metaOf != qs.last {
			meta, metaOf = v.meta(qs.last), qs.last
		}
		return meta
	}), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	obj.Set("run", func(call goja.FunctionCall) goja.Value { return v.runQuery(qs, call) })
	v.queries[q.Name()] = qs
	v.modules[q.Name()] = obj
	v.rt.Set(q.Name(), obj)
}

// runQuery is QUERY.run(params), or Appsmith's legacy
// QUERY.run(onSuccess, onError, params).
func (v *vm) runQuery(qs *queryState, call goja.FunctionCall) goja.Value {
	var onSuccess, onError goja.Callable
	params := call.Argument(0)
	if f, ok := goja.AssertFunction(params); ok {
		onSuccess = f
		onError, _ = goja.AssertFunction(call.Argument(1))
		params = call.Argument(2)
	}
	promise, resolve, reject := v.rt.NewPromise()
	stack := v.rt.CaptureCallStack(8, nil)
	// params stay a JS value: Lookup walks only the keys a binding names,
	// instead of exporting the whole object to Go first.
	var p any
	if !goja.IsUndefined(params) && !goja.IsNull(params) {
		p = jsParams{params}
	}
	req, err := qs.mod.Bind(v, p)
	if err != nil {
		errObj := v.newError(err, stack)
		if onError != nil {
			onError(goja.Undefined(), errObj)
		}
		v.check(reject(errObj))
		return v.rt.ToValue(promise)
	}
	var resp *engine.Response
	v.await(func(ctx context.Context) (json.RawMessage, error) {
		var err error
		resp, err = req.Send(ctx)
		return nil, err
	}, func(_ json.RawMessage, err error) {
		var re *engine.ResponseError
		if errors.As(err, &re) && re.Response != nil {
			resp = re.Response
		}
		if v.in.debug {
			if resp != nil {
				v.in.log.Debug("query", "module", qs.mod.Name(), "status", resp.StatusCode, "ms", resp.Duration.Milliseconds(), "bytes", len(resp.Body))
			} else {
				v.in.log.Debug("query failed", "module", qs.mod.Name(), "error", err)
			}
		}
		var data goja.Value = goja.Undefined()
		if resp != nil {
			qs.last = resp
			switch resp.Kind {
			case engine.BodyJSON:
				data = v.value(gjson.ParseBytes(resp.Body), true)
			case engine.BodyText:
				data = v.rt.ToValue(string(resp.Body))
			default:
				data = v.rt.ToValue(base64.StdEncoding.EncodeToString(resp.Body))
			}
			qs.obj.Set("data", data)
		}
		if err != nil {
			errObj := v.newError(err, stack)
			errObj.Set("data", data)
			if resp != nil {
				errObj.Set("statusCode", resp.StatusCode)
				errObj.Set("responseMeta", v.meta(resp))
			}
			if onError != nil {
				if _, err := onError(goja.Undefined(), errObj); err != nil {
					v.in.log.Error("uncaught exception in onError", "query", qs.mod.Name(), "error", v.in.jsError("onError", err))
				}
			}
			v.check(reject(errObj))
			return
		}
		if onSuccess != nil {
			if _, err := onSuccess(goja.Undefined(), data, qs.obj.Get("responseMeta")); err != nil {
				v.in.log.Error("uncaught exception in onSuccess", "query", qs.mod.Name(), "error", v.in.jsError("onSuccess", err))
			}
		}
		v.check(resolve(data))
	})
	return v.rt.ToValue(promise)
}

func (v *vm) meta(r *engine.Response) goja.Value {
	m := r.Meta()
	obj := v.rt.NewObject()
	obj.Set("statusCode", m.StatusCode)
	obj.Set("headers", m.Headers) // wrapped lazily by goja, not copied
	obj.Set("isExecutionSuccess", m.IsExecutionSuccess)
	obj.Set("durationMs", m.DurationMs)
	return obj
}
