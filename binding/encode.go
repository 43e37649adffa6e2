package binding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/modrun/modrun/engine"
)

// Text returns v as text, the way JavaScript's String(v) would, except
// that undefined and null are empty and objects and arrays are JSON.
func Text(v any) string {
	if engine.IsUndefined(v) {
		return ""
	}
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return formatNumber(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case json.RawMessage:
		if len(v) > 0 && v[0] == '"' {
			var s string
			if json.Unmarshal(v, &s) == nil {
				return s
			}
		}
		if string(v) == "null" {
			return ""
		}
		return string(v)
	default:
		b, err := JSON(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// formatNumber is JavaScript's String(f).
func formatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return string(appendJSONFloat(nil, f))
}

// JSON returns v's JSON encoding, as JSON.stringify would (undefined is
// null; HTML characters are not escaped).
func JSON(v any) ([]byte, error) {
	if engine.IsUndefined(v) {
		return []byte("null"), nil
	}
	switch v := v.(type) {
	case nil:
		return []byte("null"), nil
	case json.RawMessage:
		if len(v) == 0 {
			return []byte("null"), nil
		}
		return v, nil
	case float64:
		return NumberJSON(v), nil
	case int64:
		return strconv.AppendInt(make([]byte, 0, 20), v, 10), nil
	case int:
		return strconv.AppendInt(make([]byte, 0, 20), int64(v), 10), nil
	case bool:
		if v {
			return []byte("true"), nil
		}
		return []byte("false"), nil
	case string:
		return StringJSON(v), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// StringJSON is JSON(s) for a string, without boxing s in an interface.
func StringJSON(s string) []byte { return appendJSONString(make([]byte, 0, len(s)+2), s) }

// NumberJSON is JSON(f) for a number: NaN and ±Inf are null, as with
// JSON.stringify.
func NumberJSON(f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null")
	}
	return appendJSONFloat(make([]byte, 0, 24), f)
}

// appendJSONFloat formats a finite f as JavaScript does (and
// encoding/json): plain notation from 1e-6 to 1e21, exponent notation
// outside it (1e-7, not Go's 1e-07), and -0 as 0.
func appendJSONFloat(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0') // also -0
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires (and U+2028/U+2029, which some JavaScript parsers reject).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONEscaped(dst, s)
	return append(dst, '"')
}

func appendJSONEscaped(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0xe2 {
			continue
		}
		if c == 0xe2 {
			if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\u202`...)
				dst = append(dst, hex[s[i+2]&0xf])
				i += 2
				start = i + 1
			}
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// jsonContext is where a binding stands in a JSON text template.
type jsonContext int

const (
	jsonValue  jsonContext = iota // a bare JSON value: {"a": <<x>>}
	jsonQuoted                    // a whole string value: {"a": "<<x>>"}
	jsonInside                    // part of a string or a key: "Bearer <<x>>"
)

// JSONTemplate is a JSON text with bindings (Appsmith's string body).
type JSONTemplate struct {
	lits []string // literal pieces, quotes around jsonQuoted bindings removed
	exps []*Expr
	ctxs []jsonContext
}

// ParseJSON parses a JSON text template and checks that it is valid JSON
// whatever the bindings' values are.
func ParseJSON(src string, pos Pos, names Names) (*JSONTemplate, error) {
	t, err := Parse(src, pos, names)
	if err != nil {
		return nil, err
	}
	jt := &JSONTemplate{}
	inString, escaped := false, false
	openAt := -1 // offset in lit of the quote that opened the current string
	var lit strings.Builder
	parts := t.Parts
	for i, p := range parts {
		if p.Expr == nil {
			for j := 0; j < len(p.Lit); j++ {
				c := p.Lit[j]
				switch {
				case !inString:
					inString = c == '"'
					openAt = lit.Len() + j
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
				}
			}
			lit.WriteString(p.Lit)
			continue
		}
		ctx := jsonValue
		if inString {
			ctx = jsonInside
			prev := lit.String()
			openedHere := openAt == len(prev)-1 && i > 0 && parts[i-1].Expr == nil
			if openedHere && i+1 < len(parts) && parts[i+1].Expr == nil && strings.HasPrefix(parts[i+1].Lit, `"`) &&
				!strings.HasPrefix(strings.TrimLeft(parts[i+1].Lit[1:], " \t\r\n"), ":") {
				ctx = jsonQuoted
				lit.Reset()
				lit.WriteString(strings.TrimSuffix(prev, `"`))
				parts[i+1].Lit = parts[i+1].Lit[1:]
				inString = false
			}
		}
		jt.lits = append(jt.lits, lit.String())
		lit.Reset()
		openAt = -1
		jt.exps = append(jt.exps, p.Expr)
		jt.ctxs = append(jt.ctxs, ctx)
	}
	jt.lits = append(jt.lits, lit.String())

	// Fill every binding with a placeholder and check the structure.
	var probe []byte
	for i := range jt.exps {
		probe = append(probe, jt.lits[i]...)
		if jt.ctxs[i] == jsonInside {
			probe = append(probe, 'x')
		} else {
			probe = append(probe, '0')
		}
	}
	probe = append(probe, jt.lits[len(jt.lits)-1]...)
	if err := json.Unmarshal(probe, new(any)); err != nil {
		return nil, engine.Errorf(pos.File, pos.Line, pos.Col, "the JSON body is not valid JSON (bindings aside): %v", err)
	}
	return jt, nil
}

// Render substitutes the bindings' values.
func (jt *JSONTemplate) Render(scope engine.Scope, params any) ([]byte, error) {
	var out []byte
	for i, e := range jt.exps {
		out = append(out, jt.lits[i]...)
		v, err := e.Eval(scope, params)
		if err != nil {
			return nil, err
		}
		if jt.ctxs[i] == jsonInside {
			out = appendJSONEscaped(out, Text(v))
			continue
		}
		b, err := JSON(v)
		if err != nil {
			return nil, e.Error(err)
		}
		out = append(out, b...)
	}
	return append(out, jt.lits[len(jt.lits)-1]...), nil
}

// URL renders a URL template: a binding at the very start (the base URL)
// is inserted as is; later bindings are path-escaped before the first ?
// and query-escaped after it. The origin (scheme, host, port) is what
// the template's text up to its first later binding makes it: a value
// bound after that point can never move the request to another host
// (DESIGN §17).
func (t *Template) URL(scope engine.Scope, params any) (*url.URL, error) {
	var b strings.Builder
	inQuery := false
	origin := -1 // b's length where the origin is complete: before the first later binding
	for i, p := range t.Parts {
		if p.Expr == nil {
			b.WriteString(p.Lit)
			if strings.ContainsAny(p.Lit, "?#") {
				inQuery = true
			}
			continue
		}
		v, err := p.Expr.Eval(scope, params)
		if err != nil {
			return nil, err
		}
		s := Text(v)
		if i > 0 && origin < 0 {
			origin = b.Len()
		}
		switch {
		case i == 0:
			b.WriteString(s)
		case inQuery:
			b.WriteString(url.QueryEscape(s))
		default:
			writePathValue(&b, s)
		}
	}
	u, err := url.Parse(b.String())
	if err != nil {
		// url.Error quotes the whole URL, query string (tokens) and all:
		// name the template and the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("URL %q is not valid once bound: %v", t.Src, err)
	}
	if origin >= 0 {
		base, err := url.Parse(b.String()[:origin])
		if err != nil || base.Host != u.Host || base.Scheme != u.Scheme || u.User != nil {
			return nil, fmt.Errorf("URL %q: a value bound after the host would change where the request goes; end the base with a \"/\" before it", t.Src)
		}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: want an http or https URL once bound (is the base URL input set?)", t.Src)
	}
	return u, nil
}

// writePathValue writes a value bound into a URL's path: each segment
// path-escaped (and @, \ too, so that nothing can read as a host), "."
// and ".." segments escaped whole so that they cannot walk the path, a
// "/" inside the value kept, but never one that would make "//".
func writePathValue(b *strings.Builder, s string) {
	for i, seg := range strings.Split(s, "/") {
		if i > 0 {
			if strings.HasSuffix(b.String(), "/") {
				b.WriteString("%2F")
			} else {
				b.WriteByte('/')
			}
		}
		switch seg {
		case ".", "..":
			b.WriteString(strings.ReplaceAll(seg, ".", "%2E"))
		default:
			b.WriteString(strings.ReplaceAll(url.PathEscape(seg), "@", "%40"))
		}
	}
}
