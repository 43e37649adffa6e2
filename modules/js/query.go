package js

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/dop251/goja"

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
	obj.Set("run", func(call goja.FunctionCall) goja.Value { return v.runQuery(qs, call, false) })
	// request(params) resolves to {data, responseMeta} of this call: the
	// module's data and responseMeta are its last response, shared by
	// concurrent calls.
	obj.Set("request", func(call goja.FunctionCall) goja.Value { return v.runQuery(qs, call, true) })
	// clear() forgets the last response (Appsmith's Query.clear()): data
	// and responseMeta are undefined again. It resolves at once.
	obj.Set("clear", func(goja.FunctionCall) goja.Value {
		obj.Set("data", goja.Undefined())
		qs.last = nil
		return v.resolved(goja.Undefined())
	})
	v.queries[q.Name()] = qs
	v.modules[q.Name()] = obj
	v.rt.Set(q.Name(), obj)
}

// runQuery is QUERY.run(params), or Appsmith's legacy
// QUERY.run(onSuccess, onError, params); with withMeta, QUERY.request.
func (v *vm) runQuery(qs *queryState, call goja.FunctionCall, withMeta bool) goja.Value {
	q := &queryCall{v: v, qs: qs, withMeta: withMeta}
	params := call.Argument(0)
	if f, ok := goja.AssertFunction(params); ok && !withMeta {
		q.onSuccess = f
		q.onError, _ = goja.AssertFunction(call.Argument(1))
		params = call.Argument(2)
	}
	if r := v.h.serving(); r != nil && r.query == nil && r.target == qs.mod.Name() && len(r.steps) == 0 {
		r.query = q // the run of this query target: its body is the result
	}
	var promise *goja.Promise
	promise, q.resolve, q.reject = v.rt.NewPromise()
	q.stack = v.rt.CaptureCallStack(8, nil)
	// params stay a JS value: Lookup walks only the keys a binding names,
	// instead of exporting the whole object to Go first.
	var p any
	if !goja.IsUndefined(params) && !goja.IsNull(params) {
		p = params
	}
	var err error
	if q.req, err = qs.mod.Bind(v, p); err != nil {
		q.fail(err, nil, nil)
		return v.rt.ToValue(promise)
	}
	v.h.await(q)
	return v.rt.ToValue(promise)
}

// queryCall is one QUERY.run in flight: the request off the loop, the
// response and the promise on it.
type queryCall struct {
	v                  *vm
	qs                 *queryState
	req                engine.Request
	resp               *engine.Response
	stack              []goja.StackFrame // where run() was called, for errors
	onSuccess, onError goja.Callable     // the legacy callbacks, if given
	withMeta           bool              // request(): resolve to {data, responseMeta}
	resolve, reject    func(any) error
}

// work sends the request; it runs off the loop.
func (q *queryCall) work(ctx context.Context) error {
	var err error
	q.resp, err = q.req.Send(ctx)
	return err
}

// deliver settles the promise with the response; it runs on the loop.
func (q *queryCall) deliver(err error) {
	v, qs, resp := q.v, q.qs, q.resp
	if err != nil {
		if re := (*engine.ResponseError)(nil); errors.As(err, &re) && re.Response != nil {
			resp = re.Response
		}
	}
	if v.debug {
		if resp != nil {
			v.log.Debug("query", "module", qs.mod.Name(), "status", resp.StatusCode, "ms", resp.Duration.Milliseconds(), "bytes", len(resp.Body))
		} else {
			v.log.Debug("query failed", "module", qs.mod.Name(), "error", err)
		}
	}
	if o := v.opts.Observer; o != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		o.Query(qs.mod.Name(), status)
	}
	data := goja.Undefined()
	if resp != nil {
		qs.last = resp
		switch resp.Kind {
		case engine.BodyJSON:
			var perr error
			if len(resp.Body) == 0 {
				data = goja.Null()
			} else if data, perr = v.parse(resp.Body, true); perr != nil {
				data = goja.Undefined()
				if err == nil {
					err = &engine.ResponseError{Module: qs.mod.Name(), Response: resp, Cause: "response body: " + perr.Error()}
				}
			}
		case engine.BodyText:
			data = v.rt.ToValue(string(resp.Body))
		default:
			data = v.rt.ToValue(base64.StdEncoding.EncodeToString(resp.Body))
		}
		qs.obj.Set("data", data)
	}
	if err != nil {
		q.fail(err, resp, data)
		return
	}
	if q.onSuccess != nil {
		if _, err := q.onSuccess(goja.Undefined(), data, qs.obj.Get("responseMeta")); err != nil {
			v.log.Error("uncaught exception in onSuccess", "query", qs.mod.Name(), "error", v.jsError("onSuccess", err))
		}
	}
	if q.withMeta {
		res := v.rt.NewObject()
		res.Set("data", data)
		res.Set("responseMeta", v.meta(resp))
		v.check(q.resolve(res))
		return
	}
	v.check(q.resolve(data))
}

// fail rejects the promise with an error object — carrying data (nil:
// none, the request was never sent) and the response, if there is one —
// after calling the legacy onError.
func (q *queryCall) fail(err error, resp *engine.Response, data goja.Value) {
	v := q.v
	errObj := v.newError(err, q.stack)
	if data != nil {
		errObj.Set("data", data)
	}
	if resp != nil {
		errObj.Set("statusCode", resp.StatusCode)
		errObj.Set("responseMeta", v.meta(resp))
	}
	if q.onError != nil {
		if _, err := q.onError(goja.Undefined(), errObj); err != nil {
			v.log.Error("uncaught exception in onError", "query", q.qs.mod.Name(), "error", v.jsError("onError", err))
		}
	}
	v.check(q.reject(errObj))
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
