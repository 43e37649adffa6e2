package query

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
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
	if src.Pkg != nil {
		c.names = binding.PackageNames(src.Pkg.Modules)
	}
	if err := yamlfile.Decode(src.Path, src.Data, &f); err != nil {
		if yamlfile.Fatal(err) {
			return nil, err
		}
		c.errs = append(c.errs, err)
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
	span         string // the name of its requests' client spans
	method       string
	url          *binding.Template
	headers      []field
	query        []field
	body         body
	basicUser    *binding.Template
	basicPass    *binding.Template
	bearer       *binding.Template
	oauth2       engine.CredentialBinding // auth: {oauth2: NAME}
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
