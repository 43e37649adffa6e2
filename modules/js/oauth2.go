// The oauth2 global: a credential's token, and keep-fresh.

package js

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/engine"
)

// installOAuth2 makes oauth2.NAME for each credential of the package:
// accessToken() (a Promise of a fresh token), refresh() (forced, shared
// with concurrent callers) and logout() (the token set removed).
func (v *vm) installOAuth2() error {
	obj := v.rt.NewObject()
	for name := range v.pkg.Manifest.OAuth2 {
		bc, err := credential(v.pkg, name)
		if err != nil {
			return err
		}
		c := v.rt.NewObject()
		c.Set("accessToken", func(goja.FunctionCall) goja.Value { return v.tokenCall(bc, false) })
		c.Set("refresh", func(goja.FunctionCall) goja.Value { return v.tokenCall(bc, true) })
		c.Set("logout", func(goja.FunctionCall) goja.Value {
			spec, err := bc.Bind(v, nil)
			if err == nil {
				err = v.h.tokenClient().Logout(v.ctx(), spec)
			}
			if err != nil {
				v.throw(fmt.Errorf("oauth2.%s.logout: %w", name, err))
			}
			return v.resolved(goja.Undefined())
		})
		obj.Set(name, c)
	}
	v.rt.Set("oauth2", obj)
	return nil
}

func (v *vm) tokenCall(bc engine.CredentialBinding, force bool) goja.Value {
	spec, err := bc.Bind(v, nil)
	if err != nil {
		v.throw(err)
	}
	promise, resolve, reject := v.rt.NewPromise()
	v.h.await(&tokenWork{v: v, spec: spec, force: force, resolve: resolve, reject: reject})
	return v.rt.ToValue(promise)
}

// keepFresh is the function of engine.KeepFreshTarget(name): the token
// call of oauth2.name, with the margin widened to what keep-fresh asks,
// resolving to true instead of the token.
func (v *vm) keepFresh(name string) (goja.Callable, goja.Value, error) {
	bc, ok := v.pkg.Bindings[name]
	if !ok {
		return nil, nil, fmt.Errorf("keep fresh: package %s has no credential %q", v.pkg.Ref(), name)
	}
	fn := func(call goja.FunctionCall) goja.Value {
		var opt engine.KeepFresh
		if raw, err := v.toJSON(call.Argument(0)); err == nil {
			json.Unmarshal(raw, &opt)
		}
		spec, err := bc.Bind(v, nil)
		if err != nil {
			v.throw(err)
		}
		spec.Margin = max(spec.Margin, time.Duration(opt.Within)*time.Millisecond)
		promise, resolve, reject := v.rt.NewPromise()
		v.h.await(&tokenWork{v: v, spec: spec, force: opt.Force, quiet: true, resolve: resolve, reject: reject})
		return v.rt.ToValue(promise)
	}
	f, _ := goja.AssertFunction(v.rt.ToValue(fn))
	return f, goja.Undefined(), nil
}

// credential is the compiled credential name of pkg (engine.Package.Bindings).
func credential(pkg *engine.Package, name string) (engine.CredentialBinding, error) {
	bc, ok := pkg.Bindings[name]
	if !ok {
		return nil, fmt.Errorf("package %s: credential %q was not compiled (load packages with packages.Load)", pkg.Ref(), name)
	}
	return bc, nil
}

// tokenWork is an oauth2.NAME call: the token request off the loop, the
// promise settled on it.
type tokenWork struct {
	v               *vm
	spec            engine.TokenSpec
	force           bool
	quiet           bool // resolve to true, not the token (keep-fresh)
	tok             string
	resolve, reject func(any) error
}

func (w *tokenWork) work(ctx context.Context) error {
	c := w.v.h.tokenClient()
	stale := ""
	if w.force {
		stale = c.Current(ctx, w.spec)
	}
	var err error
	w.tok, err = c.Token(ctx, w.spec, stale)
	return err
}

func (w *tokenWork) deliver(err error) {
	if err != nil {
		w.v.check(w.reject(w.v.newError(err, nil)))
		return
	}
	if w.quiet {
		w.v.check(w.resolve(true))
		return
	}
	w.v.check(w.resolve(w.tok))
}
