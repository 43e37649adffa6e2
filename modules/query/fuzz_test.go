package query_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
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
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"url: <<inputs.baseUrl>>/x\n",
		"method: POST\nurl: <<inputs.baseUrl>>/t\nheaders: {Accept: application/json}\nbody:\n  json: {refresh_token: <<this.params.refreshtoken>>}\n",
		"url: http://h/x\nbody:\n  form: {a: <<this.params.a>>}\nauth: {bearer: <<inputs.token>>}\n",
		"url: <<\n", "url: <<a.b>>\nmethod: [1\n", "body: {json: <<x>>, text: y}\n", "timeout: -1s\n", "\t- \x00", "url: {{inputs.baseUrl}}\nquery: {q: '<<1+>>'}\n",
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
