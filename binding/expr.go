package binding

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/jsscan"
)

// Roots are the fixed names a binding may start from.
var Roots = []string{"appsmith", "inputs", "params"}

// builtins are JavaScript's global names a binding may use.
var builtins = map[string]bool{
	"undefined": true, "NaN": true, "Infinity": true, "globalThis": true,
	"JSON": true, "Math": true, "Date": true, "Number": true, "String": true,
	"Boolean": true, "Array": true, "Object": true, "RegExp": true, "Error": true,
	"TypeError": true, "RangeError": true, "Symbol": true, "BigInt": true,
	"Map": true, "Set": true, "WeakMap": true, "WeakSet": true, "Promise": true,
	"Reflect": true, "Proxy": true, "Intl": true, "ArrayBuffer": true,
	"Uint8Array": true, "parseInt": true, "parseFloat": true, "isNaN": true,
	"isFinite": true, "encodeURIComponent": true, "decodeURIComponent": true,
	"encodeURI": true, "decodeURI": true, "escape": true, "unescape": true,
}

// compile checks one binding expression and compiles it.
func compile(src, file string, line, col int, names Names) (*Expr, error) {
	e := &Expr{Src: src, File: file, Line: line, Col: col}
	if src == "" {
		return nil, engine.Errorf(file, line, col, "empty binding")
	}
	// The parser sees "(" + src + "\n)": column 1 of its line 1 is our "(".
	prog, err := parser.ParseFile(nil, file, "("+src+"\n)", 0)
	if err != nil {
		var list parser.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			p := list[0].Position
			if n := strings.Count(src, "\n") + 1; p.Line > n {
				// Past the end: the parser hit our closing parenthesis.
				last := src[strings.LastIndexByte(src, '\n')+1:]
				p.Line, p.Column = n, len(last)+2
			}
			l, c := line+p.Line-1, p.Column
			if p.Line == 1 {
				c = col + p.Column - 2
			}
			return nil, engine.Errorf(file, l, c, "syntax error in binding %q: %s", src, list[0].Message)
		}
		return nil, engine.Errorf(file, line, col, "syntax error in binding %q: %v", src, err)
	}
	if len(prog.Body) != 1 {
		return nil, engine.Errorf(file, line, col, "binding %q must be one expression", src)
	}
	scan := jsscan.Node(prog)
	var unknown []string
	for _, id := range freeIdentifiers(scan) {
		if !builtins[id] && !names.Modules[id] && !names.AnyModule && !isRoot(id) {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		return nil, engine.Errorf(file, line, col, "binding %q refers to unknown %s; a binding may use appsmith.store, inputs, this.params (or params), the package's modules and JavaScript built-ins",
			src, plural(unknown))
	}
	if root, name, idx, ok := closedMember(scan); ok {
		// idx is 1-based in "(" + src: column col+idx-2 on the first line.
		l, c := line, col+idx-2
		if nl := strings.LastIndexByte(src[:max(0, min(len(src), idx-2))], '\n'); nl >= 0 {
			l, c = line+strings.Count(src[:idx-2], "\n"), idx-2-nl
		}
		want := map[string]string{"this": "this.params", "appsmith": "appsmith.store"}[root]
		return nil, engine.Errorf(file, l, c, "binding %q: %s has no %q; a binding reads %s", src, root, name, want)
	}
	if root, keys, ok := parsePath(src); ok {
		e.root, e.keys = root, keys
	}
	p, err := goja.Compile(file, "(function(params){return ("+src+"\n);})", false)
	if err != nil {
		return nil, engine.Errorf(file, line, col, "binding %q: %v", src, err)
	}
	e.prog = p
	return e, nil
}

func isRoot(id string) bool {
	for _, r := range Roots {
		if r == id {
			return true
		}
	}
	return false
}

func plural(ids []string) string {
	if len(ids) == 1 {
		return "name " + strconv.Quote(ids[0])
	}
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = strconv.Quote(id)
	}
	return "names " + strings.Join(q, ", ")
}

// freeIdentifiers returns the names an expression reads that it does not
// declare itself (as a parameter or variable), sorted.
func freeIdentifiers(scan *jsscan.Scan) []string {
	var out []string
	for _, id := range scan.Free() {
		out = append(out, id.Name.String())
	}
	sort.Strings(out)
	return out
}

// closedMember finds a member of a closed root that does not exist:
// this.X other than this.params, appsmith.X other than appsmith.store. It
// returns the name and its offset in the parsed text.
func closedMember(scan *jsscan.Scan) (root, name string, idx int, ok bool) {
	for _, m := range scan.Members {
		name := m.Identifier.Name.String()
		switch l := m.Left.(type) {
		case *ast.ThisExpression:
			if name != "params" {
				return "this", name, int(m.Identifier.Idx), true
			}
		case *ast.Identifier:
			if l.Name == "appsmith" && !scan.Declared["appsmith"] && name != "store" {
				return "appsmith", name, int(m.Identifier.Idx), true
			}
		}
	}
	return "", "", 0, false
}

// parsePath recognises root(.name | [number] | ["string"])* with root one of
// appsmith, inputs, params, this.params or a module name.
func parsePath(src string) (root string, keys []string, ok bool) {
	s := src
	name := func() (string, bool) {
		i := 0
		for i < len(s) && (isIdentChar(s[i]) || (i > 0 && s[i] >= '0' && s[i] <= '9')) {
			i++
		}
		if i == 0 {
			return "", false
		}
		n := s[:i]
		s = s[i:]
		return n, true
	}
	root, ok = name()
	if !ok {
		return "", nil, false
	}
	if root == "this" {
		if !strings.HasPrefix(s, ".params") {
			return "", nil, false
		}
		s = s[1:]
		root, _ = name()
		if root != "params" {
			return "", nil, false
		}
	}
	for len(s) > 0 {
		switch s[0] {
		case '.':
			s = s[1:]
			k, ok := name()
			if !ok {
				return "", nil, false
			}
			keys = append(keys, k)
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return "", nil, false
			}
			inner := s[1:end]
			if n, err := strconv.Atoi(inner); err == nil && n >= 0 {
				keys = append(keys, strconv.Itoa(n))
			} else if k, err := strconv.Unquote(inner); err == nil && len(inner) > 1 && inner[0] == '"' {
				keys = append(keys, k)
			} else if len(inner) > 1 && inner[0] == '\'' && inner[len(inner)-1] == '\'' && !strings.ContainsAny(inner[1:len(inner)-1], `'\`) {
				keys = append(keys, inner[1:len(inner)-1])
			} else {
				return "", nil, false
			}
			s = s[end+1:]
		default:
			return "", nil, false
		}
	}
	return root, keys, true
}

func isIdentChar(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// Error formats a failed evaluation of e, located in its file.
func (e *Expr) Error(err error) error {
	return fmt.Errorf("%s:%d:%d: binding %q: %w", e.File, e.Line, e.Col, e.Src, err)
}
