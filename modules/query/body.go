// Request bodies, compiled once and rendered per call: JSON (each bound
// value encoded as JSON, never spliced in as text), form, multipart, raw.

package query

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"mime/multipart"
	"net/url"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
)

// body renders a request body.
// learn is told the values bound to secret-named fields.
type body interface {
	render(scope engine.Scope, params any, learn func(string)) (data []byte, contentType string, err error)
}

type jsonText struct{ t *binding.JSONTemplate }

func (b *jsonText) render(scope engine.Scope, params any, _ func(string)) ([]byte, string, error) {
	out, err := b.t.Render(scope, params)
	return out, "application/json", err
}

type jsonKind int

const (
	jsonLiteral jsonKind = iota // fixed JSON
	jsonValue                   // one binding: its value's JSON encoding
	jsonString                  // a string with bindings: JSON string of the text
	jsonObject
	jsonArray
)

type jsonNode struct {
	kind   jsonKind
	secret bool // the value of a secret-named field: learned when bound
	lit    []byte
	expr   *binding.Expr
	tmpl   *binding.Template
	keys   []*binding.Template
	kids   []*jsonNode
}

type jsonTree struct{ root *jsonNode }

func (b *jsonTree) render(scope engine.Scope, params any, learn func(string)) ([]byte, string, error) {
	out, err := b.root.append(nil, scope, params, learn)
	return out, "application/json", err
}

func (n *jsonNode) append(dst []byte, scope engine.Scope, params any, learn func(string)) ([]byte, error) {
	switch n.kind {
	case jsonLiteral:
		return append(dst, n.lit...), nil
	case jsonValue:
		v, err := n.expr.Eval(scope, params)
		if err != nil {
			return nil, err
		}
		if s, ok := v.(string); ok && n.secret {
			learn(s)
		}
		b, err := binding.JSON(v)
		if err != nil {
			return nil, n.expr.Error(err)
		}
		return append(dst, b...), nil
	case jsonString:
		s, err := n.tmpl.Text(scope, params)
		if err != nil {
			return nil, err
		}
		if n.secret {
			learn(s)
		}
		return append(dst, binding.StringJSON(s)...), nil
	case jsonObject:
		dst = append(dst, '{')
		for i, k := range n.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			ks, err := k.Text(scope, params)
			if err != nil {
				return nil, err
			}
			dst = append(append(dst, binding.StringJSON(ks)...), ':')
			if dst, err = n.kids[i].append(dst, scope, params, learn); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	default:
		dst = append(dst, '[')
		for i, k := range n.kids {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = k.append(dst, scope, params, learn); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
}

type formBody struct{ fields []field }

func (b *formBody) render(scope engine.Scope, params any, learn func(string)) ([]byte, string, error) {
	out, err := appendForm(nil, b.fields, scope, params, learn)
	return out, "application/x-www-form-urlencoded", err
}

// appendForm appends fields to dst as name=value pairs joined by '&',
// query-escaped: a form body, or the query string after dst's own.
func appendForm(dst []byte, fields []field, scope engine.Scope, params any, learn func(string)) ([]byte, error) {
	for _, f := range fields {
		v, defined, err := f.tmpl.Field(scope, params)
		if err != nil {
			return nil, err
		}
		if !defined {
			continue // undefined: left out, not sent empty
		}
		if f.secret {
			learn(v)
		}
		if len(dst) > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, url.QueryEscape(f.name)...)
		dst = append(dst, '=')
		dst = append(dst, url.QueryEscape(v)...)
	}
	return dst, nil
}

type multipartBody struct{ fields []field }

func (b *multipartBody) render(scope engine.Scope, params any, learn func(string)) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	var rnd [16]byte
	rand.Read(rnd[:])
	if err := w.SetBoundary("modrun-" + hex.EncodeToString(rnd[:])); err != nil {
		return nil, "", err
	}
	for _, f := range b.fields {
		v, defined, err := f.tmpl.Field(scope, params)
		if err != nil {
			return nil, "", err
		}
		if !defined {
			continue
		}
		if f.secret {
			learn(v)
		}
		if err := w.WriteField(f.name, v); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

type rawBody struct {
	t           *binding.Template
	contentType string
}

func (b *rawBody) render(scope engine.Scope, params any, _ func(string)) ([]byte, string, error) {
	s, err := b.t.Text(scope, params)
	return []byte(s), b.contentType, err
}
