package js

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"

	"github.com/modrun/modrun/engine"
)

var (
	_ engine.Kind           = Kind{}
	_ engine.Module         = (*Module)(nil)
	_ engine.FunctionLister = (*Module)(nil)
)

// Kind compiles NAME.js files.
type Kind struct{}

// Match implements engine.Kind.
func (Kind) Match(p string) (string, bool) {
	name, ok := strings.CutSuffix(path.Base(p), ".js")
	return name, ok && name != ""
}

// Module is a compiled JS module.
type Module struct {
	name, path string
	prog       *goja.Program
	functions  []string
	libs       []string // Libraries it uses, loaded into its runtimes
}

// Name implements engine.Module.
func (m *Module) Name() string { return m.name }

// File implements engine.Module.
func (m *Module) File() string { return m.path }

// The module's source is wrapped in a function so that its top-level names
// stay private; the prefix sits on the first line, so only that line's
// columns move, and errors there are corrected.
const (
	exportVar = "$$dflt"
	prefix    = "(function(){var " + exportVar + ";"
	suffix    = "\n;return " + exportVar + ";})"
)

// Compile implements engine.Kind.
func (Kind) Compile(src engine.Source) (engine.Module, error) {
	if !utf8.Valid(src.Data) {
		line := 1 + bytes.Count(src.Data[:invalidUTF8(src.Data)], []byte("\n"))
		return nil, engine.Errorf(src.Path, line, 0, "not valid UTF-8: a JS module is UTF-8 text")
	}
	_, ast, err := rewrite(src.Path, string(src.Data))
	if err != nil {
		return nil, err
	}
	// The syntax tree rewrite ended with is compiled, and checked: the
	// source is parsed twice in all (once to find export default).
	prog, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, syntaxError(src.Path, err)
	}
	functions, libs, errs := check(src, ast)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Module{name: src.Name, path: src.Path, prog: prog, functions: functions, libs: libs}, nil
}

// Functions implements engine.FunctionLister: the default export's
// members that are functions, sorted.
func (m *Module) Functions() []string { return m.functions }

// rewrite replaces the one "export default" of a module by an assignment of
// the same length, using the parser to find the real keyword: strings,
// comments and template literals are never touched. It returns the
// rewritten source and the syntax tree of its wrapped form.
func rewrite(file, src string) (string, *ast.Program, error) {
	found := false
	for range 16 {
		// The bare source first: errors of the wrapped one come sorted by
		// position, and the parser's recovery reports some in the wrapper.
		_, err := parser.ParseFile(nil, file, src, 0)
		if err == nil {
			if !found {
				return "", nil, engine.Errorf(file, 0, 0, "no export default: a JS module is export default { ... }")
			}
			prog, err := parser.ParseFile(nil, file, prefix+src+suffix, 0)
			if err != nil {
				return "", nil, syntaxError(file, err)
			}
			return src, prog, nil
		}
		var list parser.ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			return "", nil, engine.Errorf(file, 0, 0, "%v", err)
		}
		e := list[0]
		off := offset(src, e.Position.Line, e.Position.Column)
		word := src[off:]
		switch {
		case e.Message != "Unexpected reserved word":
			return "", nil, engine.Errorf(file, e.Position.Line, e.Position.Column, "%s", e.Message)
		case strings.HasPrefix(word, "import"):
			return "", nil, engine.Errorf(file, e.Position.Line, e.Position.Column,
				"import is not supported: modules of a package reach each other by name (auth.login(), refreshAPI.run())")
		case !strings.HasPrefix(word, "export"):
			return "", nil, engine.Errorf(file, e.Position.Line, e.Position.Column, "%s", e.Message)
		}
		rest := word[len("export"):]
		def := strings.TrimLeft(rest, " \t\r\n")
		if !strings.HasPrefix(def, "default") || (len(def) > 7 && isIdentByte(def[7])) {
			return "", nil, engine.Errorf(file, e.Position.Line, e.Position.Column,
				"named exports are not supported: put every member inside export default { ... }")
		}
		if found {
			return "", nil, engine.Errorf(file, e.Position.Line, e.Position.Column, "a second export default; a module has one")
		}
		found = true
		defOff := off + len("export") + (len(rest) - len(def))
		// "export" becomes "$$dflt" and "default" "=      ": same lengths.
		src = src[:off] + exportVar + src[off+6:defOff] + "=      " + src[defOff+7:]
	}
	return "", nil, engine.Errorf(file, 0, 0, "too many export statements")
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// offset converts a 1-based line and column to a byte offset.
func offset(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(src[off:], '\n')
		if i < 0 {
			return len(src)
		}
		off += i + 1
	}
	// Columns count characters; step over them as runes (src is valid
	// UTF-8, checked by Compile).
	for c := 1; c < col && off < len(src); c++ {
		_, size := utf8.DecodeRuneInString(src[off:])
		off += size
	}
	return off
}

// invalidUTF8 is the offset of the first byte of b that is not valid UTF-8.
func invalidUTF8(b []byte) int {
	for off := 0; off < len(b); {
		r, size := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && size == 1 {
			return off
		}
		off += size
	}
	return len(b)
}

// syntaxError reports a compile error as file:line:col: message, with the
// first line's column corrected for the wrapper.
func syntaxError(file string, err error) error {
	var ce *goja.CompilerSyntaxError
	if errors.As(err, &ce) {
		p := ce.File.Position(ce.Offset)
		col := p.Column
		if p.Line == 1 {
			col -= len(prefix)
		}
		return engine.Errorf(file, p.Line, col, "%s", ce.Message)
	}
	var list parser.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		p := list[0].Position
		if p.Line == 1 {
			p.Column -= len(prefix)
		}
		return engine.Errorf(file, p.Line, max(p.Column, 0), "%s", list[0].Message)
	}
	return fmt.Errorf("%s: %w", file, err)
}
