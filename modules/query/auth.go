// A query's auth: block compiled: the credential, its allowed origins, and the destination check.

package query

import (
	"net/url"
	"sort"
	"strings"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
)

func (c *compiler) compileAuth(a *authFile, m *Module) {
	given := 0
	for _, g := range []bool{a.Basic != nil, a.Bearer.Kind != 0, a.OAuth2 != ""} {
		if g {
			given++
		}
	}
	switch {
	case given > 1:
		c.fileErrorf("auth: basic, bearer and oauth2 are exclusive; give one")
	case a.OAuth2 != "":
		m.oauth2 = c.compileCredential(a.OAuth2)
		c.checkDestination(a.OAuth2, m)
	case a.Basic != nil:
		if a.Basic.Username.Kind == 0 {
			c.fileErrorf("auth.basic.username is required")
			return
		}
		m.basicUser = c.template(&a.Basic.Username, "auth.basic.username")
		if a.Basic.Password.Kind != 0 {
			m.basicPass = c.template(&a.Basic.Password, "auth.basic.password")
		}
	case a.Bearer.Kind != 0:
		m.bearer = c.template(&a.Bearer, "auth.bearer")
	}
}

// checkDestination reports a query whose URL, as far as it is known at
// load (literal text and inputs' defaults), lies outside the origins its
// credential's token may go to (DESIGN §17).
func (c *compiler) checkDestination(name string, m *Module) {
	if c.pkg == nil || m.url == nil || m.oauth2 == nil {
		return
	}
	cred := c.pkg.Credentials[name]
	tokenURL, ok1 := staticOrigin(cred.TokenURL, c.pkg.Inputs)
	dest, ok2 := staticOrigin(m.url.Src, c.pkg.Inputs)
	if !ok1 || !ok2 {
		return
	}
	spec := engine.TokenSpec{Name: name, TokenURL: tokenURL.String(), Hosts: cred.Hosts}
	if err := spec.CheckDestination(dest); err != nil {
		c.fileErrorf("url: %v", err)
	}
}

// staticOrigin is the origin of a URL template when its literal text, or
// a leading <<inputs.NAME>> with a default, fixes it.
func staticOrigin(src string, inputs map[string]engine.Input) (*url.URL, bool) {
	s := strings.TrimSpace(src)
	for _, open := range []string{"<<", "{{"} {
		if rest, ok := strings.CutPrefix(s, open); ok {
			closeTok := map[string]string{"<<": ">>", "{{": "}}"}[open]
			expr, tail, ok := strings.Cut(rest, closeTok)
			if !ok {
				return nil, false
			}
			name, ok := strings.CutPrefix(strings.TrimSpace(expr), "inputs.")
			in, found := inputs[name]
			def, isString := in.Default.(string)
			if !ok || !found || !in.HasDefault || !isString {
				return nil, false
			}
			s = def + tail
		}
	}
	if i := strings.IndexAny(s, "<{"); i >= 0 {
		s = s[:i]
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme == "" {
		return nil, false
	}
	// The host must be complete: followed by a path, or the end of the
	// text before the next binding with nothing after.
	rest := strings.TrimPrefix(strings.TrimPrefix(s, u.Scheme+"://"), u.Host)
	if rest == "" && len(s) < len(strings.TrimSpace(src)) {
		return nil, false
	}
	return u, true
}

func (c *compiler) compileCredential(name string) engine.CredentialBinding {
	var cred engine.Credential
	ok := false
	if c.pkg != nil {
		cred, ok = c.pkg.Credentials[name]
	}
	if !ok {
		var names []string
		if c.pkg != nil {
			for n := range c.pkg.Credentials {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		c.fileErrorf("auth.oauth2: no credential %q in package.yaml's oauth2: (credentials: %s)", name, strings.Join(names, ", "))
		return nil
	}
	// Compiled once with the package (packages.Load); its inputs were
	// checked where they stand, in package.yaml, with their lines. A
	// PackageInfo made by hand has no bindings: compile it here.
	if bc, ok := c.pkg.Bindings[name]; ok {
		return bc
	}
	if c.pkg.Bindings != nil {
		return nil // it did not compile: the package's load says why
	}
	bc, err := binding.CompileCredential(name, cred, c.names)
	if err != nil {
		c.errs = append(c.errs, err)
		return nil
	}
	return bc
}
