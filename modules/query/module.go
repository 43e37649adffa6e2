package query

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/tracing"
	"github.com/modrun/modrun/internal/yamlfile"
)

var (
	_ engine.Kind    = (*Kind)(nil)
	_ engine.Query   = (*Module)(nil)
	_ engine.Request = (*request)(nil)
)

// Kind compiles NAME.query.yaml files. Its modules share one HTTP
// transport: NewKind gives each Kind its own keep-alive transport.
type Kind struct {
	// Transport sends every request of the kind's modules. Nil means
	// http.DefaultTransport, shared with the rest of the process.
	Transport http.RoundTripper
}

// NewKind returns a Kind with its own keep-alive transport.
func NewKind() *Kind {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	return &Kind{Transport: t}
}

// Match implements engine.Kind.
func (k *Kind) Match(p string) (string, bool) {
	base := path.Base(p)
	name, ok := strings.CutSuffix(base, ".query.yaml")
	return name, ok && name != ""
}

// Compile implements engine.Kind.
func (k *Kind) Compile(src engine.Source) (engine.Module, error) {
	var f file
	c := &compiler{path: src.Path, pkg: src.Pkg, names: binding.Names{Modules: map[string]bool{}}}
	if err := yamlfile.Decode(src.Path, src.Data, &f); err != nil {
		if yamlfile.Fatal(err) {
			return nil, err
		}
		c.errs = append(c.errs, err)
	}
	if src.Pkg != nil {
		for name := range src.Pkg.Modules {
			c.names.Modules[name] = true
		}
	}
	m := c.compile(&f, src.Name)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	m.client = &http.Client{
		Transport: k.Transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > m.maxRedirects {
				return fmt.Errorf("stopped after %d redirects", m.maxRedirects)
			}
			// Never a Referer: the original URL's query string may carry
			// a token (net/http sets one on every redirect).
			req.Header.Del("Referer")
			// Credentials stay with the origin they were meant for
			// (scheme, host and port), and so off plain HTTP once they
			// went over HTTPS. net/http drops Authorization and cookies
			// only when the host changes, and keeps every other header.
			leaving := !sameOrigin(req.URL, via[0].URL)
			if !leaving {
				return nil
			}
			// A 307 or 308 resends the body, which may carry a token or a
			// client secret.
			if req.Body != nil && req.Body != http.NoBody {
				return fmt.Errorf("a %d redirect to %s://%s would resend the request body there; refusing", req.Response.StatusCode, req.URL.Scheme, req.URL.Host)
			}
			req.Header.Del("Authorization")
			for _, f := range m.headers {
				if !f.tmpl.Static() {
					req.Header.Del(f.name)
				}
			}
			return nil
		},
	}
	return m, nil
}

// sameOrigin reports whether a and b have the same origin (RFC 6454):
// scheme, host and port, a missing port being the scheme's default.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// Module is a compiled query module.
type Module struct {
	name, path   string
	method       string
	url          *binding.Template
	headers      []field
	query        []field
	body         body
	basicUser    *binding.Template
	basicPass    *binding.Template
	bearer       *binding.Template
	oauth2       *binding.Credential // auth: {oauth2: NAME}
	timeout      time.Duration
	maxBytes     int64
	maxRedirects int
	retry        *retry // nil: one attempt
	client       *http.Client
}

// Name implements engine.Module.
func (m *Module) Name() string { return m.name }

// File implements engine.Module.
func (m *Module) File() string { return m.path }

// request is a bound query.
type request struct {
	m           *Module
	url         *url.URL
	header      http.Header
	body        []byte
	contentType string
	tokens      engine.TokenSource // auth: {oauth2: …}
	spec        engine.TokenSpec
	log         *slog.Logger // the scope's (engine.Logging); nil: none
}

// Bind implements engine.Query.
//
// Credentials it binds — the bearer token, the Basic credential and
// password, headers and body fields named like secrets — are told to the
// scope if it is an engine.Learner, so that they never reach output.
func (m *Module) Bind(scope engine.Scope, params any) (engine.Request, error) {
	r := &request{m: m, header: http.Header{}}
	if l, ok := scope.(engine.Logging); ok {
		r.log = l.Logger()
	}
	learner, _ := scope.(engine.Learner)
	learn := func(s string) {
		if learner != nil && s != "" {
			learner.Learn(s)
		}
	}
	u, err := m.url.URL(scope, params)
	if err != nil {
		return nil, m.bindError(err)
	}
	if len(m.query) > 0 {
		q, err := appendForm([]byte(u.RawQuery), m.query, scope, params, learn)
		if err != nil {
			return nil, m.bindError(err)
		}
		u.RawQuery = string(q)
	}
	r.url = u
	for _, f := range m.headers {
		v, defined, err := f.tmpl.Field(scope, params)
		if err != nil {
			return nil, m.bindError(err)
		}
		if !defined {
			continue
		}
		if err := checkHeader(f.name, v); err != nil {
			return nil, m.bindError(err)
		}
		if f.secret {
			learn(v)
		}
		r.header.Add(f.name, v)
	}
	switch {
	case m.oauth2 != nil:
		ts, ok := scope.(engine.TokenSource)
		if !ok {
			return nil, m.bindError(fmt.Errorf("auth.oauth2: this instance cannot get OAuth2 tokens"))
		}
		spec, err := m.oauth2.Bind(scope, params)
		if err != nil {
			return nil, m.bindError(err)
		}
		learn(spec.ClientSecret)
		learn(spec.Password)
		// The token goes only where the credential allows, whatever
		// the bindings made of the URL.
		if err := spec.CheckDestination(u); err != nil {
			return nil, m.bindError(err)
		}
		r.tokens, r.spec = ts, spec
	case m.bearer != nil:
		tok, err := m.bearer.Text(scope, params)
		if err != nil {
			return nil, m.bindError(err)
		}
		if err := checkHeader("Authorization", tok); err != nil {
			return nil, m.bindError(err)
		}
		learn(tok)
		r.header.Set("Authorization", "Bearer "+tok)
	case m.basicUser != nil:
		user, err := m.basicUser.Text(scope, params)
		if err != nil {
			return nil, m.bindError(err)
		}
		pass := ""
		if m.basicPass != nil {
			if pass, err = m.basicPass.Text(scope, params); err != nil {
				return nil, m.bindError(err)
			}
		}
		// RFC 6749 §2.3.1: client credentials are form-encoded before Basic.
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(user, pass)
		cred := req.Header.Get("Authorization")
		learn(pass)
		learn(strings.TrimPrefix(cred, "Basic "))
		r.header.Set("Authorization", cred)
	}
	if m.body != nil {
		if r.body, r.contentType, err = m.body.render(scope, params, learn); err != nil {
			return nil, m.bindError(err)
		}
		if r.header.Get("Content-Type") == "" {
			r.header.Set("Content-Type", r.contentType)
		}
	}
	return r, nil
}

func (m *Module) bindError(err error) error {
	return fmt.Errorf("%s: %w", m.name, err)
}

// checkHeader refuses values that would split the header. The value itself
// is not quoted: it may be a token.
func checkHeader(name, v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("header %s: the value contains a line break; refusing to send", name)
	}
	return nil
}

// Send implements engine.Request. With retry:, a response whose status is
// listed, or a request that never reached the server, is tried again
// after an exponential backoff with jitter (or the server's Retry-After),
// never past ctx's deadline. A request that may have reached the server
// (a timeout, a dropped connection) is tried again only if its method is
// idempotent: a token request must never be spent twice.
func (r *request) Send(ctx context.Context) (*engine.Response, error) {
	if r.tokens != nil {
		return r.sendOAuth2(ctx)
	}
	return r.sendRetrying(ctx)
}

// sendOAuth2 sends with the credential's token, got or refreshed first if
// needed; on an answer that says the token expired (a 401, or the
// credential's expiryStatus or expiryMatch) it refreshes once (unless a
// concurrent run already replaced the token it used) and tries once more.
func (r *request) sendOAuth2(ctx context.Context) (*engine.Response, error) {
	tok, err := r.tokens.Token(ctx, r.spec, "")
	if err != nil {
		return nil, &engine.ResponseError{Module: r.m.name, Cause: err.Error(), Err: err}
	}
	r.header.Set("Authorization", "Bearer "+tok)
	resp, err := r.sendRetrying(ctx)
	got := resp
	var re *engine.ResponseError
	if errors.As(err, &re) {
		got = re.Response
	}
	if got == nil || !r.spec.Expired(got.StatusCode, func(path string) (string, bool) {
		if got.Kind != engine.BodyJSON {
			return "", false
		}
		v := gjson.GetBytes(got.Body, path)
		return v.String(), v.Exists()
	}) {
		return resp, err
	}
	fresh, terr := r.tokens.Token(ctx, r.spec, tok)
	if terr != nil {
		return nil, &engine.ResponseError{Module: r.m.name, Cause: terr.Error(), Err: terr}
	}
	r.header.Set("Authorization", "Bearer "+fresh)
	return r.sendRetrying(ctx)
}

func (r *request) sendRetrying(ctx context.Context) (*engine.Response, error) {
	rt := r.m.retry
	if rt == nil {
		return r.send(ctx)
	}
	for attempt := 1; ; attempt++ {
		resp, err := r.send(ctx)
		if err == nil || attempt >= rt.attempts {
			return resp, retried(err, attempt)
		}
		var re *engine.ResponseError
		errors.As(err, &re)
		wait, ok := rt.next(r.m.method, re, attempt)
		if !ok {
			return resp, retried(err, attempt)
		}
		if deadline, has := ctx.Deadline(); has && time.Until(deadline) < wait {
			return resp, retried(err, attempt) // the wait would outlast the call
		}
		if r.log != nil {
			// At info: an operator sees an API flapping before it fails.
			r.log.InfoContext(ctx, "query failed; retrying", "module", r.m.name, "attempt", attempt, "of", rt.attempts,
				"wait", wait.Round(time.Millisecond).String(), "cause", re.Cause)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, retried(err, attempt)
		case <-t.C:
		}
	}
}

// retried notes in err how many attempts were made, if more than one.
func retried(err error, attempts int) error {
	var re *engine.ResponseError
	if attempts > 1 && errors.As(err, &re) {
		c := *re
		c.Cause = fmt.Sprintf("%s (after %d attempts)", re.Cause, attempts)
		return &c
	}
	return err
}

// retry is a query's retry: policy.
type retry struct {
	attempts int
	backoff  time.Duration
	on       map[int]bool
}

// maxRetryWait caps one wait between attempts, Retry-After included.
const maxRetryWait = 30 * time.Second

// next reports whether the failure re of attempt n (1-based) is worth
// another try, and how long to wait first.
func (rt *retry) next(method string, re *engine.ResponseError, n int) (time.Duration, bool) {
	if re == nil {
		return 0, false
	}
	if resp := re.Response; resp != nil {
		if !rt.on[resp.StatusCode] {
			return 0, false
		}
		if after, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			return min(after, maxRetryWait), true
		}
	} else if !neverSent(re.Err) && !idempotent[method] {
		return 0, false
	}
	// Exponential, with full jitter in its upper half: backoff × 2^(n-1).
	d := rt.backoff << (n - 1)
	d = d/2 + mrand.N(d/2+1)
	return min(d, maxRetryWait), true
}

var idempotent = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodOptions: true, http.MethodPut: true, http.MethodDelete: true}

// neverSent reports whether err means the request did not reach the
// server: the connection was refused or could not be made.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t)), true
	}
	return 0, false
}

// send makes one attempt.
func (r *request) send(ctx context.Context) (*engine.Response, error) {
	m := r.m
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout, errTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	// The URL is already parsed: hand it over rather than print and
	// parse it again.
	req, err := http.NewRequestWithContext(ctx, m.method, "", body)
	if err != nil {
		return nil, &engine.ResponseError{Module: m.name, Cause: "bad request: " + err.Error()}
	}
	req.URL, req.Host = r.url, r.url.Host
	// A bound request may be sent more than once (retry:): each attempt
	// gets its own copy of the headers, which redirects edit.
	req.Header = r.header
	if m.retry != nil {
		req.Header = r.header.Clone()
	}
	end := tracing.StartClient(req, "query "+m.name, attribute.String("modrun.module", m.name))
	start := time.Now()
	resp, err := m.client.Do(req)
	if err != nil {
		end(0, err)
		return nil, m.transportError(ctx, r.url, err)
	}
	end(resp.StatusCode, nil)
	defer resp.Body.Close()
	data, err := readBody(resp, m.maxBytes)
	if err != nil {
		return nil, m.transportError(ctx, r.url, err)
	}
	out := &engine.Response{
		StatusCode: resp.StatusCode,
		Header:     resp.Header,
		Body:       data,
		Duration:   time.Since(start),
	}
	if int64(len(data)) > m.maxBytes {
		out.Body = nil
		return nil, &engine.ResponseError{Module: m.name, Response: out,
			Cause: fmt.Sprintf("response from %s is larger than %d bytes (raise maxResponseBytes)", r.url.Host, m.maxBytes)}
	}
	out.Kind = bodyKind(resp.Header.Get("Content-Type"), data)
	if !out.Success() {
		return nil, &engine.ResponseError{Module: m.name, Response: out, Cause: statusCause(out)}
	}
	return out, nil
}

// readBody reads up to max+1 bytes of resp's body: one more than max
// tells the caller it was too large. Memory follows what has arrived, not
// what the server announced: a buffer of the announced length is taken
// only up to preallocMax (a lying Content-Length of 5 GB must not
// allocate 5 GB); past that the buffer grows as data comes.
func readBody(resp *http.Response, max int64) ([]byte, error) {
	n := resp.ContentLength
	if n < 0 || n > max || n > preallocMax {
		return io.ReadAll(io.LimitReader(resp.Body, max+1))
	}
	// net/http stops a body at its Content-Length, and reports a shorter
	// one as io.ErrUnexpectedEOF.
	data := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, data); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return data, nil
}

// preallocMax is the largest announced body read into a buffer of its
// size up front.
const preallocMax = 1 << 20

// transportError names the module, the method and the host, and the
// cause; never the URL's path or query, which may carry tokens.
func (m *Module) transportError(ctx context.Context, u *url.URL, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	where := m.method + " " + u.Host
	var ne net.Error
	switch {
	case context.Cause(ctx) == errTimeout:
		return &engine.ResponseError{Module: m.name, Err: context.DeadlineExceeded,
			Cause: fmt.Sprintf("%s: timeout after %s", where, m.timeout)}
	case ctx.Err() != nil:
		return &engine.ResponseError{Module: m.name, Err: ctx.Err(), Cause: fmt.Sprintf("%s: %v", where, context.Cause(ctx))}
	case errors.As(err, &ne) && ne.Timeout():
		return &engine.ResponseError{Module: m.name, Err: err, Cause: fmt.Sprintf("%s: timeout after %s", where, m.timeout)}
	}
	return &engine.ResponseError{Module: m.name, Err: err, Cause: fmt.Sprintf("%s: %v", where, err)}
}

// errTimeout is the cause of a request's context when the module's own
// timeout ends it, as opposed to the run's deadline.
var errTimeout = errors.New("query timeout")

// statusCause is "HTTP 400: invalid_grant": the status and a short cause
// taken from a JSON error body (OAuth's "error", or "message").
func statusCause(r *engine.Response) string {
	cause := ""
	if r.Kind == engine.BodyJSON {
		for _, p := range []string{"error", "error.message", "message", "error.code"} {
			if v := gjson.GetBytes(r.Body, p); v.Type == gjson.String && v.Str != "" {
				cause = v.Str
				break
			}
		}
	}
	if cause == "" {
		cause = http.StatusText(r.StatusCode)
	}
	if len(cause) > 200 {
		cause = cause[:200] + "…"
	}
	return fmt.Sprintf("HTTP %d: %s", r.StatusCode, cause)
}

func bodyKind(contentType string, data []byte) engine.BodyKind {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		if len(data) == 0 || gjson.ValidBytes(data) {
			return engine.BodyJSON
		}
		return engine.BodyText
	case mt == "" || strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "xml") ||
		mt == "application/javascript" || mt == "application/x-www-form-urlencoded":
		if utf8.Valid(data) {
			return engine.BodyText
		}
	}
	if utf8.Valid(data) && !bytes.ContainsRune(data, 0) && !strings.HasPrefix(mt, "image/") && mt != "application/octet-stream" {
		return engine.BodyText
	}
	return engine.BodyBinary
}

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
