package binding_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/engine/enginetest"
)

// scope resolves plain paths natively (enginetest.MapScope) and
// evaluates everything else with goja, as the JS instance does.
type scope struct {
	enginetest.MapScope
	evals int
}

func (s *scope) Eval(e engine.Expr, params any) (any, error) {
	s.evals++
	rt := goja.New()
	rt.Set("inputs", s.Inputs)
	rt.Set("appsmith", map[string]any{"store": s.Store})
	rt.Set("params", params)
	fn, err := rt.RunProgram(e.(*binding.Expr).Program())
	if err != nil {
		return nil, err
	}
	call, _ := goja.AssertFunction(fn)
	this := rt.NewObject()
	this.Set("params", params)
	v, err := call(this, rt.ToValue(params))
	if err != nil {
		return nil, err
	}
	return v.Export(), nil
}

var names = binding.Names{Modules: map[string]bool{"refreshAPI": true, "auth": true}}

func parse(t *testing.T, src string) *binding.Template {
	t.Helper()
	tp, err := binding.Parse(src, binding.Pos{File: "q.query.yaml", Line: 3, Col: 6}, names)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return tp
}

func TestParseSplitsBindings(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string // literals as is, bindings as [expr]
	}{
		{"plain", []string{"plain"}},
		{"<<inputs.baseUrl>>/x", []string{"[inputs.baseUrl]", "/x"}},
		{"a{{ params.x }}b<<params.y>>", []string{"a", "[params.x]", "b", "[params.y]"}},
		{"<< {a: 1}.a >>", []string{"[{a: 1}.a]"}},
		{"{{ {a: {b: 1}}.a.b }}", []string{"[{a: {b: 1}}.a.b]"}},
		{`<< "x>>y" + params.z >>`, []string{`["x>>y" + params.z]`}},
		{`{{ '}}' }}`, []string{`['}}']`}},
		{"<<(params.n >> 1)>>", []string{"[(params.n >> 1)]"}},
	} {
		tp := parse(t, tc.src)
		var got []string
		for _, p := range tp.Parts {
			if p.Expr != nil {
				got = append(got, "["+p.Expr.Src+"]")
			} else {
				got = append(got, p.Lit)
			}
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Parse(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestParseErrorsHavePositions(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"x <<appsmith.store.>>", "q.query.yaml:3:25: syntax error"},
		{"<<nope.x>>", `q.query.yaml:3:8: binding "nope.x" refers to unknown name "nope"`},
		{"ok\n<<a + b>>", `q.query.yaml:4:3: binding "a + b" refers to unknown names "a", "b"`},
		{"<<params.x", "q.query.yaml:3:6: binding <<…: no closing >>"},
		{"<<>>", "empty binding"},
		{"<<a; b>>", "syntax error"},
	} {
		_, err := binding.Parse(tc.src, binding.Pos{File: "q.query.yaml", Line: 3, Col: 6}, names)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", tc.src, err, tc.want)
		}
		var se *engine.SourceError
		if err != nil && !errors.As(err, &se) {
			t.Errorf("Parse(%q): error is not a SourceError: %T", tc.src, err)
		}
	}
}

func TestBindingsMayDeclareTheirOwnNames(t *testing.T) {
	for _, src := range []string{
		"<<params.items.map(x => x.id).join(',')>>",
		"<<[1,2].reduce(function (acc, v) { var s = acc + v; return s }, 0)>>",
		"<<JSON.stringify({a: params.a, b: Math.max(1, 2)})>>",
		"<<((a, {b}, [c]) => a + b + c)(1, {b: 2}, [3])>>",
		"<<auth.retries + refreshAPI.data.x>>",
		"<<this.params.x ?? 'none'>>",
	} {
		parse(t, src)
	}
}

func TestFastPathSkipsJS(t *testing.T) {
	s := &scope{MapScope: enginetest.MapScope{Store: map[string]any{"tok": "abc"}, Inputs: map[string]any{"u": "x"}}}
	params := map[string]any{"a": map[string]any{"b": 1.5}}
	for _, tc := range []struct {
		src  string
		want string
	}{
		{"<<appsmith.store.tok>>", "abc"},
		{"<<appsmith.store['tok']>>", "abc"},
		{`<<this.params.a["b"]>>`, "1.5"},
		{"<<params.a.b>>", "1.5"},
		{"<<inputs.u>>", "x"},
		{"<<appsmith.store.notYetSet>>", ""},
	} {
		got, err := parse(t, tc.src).Text(s, params)
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
	if s.evals != 0 {
		t.Fatalf("plain paths started JS %d times", s.evals)
	}
	got, err := parse(t, "<<params.a.b * 2>>").Text(s, params)
	if err != nil || got != "3" || s.evals != 1 {
		t.Fatalf("expression: %q, %v, evals %d", got, err, s.evals)
	}
}

func TestTextOfValues(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{nil, ""}, {"s", "s"}, {true, "true"}, {3.0, "3"}, {0.1, "0.1"}, {1e21, "1e+21"}, {1e-7, "1e-7"},
		{int64(7), "7"}, {json.RawMessage(`"q"`), "q"}, {json.RawMessage(`{"a":1}`), `{"a":1}`},
		{map[string]any{"a": "<b>"}, `{"a":"<b>"}`}, {[]any{1.0, "x"}, `[1,"x"]`},
	} {
		if got := binding.Text(tc.v); got != tc.want {
			t.Errorf("Text(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func renderJSON(t *testing.T, src string, params any) string {
	t.Helper()
	jt, err := binding.ParseJSON(src, binding.Pos{File: "q.query.yaml", Line: 1, Col: 1}, names)
	if err != nil {
		t.Fatalf("ParseJSON(%q): %v", src, err)
	}
	out, err := jt.Render(&scope{}, params)
	if err != nil {
		t.Fatalf("Render(%q): %v", src, err)
	}
	return string(out)
}

func TestJSONTemplateContexts(t *testing.T) {
	p := map[string]any{"s": `he said "hi" \o/`, "n": 5.0, "num": "123", "obj": map[string]any{"k": []any{true, nil}}}
	for _, tc := range []struct{ src, want string }{
		{`{"a": <<params.s>>}`, `{"a": "he said \"hi\" \\o/"}`},
		{`{"a": "<<params.s>>"}`, `{"a": "he said \"hi\" \\o/"}`},
		{`{"a": "x<<params.s>>"}`, `{"a": "xhe said \"hi\" \\o/"}`},
		{`{"a": "<<params.num>>"}`, `{"a": "123"}`},
		{`{"a": <<params.n>>, "b": "<<params.n>>", "c": "n=<<params.n>>"}`, `{"a": 5, "b": 5, "c": "n=5"}`},
		{`{"a": <<params.obj>>}`, `{"a": {"k":[true,null]}}`},
		{`{"a": <<params.missing>>, "b": "<<params.missing>>", "c": "[<<params.missing>>]"}`, `{"a": null, "b": null, "c": "[]"}`},
		{`{"<<params.n>>": 1}`, `{"5": 1}`},
		{`{"a\"<<params.n>>": "<<params.s>><<params.n>>"}`, `{"a\"5": "he said \"hi\" \\o/5"}`},
		{`["{{params.n}}", {{ params.s }}]`, `[5, "he said \"hi\" \\o/"]`},
	} {
		got := renderJSON(t, tc.src, p)
		if got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.src, got, tc.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s rendered invalid JSON %s", tc.src, got)
		}
	}
}

func TestJSONTemplateMustBeJSON(t *testing.T) {
	_, err := binding.ParseJSON(`{"a": <<params.x>>,}`, binding.Pos{File: "f.query.yaml", Line: 7, Col: 9}, names)
	if err == nil || !strings.Contains(err.Error(), "f.query.yaml:7:9: the JSON body is not valid JSON") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzParse: any text either parses or fails with a located error; never a
// panic. A parsed template's literal parts reappear in order in the source.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "<<a>>", "{{x}}", "a<<params.b>>c", "<<'>>'>>", "{{ {a:1} }}", "<<", "}}{{", "<<params[\"x\"]>>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tp, err := binding.Parse(src, binding.Pos{File: "f", Line: 1, Col: 1}, names)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		rest := src
		for _, p := range tp.Parts {
			s := p.Lit
			if p.Expr != nil {
				s = p.Expr.Src
			}
			i := strings.Index(rest, s)
			if i < 0 {
				t.Fatalf("part %q not found in order in %q", s, src)
			}
			rest = rest[i+len(s):]
		}
	})
}

// FuzzJSONRoundTrip: for any string value, the body is valid JSON and gives
// the value back exactly, in every position.
func FuzzJSONRoundTrip(f *testing.F) {
	for _, s := range []string{"", `"`, `\`, "}}", ">>", "{{x}}", "<<x>>", "\n\r\t", "</script>", "&=", "😀", "\u2028", "\x00"} {
		f.Add(s)
	}
	jt, err := binding.ParseJSON(`{"bare": <<params.v>>, "quoted": "<<params.v>>", "inside": "[<<params.v>>]"}`,
		binding.Pos{File: "f", Line: 1, Col: 1}, names)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) {
			t.Skip("JavaScript strings reach Go as valid UTF-8")
		}
		out, err := jt.Render(&scope{}, map[string]any{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Bare, Quoted, Inside string }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		if got.Bare != v || got.Quoted != v || got.Inside != "["+v+"]" {
			t.Fatalf("round trip of %q gave %+v", v, got)
		}
	})
}

func TestJSONNumbersMatchEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 3.5, 1e20, 1e21, 1.5e21, 1e-6, 1e-7, 123456789.125, -0.000001234, 5e-324, 1.7976931348623157e308} {
		got, _ := binding.JSON(f)
		want, _ := json.Marshal(f)
		if string(got) != string(want) {
			t.Errorf("JSON(%v) = %s, encoding/json says %s", f, got, want)
		}
	}
	for _, v := range []any{int64(-42), 7, true, false} {
		got, _ := binding.JSON(v)
		want, _ := json.Marshal(v)
		if string(got) != string(want) {
			t.Errorf("JSON(%v) = %s, want %s", v, got, want)
		}
	}
}

// TestNumbersAsJavaScriptWritesThem: String(n) for text and
// JSON.stringify(n) for JSON share one formatter; -0 is "0" in both.
func TestNumbersAsJavaScriptWritesThem(t *testing.T) {
	for _, c := range []struct {
		f          float64
		text, json string
	}{
		{0, "0", "0"},
		{math.Copysign(0, -1), "0", "0"},
		{3, "3", "3"},
		{-123.456, "-123.456", "-123.456"},
		{0.000001, "0.000001", "0.000001"},
		{1e-7, "1e-7", "1e-7"},
		{1.5e-300, "1.5e-300", "1.5e-300"},
		{1e20, "100000000000000000000", "100000000000000000000"},
		{1e21, "1e+21", "1e+21"},
		{math.NaN(), "NaN", "null"},
		{math.Inf(-1), "-Infinity", "null"},
	} {
		j, err := binding.JSON(c.f)
		if got := binding.Text(c.f); got != c.text || err != nil || string(j) != c.json {
			t.Errorf("%v: Text %q, JSON %s (%v); want %q, %s", c.f, got, j, err, c.text, c.json)
		}
	}
}
