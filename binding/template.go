package binding

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/engine"
)

// Pos is where a template starts in its file: line and column are 1-based.
// Quoted tells that the text sits inside a quoted YAML scalar, so columns
// move by one for the quote.
type Pos struct {
	File   string
	Line   int
	Col    int
	Quoted bool
}

// Template is text with bindings, split into parts.
type Template struct {
	Parts []Part
	Src   string
}

// Part is a literal (Expr nil) or a binding.
type Part struct {
	Lit  string
	Expr *Expr
}

// Expr is one compiled binding expression.
type Expr struct {
	Src  string // the expression's source, trimmed
	File string
	Line int
	Col  int

	root string   // for a plain dotted path: its root ("appsmith", "inputs", "params", a module)
	keys []string // and the keys after it
	prog *goja.Program
}

var _ engine.Expr = (*Expr)(nil)

// String returns the expression's source.
func (e *Expr) String() string { return e.Src }

// Path returns the root and keys of a plain dotted path; ok is false for
// any other expression.
func (e *Expr) Path() (root string, keys []string, ok bool) {
	return e.root, e.keys, e.root != ""
}

// Program returns the compiled JavaScript of the expression: running it
// gives a function(params) that returns the expression's value when called
// with this = {params}.
func (e *Expr) Program() *goja.Program { return e.prog }

// Eval evaluates the expression in scope: natively when it is a plain path
// the scope can resolve, else as JavaScript.
func (e *Expr) Eval(scope engine.Scope, params any) (any, error) {
	if e.root != "" {
		v, ok, err := scope.Lookup(e.root, e.keys, params)
		if ok || err != nil {
			return v, err
		}
	}
	v, err := scope.Eval(e, params)
	if err != nil {
		return nil, e.Error(err)
	}
	return v, nil
}

// Names is what a binding may refer to beyond the fixed roots and
// JavaScript's built-ins.
type Names struct {
	Modules map[string]bool
	// AnyModule accepts every other name as a module's: for templates
	// checked before the package's modules are known (package.yaml's
	// credentials), whose module references are checked where used.
	AnyModule bool
}

// Parse splits src into literal text and bindings, checking and compiling
// each binding. Errors are *engine.SourceError values located in the file.
func Parse(src string, pos Pos, names Names) (*Template, error) {
	t := &Template{Src: src}
	var errs []error
	lit := 0
	for i := 0; i < len(src)-1; {
		open := src[i : i+2]
		if open != "<<" && open != "{{" {
			i++
			continue
		}
		closer := ">>"
		if open == "{{" {
			closer = "}}"
		}
		end, err := scanExpr(src, i+2, closer)
		if err != nil {
			line, col := pos.at(src, i)
			errs = append(errs, engine.Errorf(pos.File, line, col, "binding %s…: %v", open, err))
			break
		}
		if i > lit {
			t.Parts = append(t.Parts, Part{Lit: src[lit:i]})
		}
		start := i + 2
		for start < end && isSpace(src[start]) {
			start++
		}
		line, col := pos.at(src, start)
		e, err := compile(strings.TrimSpace(src[i+2:end]), pos.File, line, col, names)
		if err != nil {
			errs = append(errs, err)
		}
		t.Parts = append(t.Parts, Part{Expr: e})
		i = end + 2
		lit = i
	}
	if lit < len(src) {
		t.Parts = append(t.Parts, Part{Lit: src[lit:]})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// at converts a byte offset in the template's text to a file position.
func (p Pos) at(src string, off int) (line, col int) {
	line, col = p.Line, p.Col
	if p.Quoted {
		col++
	}
	for _, c := range src[:off] {
		if c == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return line, col
}

// scanExpr finds the closer of a binding that starts at from, skipping JS
// string literals and nested brackets.
func scanExpr(src string, from int, closer string) (int, error) {
	depth := 0
	for i := from; i < len(src); i++ {
		c := src[i]
		switch c {
		case '\'', '"', '`':
			j := i + 1
			for ; j < len(src) && src[j] != c; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			if j >= len(src) {
				return 0, fmt.Errorf("unterminated string literal")
			}
			i = j
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth == 0 && strings.HasPrefix(src[i:], closer) {
				return i, nil
			}
			if depth > 0 {
				depth--
			}
		case '>':
			if depth == 0 && closer == ">>" && strings.HasPrefix(src[i:], ">>") {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("no closing %s", closer)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Single returns the binding if the template is exactly one binding,
// surrounding white space aside.
func (t *Template) Single() *Expr {
	var e *Expr
	for _, p := range t.Parts {
		switch {
		case p.Expr != nil && e == nil:
			e = p.Expr
		case p.Expr != nil || strings.TrimSpace(p.Lit) != "":
			return nil
		}
	}
	return e
}

// Static reports whether the template has no bindings.
func (t *Template) Static() bool {
	for _, p := range t.Parts {
		if p.Expr != nil {
			return false
		}
	}
	return true
}

// Text renders the template with every value as text.
// Field is Text for a query parameter, header or form field: defined is
// false when the template is a single binding whose value is undefined
// (a missing key), and the field is then left out, not sent empty.
func (t *Template) Field(scope engine.Scope, params any) (text string, defined bool, err error) {
	if len(t.Parts) == 1 && t.Parts[0].Expr != nil {
		v, err := t.Parts[0].Expr.Eval(scope, params)
		if err != nil {
			return "", false, err
		}
		if engine.IsUndefined(v) {
			return "", false, nil
		}
		return Text(v), true, nil
	}
	s, err := t.Text(scope, params)
	return s, true, err
}

func (t *Template) Text(scope engine.Scope, params any) (string, error) {
	if len(t.Parts) == 1 && t.Parts[0].Expr == nil {
		return t.Parts[0].Lit, nil
	}
	var b strings.Builder
	for _, p := range t.Parts {
		if p.Expr == nil {
			b.WriteString(p.Lit)
			continue
		}
		v, err := p.Expr.Eval(scope, params)
		if err != nil {
			return "", err
		}
		b.WriteString(Text(v))
	}
	return b.String(), nil
}
