package binding

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/modrun/modrun/engine"
)

// Credential is an oauth2: credential of package.yaml compiled: each
// string field a template, evaluated when a query binds or JS asks for a
// token.
type Credential struct {
	Name                                                 string
	grant, clientAuth                                    string
	tokenURL, clientID, clientSecret, username, password *Template
	authorizeURL, redirectURL                            *Template
	scopes                                               []*Template
	params                                               []param
	margin                                               time.Duration
	hosts                                                []string
	expiresIn, refreshLifetime                           time.Duration
	expiryStatus                                         []int
	expiryMatch                                          *engine.ExpiryMatch
}

type param struct {
	name string
	tmpl *Template
}

var _ engine.CredentialBinding = (*Credential)(nil)

// PackageNames are the names a package's bindings may refer to besides
// the globals: its modules (modules maps a module's name to its file, as
// engine.PackageInfo does). Query modules, credentials and a JS realm
// all take them from here.
func PackageNames(modules map[string]string) Names {
	names := Names{Modules: make(map[string]bool, len(modules))}
	for name := range modules {
		names.Modules[name] = true
	}
	return names
}

// CompileCredentials compiles every credential of a package, once, against
// its names (packages.Load does, for every package it loads). All
// problems are returned, joined.
func CompileCredentials(creds map[string]engine.Credential, names Names) (map[string]engine.CredentialBinding, error) {
	out := make(map[string]engine.CredentialBinding, len(creds))
	var errs []error
	for name, cred := range creds {
		bc, err := CompileCredential(name, cred, names)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = bc
	}
	return out, errors.Join(errs...)
}

// CompileCredential compiles credential name's templates.
func CompileCredential(name string, cred engine.Credential, names Names) (*Credential, error) {
	pos := Pos{File: "package.yaml"}
	var errs []error
	tmpl := func(field, src string) *Template {
		if src == "" {
			return nil
		}
		t, err := Parse(src, pos, names)
		if err != nil {
			errs = append(errs, fmt.Errorf("oauth2 %s.%s: %w", name, field, err))
			return nil
		}
		return t
	}
	c := &Credential{Name: name, grant: cred.Grant, clientAuth: cred.ClientAuth, margin: cred.RefreshMargin, hosts: cred.Hosts,
		expiresIn: cred.ExpiresIn, refreshLifetime: cred.RefreshTokenLifetime, expiryStatus: cred.ExpiryStatus, expiryMatch: cred.ExpiryMatch,
		tokenURL: tmpl("tokenUrl", cred.TokenURL), clientID: tmpl("clientId", cred.ClientID), clientSecret: tmpl("clientSecret", cred.ClientSecret),
		username: tmpl("username", cred.Username), password: tmpl("password", cred.Password),
		authorizeURL: tmpl("authorizeUrl", cred.AuthorizeURL), redirectURL: tmpl("redirectUrl", cred.RedirectURL)}
	for _, sc := range cred.Scopes {
		if t := tmpl("scopes", sc); t != nil {
			c.scopes = append(c.scopes, t)
		}
	}
	keys := make([]string, 0, len(cred.Params))
	for k := range cred.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if t := tmpl("params."+k, cred.Params[k]); t != nil {
			c.params = append(c.params, param{k, t})
		}
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return c, nil
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
}

// Templates returns every template of the credential.
func (c *Credential) Templates() []*Template {
	var out []*Template
	for _, t := range []*Template{c.tokenURL, c.clientID, c.clientSecret, c.username, c.password, c.authorizeURL, c.redirectURL} {
		if t != nil {
			out = append(out, t)
		}
	}
	out = append(out, c.scopes...)
	for _, p := range c.params {
		out = append(out, p.tmpl)
	}
	return out
}

// Bind evaluates the credential's bindings into the spec of a token
// request.
func (c *Credential) Bind(scope engine.Scope, params any) (engine.TokenSpec, error) {
	spec := engine.TokenSpec{Name: c.Name, Grant: c.grant, ClientAuth: c.clientAuth, Margin: c.margin, Params: map[string]string{}, Hosts: c.hosts,
		ExpiresIn: c.expiresIn, ExpiryStatus: c.expiryStatus, ExpiryMatch: c.expiryMatch, RefreshTokenLifetime: c.refreshLifetime}
	var err error
	text := func(t *Template) string {
		if t == nil || err != nil {
			return ""
		}
		var s string
		s, err = t.Text(scope, params)
		return s
	}
	spec.TokenURL, spec.ClientID, spec.ClientSecret = text(c.tokenURL), text(c.clientID), text(c.clientSecret)
	spec.Username, spec.Password = text(c.username), text(c.password)
	for _, s := range c.scopes {
		if v := text(s); v != "" {
			spec.Scopes = append(spec.Scopes, v)
		}
	}
	for _, p := range c.params {
		spec.Params[p.name] = text(p.tmpl)
	}
	if err != nil {
		return spec, fmt.Errorf("oauth2 %s: %w", c.Name, err)
	}
	return spec, nil
}

// BindLogin evaluates the authorization_code grant's authorizeUrl and
// redirectUrl.
func (c *Credential) BindLogin(scope engine.Scope) (authorizeURL, redirectURL string, err error) {
	if c.authorizeURL == nil || c.redirectURL == nil {
		return "", "", fmt.Errorf("%s: the %s grant has no authorizeUrl and redirectUrl: runner login is for authorization_code", c.Name, c.grant)
	}
	if authorizeURL, err = c.authorizeURL.Text(scope, nil); err != nil {
		return "", "", err
	}
	redirectURL, err = c.redirectURL.Text(scope, nil)
	return authorizeURL, redirectURL, err
}
