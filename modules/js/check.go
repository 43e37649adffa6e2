package js

import (
	"sort"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/file"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/jsscan"
)

// Globals are the names modrun puts in every JS module's realm besides the
// package's modules and JavaScript's built-ins: engine.JSGlobals.
var Globals = engine.JSGlobals

// check analyses a module's syntax tree (wrapped, export default already
// an assignment to exportVar): the default export must be an object
// literal, whose function members it returns, and every free identifier
// must name a global, a module of the package or a JavaScript built-in.
//
// libs are the Libraries the module uses.
func check(src engine.Source, prog *ast.Program) (functions, libs []string, errs []error) {
	pos := func(idx file.Idx) (int, int) {
		p := prog.File.Position(int(idx) - 1)
		if p.Line == 1 {
			p.Column -= len(prefix)
		}
		return p.Line, p.Column
	}
	// The default export: the assignment rewrite made of it, among the
	// statements of the wrapper function.
	for _, st := range wrapperBody(prog) {
		es, ok := st.(*ast.ExpressionStatement)
		if !ok {
			continue
		}
		as, ok := es.Expression.(*ast.AssignExpression)
		if !ok {
			continue
		}
		if id, ok := as.Left.(*ast.Identifier); !ok || id.Name != exportVar {
			continue
		}
		obj, ok := as.Right.(*ast.ObjectLiteral)
		if !ok {
			l, c := pos(as.Right.Idx0())
			errs = append(errs, engine.Errorf(src.Path, l, c, "export default must be an object literal: export default { name() { ... } }"))
			break
		}
		functions = objectFunctions(obj)
	}

	known := knownGlobals()
	for _, ref := range jsscan.Node(prog).Free() {
		name := ref.Name.String()
		if known[name] {
			continue
		}
		if _, ok := Libraries[name]; ok {
			libs = append(libs, name)
			continue
		}
		if src.Pkg != nil {
			if _, ok := src.Pkg.Modules[name]; ok {
				continue
			}
		}
		l, c := pos(ref.Idx)
		errs = append(errs, engine.Errorf(src.Path, l, c, "%s is not defined: not a module of this package, a modrun global or a JavaScript built-in (guard optional globals with typeof %s)", name, name))
	}
	return functions, libs, errs
}

// wrapperBody returns the statements of the function prefix and suffix
// wrap a module in.
func wrapperBody(prog *ast.Program) []ast.Statement {
	if len(prog.Body) != 1 {
		return nil
	}
	es, ok := prog.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return nil
	}
	fn, ok := es.Expression.(*ast.FunctionLiteral)
	if !ok || fn.Body == nil {
		return nil
	}
	return fn.Body.List
}

// objectFunctions returns the names of obj's members that are functions.
func objectFunctions(obj *ast.ObjectLiteral) []string {
	var out []string
	for _, p := range obj.Value {
		pk, ok := p.(*ast.PropertyKeyed)
		if !ok || pk.Computed {
			continue
		}
		key, ok := pk.Key.(*ast.StringLiteral)
		if !ok {
			continue
		}
		switch pk.Value.(type) {
		case *ast.FunctionLiteral, *ast.ArrowFunctionLiteral:
			if pk.Kind == ast.PropertyKindValue || pk.Kind == ast.PropertyKindMethod {
				out = append(out, key.Value.String())
			}
		}
	}
	sort.Strings(out)
	return out
}

var (
	builtinsOnce sync.Once
	builtins     map[string]bool
)

// knownGlobals returns the names free identifiers may use: JavaScript's
// built-ins (those of a goja runtime's global object) and Globals.
func knownGlobals() map[string]bool {
	builtinsOnce.Do(func() {
		builtins = map[string]bool{"undefined": true, "NaN": true, "Infinity": true, "globalThis": true}
		rt := goja.New()
		names, _ := rt.RunString(`Object.getOwnPropertyNames(globalThis)`)
		for _, n := range names.Export().([]any) {
			builtins[n.(string)] = true
		}
		for _, g := range Globals {
			builtins[g] = true
		}
	})
	return builtins
}
