// Conversions between JSON and JS values, bounded in depth.

package js

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/dop251/goja"
	"github.com/tidwall/gjson"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/internal/redact"
)

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
				v.redact.Learn(el.String())
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
			v.redact.Learn(el.Str)
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
		return nil, v.jsError("JSON.stringify", err)
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
