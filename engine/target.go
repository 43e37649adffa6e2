package engine

import (
	"errors"
	"fmt"
	"strings"
)

// Target names what a call runs (DESIGN §3): a function of a JS module,
// "module.function", or a query module by its name, "module" (Function
// empty: the query's run). ParseTarget is the one parser of that syntax
// and Package.Resolve the one check of a target against a package: the
// server, the CLI, package.yaml's onLoad and schedules, and the JS host
// all go through them.
type Target struct {
	Module   string
	Function string // empty: a query module's run
}

// ParseTarget parses "module.function" or "module": each part an
// identifier (letters, digits, _ and $; not starting with a digit).
func ParseTarget(s string) (Target, error) {
	mod, fn, hasFn := strings.Cut(s, ".")
	t := Target{Module: mod, Function: fn}
	if !IsIdentifier(mod) || hasFn && !IsIdentifier(fn) {
		return t, fmt.Errorf("target %q: want MODULE.FUNCTION, or a query module's name", s)
	}
	return t, nil
}

// String is the target as ParseTarget reads it.
func (t Target) String() string {
	if t.Function == "" {
		return t.Module
	}
	return t.Module + "." + t.Function
}

// IsIdentifier reports whether s is a name modrun accepts for a module,
// a function, an input or a credential: letters, digits, _ and $, not
// starting with a digit (a JS identifier without Unicode).
func IsIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ErrNoModule is the error of Resolve for a module the package lacks.
var ErrNoModule = errors.New("no such module")

// Resolve checks t against p and returns the module it runs: a query
// module takes no function; a JS module (a FunctionLister) must export
// the function named. The errors name what there is instead.
func (p *Package) Resolve(t Target) (Module, error) {
	m := p.Module(t.Module)
	if m == nil {
		return nil, &TargetError{Target: t, Err: ErrNoModule, msg: fmt.Sprintf("no module %q", t.Module)}
	}
	_, isQuery := m.(Query)
	fl, lists := m.(FunctionLister)
	switch {
	case isQuery && t.Function != "":
		return nil, &TargetError{Target: t, msg: fmt.Sprintf("%s is a query module: run it as %s", t.Module, t.Module)}
	case isQuery:
		return m, nil
	case t.Function == "":
		msg := fmt.Sprintf("%s is a JS module: name a function, %s.FUNCTION", t.Module, t.Module)
		if lists {
			msg += " (functions: " + strings.Join(fl.Functions(), ", ") + ")"
		}
		return nil, &TargetError{Target: t, msg: msg}
	case !lists:
		return m, nil // a kind that cannot say: its call will
	}
	for _, f := range fl.Functions() {
		if f == t.Function {
			return m, nil
		}
	}
	return nil, &TargetError{Target: t, msg: fmt.Sprintf("module %s has no function %q (functions: %s)", t.Module, t.Function, strings.Join(fl.Functions(), ", "))}
}

// TargetError is why a target does not resolve in a package.
type TargetError struct {
	Target Target
	Err    error // ErrNoModule, or nil
	msg    string
}

func (e *TargetError) Error() string { return e.msg }
func (e *TargetError) Unwrap() error { return e.Err }
