// Package jsscan finds the names a piece of JavaScript reads and declares,
// from goja's syntax tree: what the load-time checks of JS modules and of
// bindings need to tell an unknown global from a local.
//
// Scopes are not told apart: a name declared anywhere in the scanned code
// counts as declared everywhere in it, so a check built on Scan can miss
// a name used outside its scope but never flags a declared one. A name
// tested with typeof counts as declared (optional), wherever it is used.
package jsscan

import (
	"reflect"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/file"
	"github.com/dop251/goja/token"
)

// Scan is what a piece of code reads and declares.
type Scan struct {
	Refs     []*ast.Identifier    // identifiers read, in source order
	Declared map[string]bool      // declared anywhere, or tested with typeof
	Members  []*ast.DotExpression // every a.b, for checks of closed sets
}

// Free returns the names of Refs that are not Declared, first use first.
func (s *Scan) Free() []*ast.Identifier {
	var out []*ast.Identifier
	seen := map[string]bool{}
	for _, id := range s.Refs {
		n := id.Name.String()
		if s.Declared[n] || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, id)
	}
	return out
}

// Node scans n (a *ast.Program, say).
func Node(n ast.Node) *Scan {
	w := &walker{Scan: &Scan{Declared: map[string]bool{}}}
	w.walk(reflect.ValueOf(n), false)
	return w.Scan
}

type walker struct{ *Scan }

var (
	identType       = reflect.TypeOf((*ast.Identifier)(nil))
	objPatternType  = reflect.TypeOf((*ast.ObjectPattern)(nil))
	arrPatternType  = reflect.TypeOf((*ast.ArrayPattern)(nil))
	idxType         = reflect.TypeOf(file.Idx(0))
	identStructType = reflect.TypeOf(ast.Identifier{})
)

// walk visits v; decl is set while v is a binding target (a declared name
// or a destructuring pattern that declares).
func (w *walker) walk(v reflect.Value, decl bool) {
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			w.walk(v.Elem(), decl)
		}
		return
	case reflect.Slice:
		for i := range v.Len() {
			w.walk(v.Index(i), decl)
		}
		return
	case reflect.Struct:
		// A node held by value (ForLoopInitializerLexicalDecl's
		// LexicalDeclaration): its fields.
		w.fields(v, false)
		return
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
	default:
		return
	}
	if v.Type() == identType {
		id := v.Interface().(*ast.Identifier)
		if decl {
			w.Declared[id.Name.String()] = true
		} else {
			w.Refs = append(w.Refs, id)
		}
		return
	}
	switch n := v.Interface().(type) {
	case *ast.Binding:
		w.walk(reflect.ValueOf(n.Target), true)
		w.walk(reflect.ValueOf(n.Initializer), false)
		return
	case *ast.ForDeclaration:
		w.walk(reflect.ValueOf(n.Target), true)
		return
	case *ast.FunctionLiteral:
		w.walk(reflect.ValueOf(n.Name), true)
		w.walk(reflect.ValueOf(n.ParameterList), true)
		w.walk(reflect.ValueOf(n.Body), false)
		w.Declared["arguments"] = true
		return
	case *ast.ArrowFunctionLiteral:
		w.walk(reflect.ValueOf(n.ParameterList), true)
		w.walk(reflect.ValueOf(n.Body), false)
		return
	case *ast.ParameterList:
		for _, b := range n.List {
			w.walk(reflect.ValueOf(b.Target), true)
			w.walk(reflect.ValueOf(b.Initializer), false)
		}
		w.walk(reflect.ValueOf(n.Rest), true)
		return
	case *ast.ClassLiteral:
		w.walk(reflect.ValueOf(n.Name), true)
		w.walk(reflect.ValueOf(n.SuperClass), false)
		w.walk(reflect.ValueOf(n.Body), false)
		return
	case *ast.CatchStatement:
		w.walk(reflect.ValueOf(n.Parameter), true)
		w.walk(reflect.ValueOf(n.Body), false)
		return
	case *ast.LabelledStatement:
		w.walk(reflect.ValueOf(n.Statement), false)
		return
	case *ast.BranchStatement, *ast.MetaProperty:
		return
	case *ast.DotExpression:
		w.Members = append(w.Members, n)
		w.walk(reflect.ValueOf(n.Left), false)
		return
	case *ast.PrivateDotExpression:
		w.walk(reflect.ValueOf(n.Left), false)
		return
	case *ast.PropertyKeyed:
		if n.Computed {
			w.walk(reflect.ValueOf(n.Key), false)
		}
		w.walk(reflect.ValueOf(n.Value), decl)
		return
	case *ast.MethodDefinition:
		if n.Computed {
			w.walk(reflect.ValueOf(n.Key), false)
		}
		w.walk(reflect.ValueOf(n.Body), false)
		return
	case *ast.FieldDefinition:
		if n.Computed {
			w.walk(reflect.ValueOf(n.Key), false)
		}
		w.walk(reflect.ValueOf(n.Initializer), false)
		return
	case *ast.PropertyShort:
		id := n.Name
		if decl {
			w.Declared[id.Name.String()] = true
		} else {
			w.Refs = append(w.Refs, &id)
		}
		w.walk(reflect.ValueOf(n.Initializer), false)
		return
	case *ast.UnaryExpression:
		// typeof x is how code asks whether a global exists: x is then
		// optional, wherever it is used.
		if id, ok := n.Operand.(*ast.Identifier); ok && n.Operator == token.TYPEOF {
			w.Declared[id.Name.String()] = true
			return
		}
	case *ast.AssignExpression:
		if decl { // a default in a pattern: {f: g = 1}
			w.walk(reflect.ValueOf(n.Left), true)
			w.walk(reflect.ValueOf(n.Right), false)
			return
		}
	}
	// Any other node: its fields, in expression position; patterns keep
	// decl (they declare only under a binding).
	if e := v.Elem(); e.Kind() == reflect.Struct {
		w.fields(e, decl && (v.Type() == objPatternType || v.Type() == arrPatternType))
	}
}

// fields walks the exported fields of struct e, but positions and
// identifiers held by value (property names, as in a.b).
func (w *walker) fields(e reflect.Value, decl bool) {
	for i := range e.NumField() {
		f := e.Field(i)
		if f.Type() == idxType || f.Type() == identStructType || !e.Type().Field(i).IsExported() {
			continue
		}
		w.walk(f, decl)
	}
}
