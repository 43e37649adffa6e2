package query_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/query"
)

// FuzzFormAndQueryRoundTrip: for any string value, the form body and the
// query string decode to exactly that value, and no other field appears.
func FuzzFormAndQueryRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a&b=c", "%zz", "+ +", "\x00", "😀", "=&=&", "#frag", "?q"} {
		f.Add(s)
	}
	type got struct {
		form, query url.Values
	}
	ch := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		ch <- got{r.PostForm, r.URL.Query()}
	}))
	defer srv.Close()
	m := compile(f, "q", `method: POST
url: <<inputs.baseUrl>>/x?q=<<this.params.v>>
query: {v: <<this.params.v>>}
body:
  form: {v: <<this.params.v>>, w: "[<<this.params.v>>]"}
`)
	sc := scope{Inputs: map[string]any{"baseUrl": srv.URL}}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) {
			t.Skip("JavaScript strings reach Go as valid UTF-8")
		}
		req, err := m.Bind(sc, map[string]any{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := req.Send(context.Background()); err != nil {
			t.Fatal(err)
		}
		g := <-ch
		if len(g.form) != 2 || g.form.Get("v") != v || g.form.Get("w") != "["+v+"]" {
			t.Fatalf("form for %q: %v", v, g.form)
		}
		if len(g.query) != 2 || g.query.Get("q") != v || g.query.Get("v") != v {
			t.Fatalf("query for %q: %v", v, g.query)
		}
	})
}

// FuzzCompile: any bytes as a query file compile or fail with an error
// naming the file; never a panic.
// aliasBomb is the classic "billion laughs" in 437 bytes of YAML.
const aliasBomb = `url: http://h/x
body:
  json:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

// TestHostileYAML: alias cycles and bombs, deep nesting and duplicate keys
// are load errors naming the file and line, found quickly.
func TestHostileYAML(t *testing.T) {
	pkg := &engine.PackageInfo{Name: "t", Inputs: map[string]engine.Input{}, Modules: map[string]string{"api": "api.query.yaml"}}
	for _, c := range []struct{ name, src, want string }{
		{"cycle", "url: http://h/x\nbody: {json: &a [*a]}\n", "api.query.yaml:2:18: alias *a refers to a value that contains it"},
		{"bomb", aliasBomb, "expands to more than 100000 values"},
		{"deep", "url: http://h/x\nbody: {json: " + strings.Repeat("[", 1100) + strings.Repeat("]", 1100) + "}\n", "nested deeper than 1000 levels"},
		{"duplicate json key", "url: http://h/x\nbody: {json: {a: 1, a: 2}}\n", `api.query.yaml:2:21: body.json: duplicate key "a"`},
		{"duplicate header", "url: http://h/x\nheaders: {A: x, A: y}\n", `headers: duplicate key "A"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := query.NewKind().Compile(engine.Source{Name: "api", Path: "api.query.yaml", Data: []byte(c.src), Pkg: pkg})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want %q", err, c.want)
			}
			// Refused in milliseconds; an unbounded alias bomb expands
			// for minutes. Generous for a loaded machine.
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	// Aliases within bounds still work.
	m, err := query.NewKind().Compile(engine.Source{Name: "api", Path: "api.query.yaml", Pkg: pkg,
		Data: []byte("url: http://h/x\nbody: {json: {a: &o {b: 1}, c: *o}}\n")})
	if err != nil || m == nil {
		t.Fatalf("bounded aliases: %v", err)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"url: <<inputs.baseUrl>>/x\n",
		"method: POST\nurl: <<inputs.baseUrl>>/t\nheaders: {Accept: application/json}\nbody:\n  json: {refresh_token: <<this.params.refreshtoken>>}\n",
		"url: http://h/x\nbody:\n  form: {a: <<this.params.a>>}\nauth: {bearer: <<inputs.token>>}\n",
		"url: <<\n", "url: <<a.b>>\nmethod: [1\n", "body: {json: <<x>>, text: y}\n", "timeout: -1s\n", "\t- \x00", "url: {{inputs.baseUrl}}\nquery: {q: '<<1+>>'}\n",
		// Aliases: a cycle, a bomb, a header through an alias.
		"url: http://h/x\nbody: {json: &a [*a]}\n",
		aliasBomb,
		"url: http://h/x\nheaders: {A: &v x, B: *v}\nbody: {json: {a: &o {b: 1}, c: *o}}\n",
	} {
		f.Add([]byte(s))
	}
	pkg := &engine.PackageInfo{Name: "t", Inputs: map[string]engine.Input{"baseUrl": {}, "token": {}}, Modules: map[string]string{"api": "api.query.yaml"}}
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := query.NewKind().Compile(engine.Source{Name: "api", Path: "api.query.yaml", Data: src, Pkg: pkg})
		if err != nil {
			if !strings.Contains(err.Error(), "api.query.yaml") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		if m.Name() != "api" {
			t.Fatalf("name %q", m.Name())
		}
	})
}
