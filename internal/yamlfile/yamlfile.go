package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/modrun/modrun/engine"
)

var (
	lineRe    = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRe = regexp.MustCompile(`^field (\S+) not found in type .*$`)
	typeRe    = regexp.MustCompile(`not found in type (\S+)$`)
	mapRe     = regexp.MustCompile(`^cannot unmarshal !!map into (\S+)$`)
)

// Fatal reports whether err from Decode left v unusable (a syntax error).
// Unknown fields and type mismatches are not fatal: v holds everything
// else, so a caller can go on checking and report every problem at once.
func Fatal(err error) bool {
	var p *partial
	return err != nil && !errors.As(err, &p)
}

// partial marks the errors of a decode that filled in what it could.
type partial struct{ err error }

func (p *partial) Error() string { return p.err.Error() }
func (p *partial) Unwrap() error { return p.err }

// Decode decodes data, the contents of file, into v. Unknown fields and
// type mismatches are returned as *engine.SourceError values, joined; see
// Fatal.
//
// Aliases are bounded first (see Limits): the fields of v that are
// yaml.Node values keep aliases unexpanded, so a caller walking them
// would otherwise follow a cycle or a bomb that yaml.v3's own limits
// never see.
func Decode(file string, data []byte, v any) error {
	if err := checkAliases(file, data); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return engine.Errorf(file, 0, 0, "file is empty")
	}
	if err != nil {
		return convert(file, data, err, v)
	}
	// A second document is almost always a mistake (a stray ---).
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return engine.Errorf(file, extra.Line, extra.Column, "a second YAML document; a module file holds one")
	}
	return nil
}

func convert(file string, data []byte, err error, v any) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// A syntax error: "yaml: line 3: mapping values are not allowed…"
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := lineRe.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		// The usual cause: an unquoted {{ binding, which YAML reads as a
		// flow mapping.
		if l, c := unquotedBraces(data); l > 0 {
			return engine.Errorf(file, l, c, "%s%s", msg, QuoteHint)
		}
		if line == 0 && strings.Contains(msg, "cannot start any token") {
			// yaml.v3 leaves out the line of some scanner errors.
			for i, l := range strings.Split(string(data), "\n") {
				if strings.ContainsAny(l, "\t@`") {
					line = i + 1
					break
				}
			}
		}
		return engine.Errorf(file, line, column(data, line, msg), "%s", msg)
	}
	var errs []error
	for _, e := range te.Errors {
		line, msg := 0, e
		if m := lineRe.FindStringSubmatch(e); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		if m := unknownRe.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("unknown field %q", m[1])
			if valid := fieldsOf(reflect.TypeOf(v), unknownType(e)); len(valid) > 0 {
				msg += " (valid fields: " + strings.Join(valid, ", ") + ")"
			}
		} else if m := mapRe.FindStringSubmatch(msg); m != nil {
			msg = "expected a " + m[1] + ", found a mapping" + QuoteHint
		}
		errs = append(errs, engine.Errorf(file, line, 0, "%s", msg))
	}
	return &partial{errors.Join(errs...)}
}

var bracesRe = regexp.MustCompile(`(^|[:\-]\s+)\{\{`)

// unquotedBraces finds the first value that starts with an unquoted {{.
func unquotedBraces(data []byte) (line, col int) {
	for i, l := range strings.Split(string(data), "\n") {
		if loc := bracesRe.FindStringIndex(l); loc != nil {
			return i + 1, loc[1] - 1
		}
	}
	return 0, 0
}

// QuoteHint explains the usual cause of a mapping where a string was meant.
const QuoteHint = ` (in YAML a value that starts with {{ must be quoted: "{{ expr }}"; or write <<expr>>, which needs no quotes)`

// NodeError returns a *engine.SourceError at n's position.
func NodeError(file string, n *yaml.Node, format string, args ...any) *engine.SourceError {
	return engine.Errorf(file, n.Line, n.Column, format, args...)
}

// Limits on a YAML file's structure, aliases expanded.
const (
	MaxNodes = 100_000 // nodes, counting each alias as the nodes it stands for
	MaxDepth = 1000    // nesting of mappings and lists
)

// checkAliases refuses a file whose aliases form a cycle or expand past
// MaxNodes, or that nests deeper than MaxDepth.
func checkAliases(file string, data []byte) error {
	// Without an alias (*) nothing expands, and nesting is bounded by the
	// brackets and lines there are: most files need no second parse.
	if bytes.IndexByte(data, '*') < 0 &&
		bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{"))+bytes.Count(data, []byte("\n")) < MaxDepth {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil // Decode reports it, with its position
	}
	w := aliasWalk{file: file, size: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}}
	w.count(&doc, 0)
	return w.err
}

type aliasWalk struct {
	file string
	size map[*yaml.Node]int  // expanded size of anchored nodes already walked
	open map[*yaml.Node]bool // anchored nodes being walked: an alias to one is a cycle
	err  error
}

// count returns the expanded size of n, or stops at the first problem.
func (w *aliasWalk) count(n *yaml.Node, depth int) int {
	if w.err != nil {
		return 0
	}
	if depth > MaxDepth {
		w.err = NodeError(w.file, n, "nested deeper than %d levels", MaxDepth)
		return 0
	}
	if n.Kind == yaml.AliasNode {
		t := n.Alias
		if w.open[t] {
			w.err = NodeError(w.file, n, "alias *%s refers to a value that contains it (an alias cycle)", n.Value)
			return 0
		}
		if s, ok := w.size[t]; ok {
			return s
		}
		return w.count(t, depth)
	}
	anchored := n.Anchor != ""
	if anchored {
		w.open[n] = true
	}
	total := 1
	for _, c := range n.Content {
		total += w.count(c, depth+1)
		if total > MaxNodes && w.err == nil {
			w.err = NodeError(w.file, n, "expands to more than %d values (aliases count as what they repeat)", MaxNodes)
		}
		if w.err != nil {
			return 0
		}
	}
	if anchored {
		delete(w.open, n)
		w.size[n] = total
	}
	return total
}

// unknownType is the Go type an unknown-field error names.
func unknownType(msg string) string {
	if m := typeRe.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

// fieldsOf returns the YAML field names of the struct type called name
// (as reflect writes it: "query.file") found in t or the types it holds.
func fieldsOf(t reflect.Type, name string) []string {
	seen := map[reflect.Type]bool{}
	var find func(t reflect.Type) []string
	find = func(t reflect.Type) []string {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return nil
		}
		seen[t] = true
		if t.String() == name {
			var out []string
			for i := range t.NumField() {
				tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
				if tag != "" && tag != "-" {
					out = append(out, tag)
				}
			}
			return out
		}
		for i := range t.NumField() {
			if out := find(t.Field(i).Type); out != nil {
				return out
			}
		}
		return nil
	}
	if t == nil {
		return nil
	}
	return find(t)
}

// column guesses where on line (1-based) a YAML syntax error is: yaml.v3
// reports only the line. A "mapping values" error is at the second ": "
// of the line; a bad character at the first tab or character that
// cannot start a token; anything else at the line's first non-blank.
func column(data []byte, line int, msg string) int {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return 0
	}
	l := lines[line-1]
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		if first := strings.Index(l, ": "); first >= 0 {
			if second := strings.Index(l[first+2:], ": "); second >= 0 {
				return first + 2 + second + 1
			}
		}
	case strings.Contains(msg, "cannot start any token") || strings.Contains(msg, "tab character"):
		if i := strings.IndexAny(l, "\t@`"); i >= 0 {
			return i + 1
		}
	}
	if i := strings.IndexFunc(l, func(r rune) bool { return r != ' ' && r != '\t' }); i >= 0 {
		return i + 1
	}
	return 0
}
