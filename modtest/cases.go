package modtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/yamlfile"
)

// Dir is where a package keeps its tests, and Cassettes its recordings.
const (
	Dir       = "tests"
	Cassettes = "tests/cassettes"
)

// Case is one test case: a call of a package's target and what it must
// give.
type Case struct {
	Name   string // unique in the package; names its cassette
	File   string // the test file, relative to the package
	Line   int
	Before []string          // targets called first, on the same instance, whose results are not checked
	Run    string            // MODULE.FUNCTION or a query module
	Args   []json.RawMessage // a function's arguments
	Params json.RawMessage   // a query's this.params
	Inputs map[string]any    // the package's inputs for the case
	App    string            // the store namespace; empty: the package's name
	Store  map[string]json.RawMessage
	Expect Expect
}

// Expect is what a case checks. Result compares objects as subsets (each
// expected field must be there and equal; others may be too), arrays and
// scalars exactly; Error is a substring of the call's error; Store
// compares the listed keys (null: the key must be absent).
type Expect struct {
	Result json.RawMessage
	Error  string
	Store  map[string]json.RawMessage
}

// file is a test file's YAML.
type file struct {
	Cases []caseFile `yaml:"cases"`
}

type caseFile struct {
	Name   string         `yaml:"name"`
	Before []string       `yaml:"before"`
	Run    string         `yaml:"run"`
	Args   []any          `yaml:"args"`
	Params map[string]any `yaml:"params"`
	Inputs map[string]any `yaml:"inputs"`
	App    string         `yaml:"app"`
	Store  map[string]any `yaml:"store"`
	Expect struct {
		Result any            `yaml:"result"`
		Error  string         `yaml:"error"`
		Store  map[string]any `yaml:"store"`
	} `yaml:"expect"`
}

// nameRe is a case name's alphabet. validName checks the length apart:
// the counted repetition {0,99} compiled to 1,331 allocations, a
// millisecond of every runner start and every worker's.
var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _.,:;'()/-]*$`)

// validName reports whether s is a case name: 1 to 100 characters of
// nameRe's alphabet (ASCII, so bytes are characters), the first a letter
// or a digit.
func validName(s string) bool { return len(s) <= 100 && nameRe.MatchString(s) }

// Parse reads the cases of one test file, named name (its path in the
// package, for errors): a YAML document with a list of cases under
// cases:. Errors name the file and line.
func Parse(name string, data []byte) ([]Case, error) {
	var f file
	if err := yamlfile.Decode(name, data, &f); err != nil {
		return nil, err
	}
	if len(f.Cases) == 0 {
		return nil, engine.Errorf(name, 0, 0, "no cases: want a list under cases:")
	}
	// The same document as nodes, for each case's line.
	var lines struct {
		Cases []yaml.Node `yaml:"cases"`
	}
	yaml.Unmarshal(data, &lines)
	var out []Case
	var errs []error
	for i := range f.Cases {
		line := 0
		if i < len(lines.Cases) {
			line = lines.Cases[i].Line
		}
		c, err := parseCase(name, line, &f.Cases[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return out, nil
}

func parseCase(file string, line int, cf *caseFile) (Case, error) {
	bad := func(format string, args ...any) error { return engine.Errorf(file, line, 0, format, args...) }
	c := Case{Name: cf.Name, File: file, Line: line, Before: cf.Before, Run: cf.Run, Inputs: cf.Inputs, App: cf.App,
		Expect: Expect{Error: cf.Expect.Error}}
	var err error
	switch {
	case !validName(cf.Name):
		return c, bad("case name %q: want 1 to 100 letters, digits, spaces and . , : ; ' ( ) / _ -", cf.Name)
	case !isTarget(cf.Run):
		return c, bad("case %q: run %q: want MODULE.FUNCTION or a query module's name", cf.Name, cf.Run)
	case cf.Args != nil && cf.Params != nil:
		return c, bad("case %q: args (a function's) or params (a query's), not both", cf.Name)
	case cf.Expect.Result != nil && cf.Expect.Error != "":
		return c, bad("case %q: expect a result or an error, not both", cf.Name)
	}
	for _, b := range cf.Before {
		if !isTarget(b) {
			return c, bad("case %q: before %q: want MODULE.FUNCTION or a query module's name", cf.Name, b)
		}
	}
	for _, a := range cf.Args {
		raw, err := json.Marshal(a)
		if err != nil {
			return c, bad("case %q: args: %v", cf.Name, err)
		}
		c.Args = append(c.Args, raw)
	}
	if cf.Params != nil {
		if c.Params, err = json.Marshal(cf.Params); err != nil {
			return c, bad("case %q: params: %v", cf.Name, err)
		}
	}
	if cf.Expect.Result != nil {
		if c.Expect.Result, err = json.Marshal(cf.Expect.Result); err != nil {
			return c, bad("case %q: expect.result: %v", cf.Name, err)
		}
	}
	if c.Store, err = rawMap(cf.Store); err != nil {
		return c, bad("case %q: store: %v", cf.Name, err)
	}
	if c.Expect.Store, err = rawMap(cf.Expect.Store); err != nil {
		return c, bad("case %q: expect.store: %v", cf.Name, err)
	}
	return c, nil
}

func rawMap(m map[string]any) (map[string]json.RawMessage, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		out[k] = raw
	}
	return out, nil
}

// Load reads every case of the package in dir: its tests/*.test.yaml,
// in file order. Case names must be unique (each names its cassette).
func Load(dir string) ([]Case, error) {
	paths, err := filepath.Glob(filepath.Join(dir, Dir, "*.test.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no tests: write cases in %s/NAME.test.yaml", dir, Dir)
	}
	sort.Strings(paths)
	var all []Case
	seen := map[string]string{}
	var errs []error
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		rel := filepath.ToSlash(filepath.Join(Dir, filepath.Base(p)))
		cases, err := Parse(rel, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range cases {
			slug := Slug(c.Name)
			if prev, dup := seen[slug]; dup {
				errs = append(errs, engine.Errorf(c.File, c.Line, 0, "case %q: its cassette name %s is taken by %s", c.Name, slug, prev))
				continue
			}
			seen[slug] = fmt.Sprintf("%s:%d", c.File, c.Line)
			all = append(all, c)
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return all, nil
}

// Slug is a case's cassette file name, without .yaml.
func Slug(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func joinErrors(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}

// isTarget reports whether s is a target's syntax (engine.ParseTarget).
func isTarget(s string) bool {
	_, err := engine.ParseTarget(s)
	return err == nil
}
