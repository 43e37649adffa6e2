package query

import (
	"net/http"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
	"github.com/modrun/modrun/internal/yamlfile"
)

// Defaults of a query module's limits.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 10 << 20
	DefaultMaxRedirects     = 5
)

// file is NAME.query.yaml as written.
type file struct {
	Method           string     `yaml:"method"`
	URL              yaml.Node  `yaml:"url"`
	Headers          yaml.Node  `yaml:"headers"`
	Query            yaml.Node  `yaml:"query"`
	Body             *bodyFile  `yaml:"body"`
	Auth             *authFile  `yaml:"auth"`
	Timeout          string     `yaml:"timeout"`
	MaxResponseBytes int64      `yaml:"maxResponseBytes"`
	MaxRedirects     *int       `yaml:"maxRedirects"`
	Retry            *retryFile `yaml:"retry"`
}

type retryFile struct {
	Attempts int    `yaml:"attempts"`
	Backoff  string `yaml:"backoff"`
	On       []int  `yaml:"on"`
}

type bodyFile struct {
	JSON        yaml.Node `yaml:"json"`
	Form        yaml.Node `yaml:"form"`
	Multipart   yaml.Node `yaml:"multipart"`
	Raw         yaml.Node `yaml:"raw"`
	ContentType string    `yaml:"contentType"`
}

type authFile struct {
	Basic *struct {
		Username yaml.Node `yaml:"username"`
		Password yaml.Node `yaml:"password"`
	} `yaml:"basic"`
	Bearer yaml.Node `yaml:"bearer"`
	OAuth2 string    `yaml:"oauth2"`
}

// field is one name: template pair of a map (headers, query, form).
type field struct {
	name   string
	tmpl   *binding.Template
	secret bool // named like a secret and bound: learned when sent
}

// compiler turns a parsed file into a Module, collecting every problem.
type compiler struct {
	path  string
	names binding.Names
	pkg   *engine.PackageInfo
	errs  []error
}

func (c *compiler) errorf(n *yaml.Node, format string, args ...any) {
	c.errs = append(c.errs, yamlfile.NodeError(c.path, n, format, args...))
}

// fileErrorf records a problem of the file as a whole (no node to point at).
func (c *compiler) fileErrorf(format string, args ...any) {
	c.errs = append(c.errs, engine.Errorf(c.path, 0, 0, format, args...))
}

// template compiles a scalar node that may hold bindings.
func (c *compiler) template(n *yaml.Node, what string) *binding.Template {
	if n.Kind != yaml.ScalarNode {
		hint := ""
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle != 0 {
			hint = yamlfile.QuoteHint
		}
		c.errorf(n, "%s: expected a string, found %s%s", what, kindName(n), hint)
		return nil
	}
	t, err := binding.Parse(n.Value, c.pos(n), c.names)
	if err != nil {
		c.errs = append(c.errs, err)
		return nil
	}
	c.checkInputs(t)
	return t
}

func (c *compiler) pos(n *yaml.Node) binding.Pos {
	p := binding.Pos{File: c.path, Line: n.Line, Col: n.Column}
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		p.Quoted = true
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		p.Line++ // block scalars start on the next line
	}
	return p
}

// checkInputs flags inputs.NAME paths naming no input of the package.
func (c *compiler) checkInputs(t *binding.Template) {
	for _, p := range t.Parts {
		if p.Expr == nil {
			continue
		}
		root, keys, ok := p.Expr.Path()
		if !ok || root != "inputs" || len(keys) == 0 || c.pkg == nil {
			continue
		}
		if _, ok := c.pkg.Inputs[keys[0]]; !ok {
			c.errs = append(c.errs, engine.Errorf(p.Expr.File, p.Expr.Line, p.Expr.Col,
				"binding %q: package has no input %q (declare it under inputs: in package.yaml)", p.Expr.Src, keys[0]))
		}
	}
}

// fields compiles a mapping of names to templates, keeping its order.
func (c *compiler) fields(n *yaml.Node, what string) []field {
	if n.Kind == 0 {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(n, "%s: expected a mapping of names to values, found %s", what, kindName(n))
		return nil
	}
	var out []field
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			c.errorf(k, "%s: duplicate key %q", what, k.Value)
			continue
		}
		seen[k.Value] = true
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			v = &yaml.Node{Kind: yaml.ScalarNode, Value: "", Line: v.Line, Column: v.Column}
		}
		t := c.template(v, what+"."+k.Value)
		if t != nil {
			out = append(out, field{name: k.Value, tmpl: t, secret: !t.Static() && redact.SecretKey(k.Value)})
		}
	}
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a scalar"
	}
}

var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func (c *compiler) compile(f *file, name string) *Module {
	m := &Module{
		name:         name,
		span:         "query " + name,
		path:         c.path,
		method:       strings.ToUpper(f.Method),
		timeout:      DefaultTimeout,
		maxBytes:     DefaultMaxResponseBytes,
		maxRedirects: DefaultMaxRedirects,
	}
	if m.method == "" {
		m.method = http.MethodGet
	}
	if !methods[m.method] {
		c.fileErrorf("method %q: want one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS", f.Method)
	}
	if f.URL.Kind == 0 {
		c.fileErrorf("url is required")
	} else {
		m.url = c.template(&f.URL, "url")
	}
	m.headers = c.fields(&f.Headers, "headers")
	m.query = c.fields(&f.Query, "query")
	if f.Timeout != "" {
		d, err := time.ParseDuration(f.Timeout)
		if err != nil || d <= 0 {
			c.fileErrorf("timeout %q: want a positive duration such as 10s or 500ms", f.Timeout)
		}
		m.timeout = d
	}
	if f.MaxResponseBytes < 0 {
		c.fileErrorf("maxResponseBytes must be positive")
	} else if f.MaxResponseBytes > 0 {
		m.maxBytes = f.MaxResponseBytes
	}
	if f.MaxRedirects != nil {
		if *f.MaxRedirects < 0 {
			c.fileErrorf("maxRedirects must be 0 or more")
		}
		m.maxRedirects = *f.MaxRedirects
	}
	if f.Retry != nil {
		m.retry = c.compileRetry(f.Retry)
	}
	if f.Auth != nil {
		c.compileAuth(f.Auth, m)
	}
	if f.Body != nil {
		c.compileBody(f.Body, m)
	}
	return m
}

// Defaults of retry:.
var (
	DefaultRetryAttempts = 3
	DefaultRetryBackoff  = 200 * time.Millisecond
	DefaultRetryOn       = []int{429, 502, 503, 504}
)

func (c *compiler) compileRetry(r *retryFile) *retry {
	out := &retry{attempts: DefaultRetryAttempts, backoff: DefaultRetryBackoff, on: map[int]bool{}}
	switch {
	case r.Attempts < 0 || r.Attempts > 10:
		c.fileErrorf("retry.attempts %d: want 1 to 10 (the first try counts)", r.Attempts)
	case r.Attempts > 0:
		out.attempts = r.Attempts
	}
	if r.Backoff != "" {
		d, err := time.ParseDuration(r.Backoff)
		switch {
		case err != nil || d <= 0:
			c.fileErrorf("retry.backoff %q: want a positive duration such as 200ms", r.Backoff)
		case d > maxRetryWait:
			// No wait is longer; and doubled nine times, a longer one
			// would overflow.
			c.fileErrorf("retry.backoff %q: want at most %s (the longest wait between attempts)", r.Backoff, maxRetryWait)
		}
		out.backoff = d
	}
	on := r.On
	if len(on) == 0 {
		on = DefaultRetryOn
	}
	for _, code := range on {
		if code < 400 || code > 599 {
			c.fileErrorf("retry.on: %d is not an HTTP error status (400-599)", code)
		}
		out.on[code] = true
	}
	return out
}

func (c *compiler) compileBody(b *bodyFile, m *Module) {
	var given []string
	for _, k := range []struct {
		name string
		n    *yaml.Node
	}{{"json", &b.JSON}, {"form", &b.Form}, {"multipart", &b.Multipart}, {"raw", &b.Raw}} {
		if k.n.Kind != 0 {
			given = append(given, k.name)
		}
	}
	if len(given) > 1 {
		c.fileErrorf("body: give at most one of json, form, multipart, raw (found %s)", strings.Join(given, ", "))
		return
	}
	if b.ContentType != "" && (len(given) == 0 || given[0] != "raw") {
		c.fileErrorf("body.contentType goes with body.raw")
	}
	switch {
	case b.JSON.Kind == yaml.ScalarNode && b.JSON.Tag == "!!str":
		jt, err := binding.ParseJSON(b.JSON.Value, c.pos(&b.JSON), c.names)
		if err != nil {
			c.errs = append(c.errs, err)
			return
		}
		m.body = &jsonText{t: jt}
	case b.JSON.Kind != 0:
		m.body = &jsonTree{root: c.jsonNode(&b.JSON)}
	case b.Form.Kind != 0:
		m.body = &formBody{fields: c.fields(&b.Form, "body.form")}
	case b.Multipart.Kind != 0:
		m.body = &multipartBody{fields: c.fields(&b.Multipart, "body.multipart")}
	case b.Raw.Kind != 0:
		ct := b.ContentType
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		if t := c.template(&b.Raw, "body.raw"); t != nil {
			m.body = &rawBody{t: t, contentType: ct}
		}
	}
}

func (c *compiler) jsonNode(n *yaml.Node) *jsonNode {
	switch n.Kind {
	case yaml.AliasNode:
		return c.jsonNode(n.Alias)
	case yaml.MappingNode:
		out := &jsonNode{kind: jsonObject}
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				c.errorf(k, "body.json: object keys must be strings")
				continue
			}
			if seen[k.Value] {
				c.errorf(k, "body.json: duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			kt, err := binding.Parse(k.Value, c.pos(k), c.names)
			if err != nil {
				c.errs = append(c.errs, err)
				continue
			}
			kid := c.jsonNode(n.Content[i+1])
			kid.secret = kt.Static() && redact.SecretKey(k.Value)
			out.keys = append(out.keys, kt)
			out.kids = append(out.kids, kid)
		}
		return out
	case yaml.SequenceNode:
		out := &jsonNode{kind: jsonArray}
		for _, k := range n.Content {
			out.kids = append(out.kids, c.jsonNode(k))
		}
		return out
	}
	switch n.Tag {
	case "!!null":
		return &jsonNode{kind: jsonLiteral, lit: []byte("null")}
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			c.errorf(n, "body.json: %v", err)
			return &jsonNode{kind: jsonLiteral, lit: []byte("null")}
		}
		b, err := binding.JSON(v)
		if err != nil {
			c.errorf(n, "body.json: %v", err)
		}
		return &jsonNode{kind: jsonLiteral, lit: b}
	}
	t, err := binding.Parse(n.Value, c.pos(n), c.names)
	if err != nil {
		c.errs = append(c.errs, err)
		return &jsonNode{kind: jsonLiteral, lit: []byte("null")}
	}
	c.checkInputs(t)
	if e := t.Single(); e != nil {
		return &jsonNode{kind: jsonValue, expr: e}
	}
	if t.Static() {
		b, _ := binding.JSON(n.Value)
		return &jsonNode{kind: jsonLiteral, lit: b}
	}
	return &jsonNode{kind: jsonString, tmpl: t}
}
