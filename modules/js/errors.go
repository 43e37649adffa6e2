package js

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/engine"
)

// Error is an uncaught JavaScript exception or rejection.
type Error struct {
	Target  string // the function called: "auth.refreshAccessToken"
	Message string // String(thrown value): "Error: not logged in"
	Stack   string // the JS stack, one "at fn (file:line:col)" per line
	Cause   error  // the Go error behind it, such as *engine.ResponseError
}

func (e *Error) Error() string {
	s := e.Target + ": " + e.Message
	if strings.HasPrefix(e.Message, e.Target+": ") {
		s = e.Message
	}
	if e.Stack != "" {
		s += "\n" + e.Stack
	}
	return s
}

// Unwrap returns the Go cause, if any.
func (e *Error) Unwrap() error { return e.Cause }

// jsError converts an error returned by a goja call.
func (v *vm) jsError(target string, err error) error {
	var (
		ex  *goja.Exception
		ie  *goja.InterruptedError
		soe *goja.StackOverflowError
	)
	switch {
	case errors.As(err, &ie):
		if v, ok := ie.Value().(error); ok && errors.Is(v, engine.ErrClosed) {
			return fmt.Errorf("%s: instance %w", target, engine.ErrClosed)
		}
		return fmt.Errorf("%s: %w", target, engine.ErrDeadline)
	case errors.As(err, &soe):
		v.overflowed = true
		return fmt.Errorf("%s: maximum call stack size (%d) exceeded: unbounded recursion?", target, v.opts.MaxCallStack)
	case errors.As(err, &ex):
		return v.rejection(target, ex.Value())
	}
	return fmt.Errorf("%s: %w", target, err)
}

// rejection converts a thrown or rejected JS value.
func (v *vm) rejection(target string, val goja.Value) error {
	e := &Error{Target: target}
	if obj, ok := val.(*goja.Object); ok {
		if gv := obj.Get(causeKey); gv != nil {
			if box, ok := gv.Export().(*causeBox); ok {
				e.Cause = box.err
			}
		}
		if st := obj.Get("stack"); st != nil && !goja.IsUndefined(st) {
			e.Stack = stackLines(st.String())
		}
	}
	switch {
	case val == nil:
		e.Message = "undefined"
	case e.Cause != nil:
		e.Message = e.Cause.Error() // a failed query: "refreshAPI: HTTP 400: invalid_grant"
	default:
		e.Message = val.String()
		// throw {code: 42}: its JSON, not "[object Object]".
		if obj, ok := val.(*goja.Object); ok && !isError(obj) {
			if raw, err := v.toJSON(obj); err == nil && string(raw) != "null" {
				e.Message = string(raw)
			}
		}
	}
	if _, ok := val.(*goja.Object); !ok {
		e.Message = "uncaught " + e.Message
	}
	e.Message = v.redact.String(e.Message)
	e.Stack = v.redact.String(e.Stack)
	return e
}

// stackLines keeps the "at …" lines of a JS stack, minus our wrappers.
func stackLines(stack string) string {
	var out []string
	for _, l := range strings.Split(stack, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "at ") || strings.Contains(l, "native") {
			continue
		}
		out = append(out, "    "+programCounter.ReplaceAllString(l, "$1"))
	}
	return strings.Join(out, "\n")
}

// programCounter is goja's bytecode offset after a frame's line:column,
// "m.js:3:15(12)": an internal counter that means nothing to an author
// (issue 32). The frame keeps file:line:col.
var programCounter = regexp.MustCompile(`(:\d+:\d+)\(\d+\)`)

// newError returns a JS Error with message msg whose stack is the JS call
// stack captured when the operation started, and which carries the Go
// error cause (found again by rejection).
func (v *vm) newError(cause error, stack []goja.StackFrame) *goja.Object {
	msg := v.redact.String(cause.Error())
	obj, err := v.rt.New(v.rt.Get("Error"), v.rt.ToValue(msg))
	if err != nil {
		return v.rt.NewGoError(cause)
	}
	// The Go cause rides along for rejection, in a box JS can see but
	// not open: goja would expose a Go value's exported fields and
	// methods (e.value.Response.Header.Write(null) panicked inside).
	obj.DefineDataProperty(causeKey, v.rt.ToValue(&causeBox{cause}), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
	if len(stack) > 0 {
		var b bytes.Buffer
		b.WriteString("Error: " + msg)
		for i := range stack {
			b.WriteString("\n\tat ")
			stack[i].Write(&b)
		}
		obj.Set("stack", b.String())
	}
	return obj
}

// causeKey names the hidden property of an error object made by newError
// that holds its Go cause.
const causeKey = "__modrunCause"

// causeBox holds a Go error for JS without showing it: no exported field
// or method for goja to wrap.
type causeBox struct{ err error }

// isError reports whether obj is an Error (or a subclass: TypeError…).
func isError(obj *goja.Object) bool {
	for o := obj; o != nil; o = o.Prototype() {
		if o.ClassName() == "Error" {
			return true
		}
	}
	return false
}
