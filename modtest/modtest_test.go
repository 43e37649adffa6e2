package modtest

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"", "t.test.yaml: file is empty"},
		{"cases: []\n", "no cases"},
		{"cases:\n  - {name: a, run: m.f, bogus: 1}\n", "bogus"},
		{"cases:\n  - {name: '', run: m.f}\n", `t.test.yaml:2: case name ""`},
		{"cases:\n  - {name: a, run: 'm.f.g'}\n", `run "m.f.g"`},
		{"cases:\n  - {name: a, run: m.f, args: [], params: {}}\n", "not both"},
		{"cases:\n  - {name: a, run: m.f, expect: {result: 1, error: x}}\n", "a result or an error, not both"},
		{"cases:\n  - {name: a, run: m.f, before: ['x y']}\n", `before "x y"`},
		{"cases:\n  - {name: a, run: m.f}\n  - {name: b, run: 'no good'}\n", "t.test.yaml:3:"},
		{"cases:\n  - {name: '" + strings.Repeat("x", 101) + "', run: m.f}\n", "want 1 to 100"},
		{"cases:\n  - {name: ' a', run: m.f}\n", "want 1 to 100"},
		{"cases:\n  - {name: 'a\u00e9', run: m.f}\n", "want 1 to 100"},
	} {
		_, err := Parse("t.test.yaml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v; want %q", c.src, err, c.want)
		}
	}
	if _, err := Parse("t.test.yaml", []byte("cases:\n  - {name: '"+strings.Repeat("x", 100)+"', run: m.f}\n")); err != nil {
		t.Errorf("a name of 100 characters: %v", err)
	}
	cases, err := Parse("t.test.yaml", []byte("cases:\n  - name: ok\n    run: q\n    params: {a: 1}\n    store: {k: [1, 2]}\n    expect: {result: {x: 1}, store: {k: null}}\n"))
	if err != nil || len(cases) != 1 || string(cases[0].Params) != `{"a":1}` || string(cases[0].Store["k"]) != "[1,2]" || string(cases[0].Expect.Store["k"]) != "null" {
		t.Fatalf("%+v %v", cases, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("cases:\n  - {name: a, run: m.f, args: [1, {b: 2}], expect: {result: {x: 1}}}\n"))
	f.Add([]byte("cases: [{name: b, run: q, params: {}, store: {k: v}}]"))
	f.Add([]byte("cases:\n  - &a {name: x, run: m.f}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cases, err := Parse("f.test.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.test.yaml") {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		for _, c := range cases {
			if !validName(c.Name) || !isTarget(c.Run) {
				t.Fatalf("accepted %+v", c)
			}
		}
	})
}

func TestSubset(t *testing.T) {
	for _, c := range []struct {
		want, got string
		ok        bool
	}{
		{`{"a":1}`, `{"a":1,"b":2}`, true},
		{`{"a":{"b":1}}`, `{"a":{"b":1,"c":3}}`, true},
		{`{"a":1}`, `{"b":1}`, false},
		{`[1,2]`, `[1,2,3]`, false},
		{`"x"`, `"x"`, true},
		{`{"a":null}`, `{"a":null}`, true},
		{`1`, `1.0`, true},
	} {
		if ok, why := subset([]byte(c.want), []byte(c.got)); ok != c.ok {
			t.Errorf("subset(%s, %s) = %v (%s)", c.want, c.got, ok, why)
		}
	}
}

// TestReplayMatching: a replayed request matches by method, URL with its
// query in any order and body by value; each recording answers once; a
// request without one fails naming it.
func TestReplayMatching(t *testing.T) {
	c := &Cassette{}
	add := func(method, url, body string, status int, resp string) {
		var in Interaction
		in.Request.Method, in.Request.URL, in.Request.Body = method, url, body
		in.Response.Status, in.Response.ContentType, in.Response.Body = status, "application/json", resp
		c.Interactions = append(c.Interactions, in)
	}
	add("GET", "__input_base__/items?a=1&b=2", "", 200, `[1]`)
	add("POST", "__input_base__/token", `{"x":1,"y":"__input_secret__"}`, 200, `{"access_token":"__token_1__"}`)
	add("POST", "__input_base__/form", "b=2&a=1", 201, `{}`)
	tr := &transport{ph: newPlaceholders(map[string]string{"base": "http://api.test:9", "secret": "s3cr3t-value"}), cassette: c, used: make([]bool, 3)}
	do := func(method, url, body string) (*http.Response, error) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		return tr.RoundTrip(req)
	}
	if r, err := do("GET", "http://api.test:9/items?b=2&a=1", ""); err != nil || r.StatusCode != 200 {
		t.Fatalf("query in another order: %v %v", r, err)
	}
	r, err := do("POST", "http://api.test:9/token", `{"y":"s3cr3t-value", "x":1}`)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("JSON body in another order, secret replaced: %v %v", r, err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != `{"access_token":"__token_1__"}` {
		t.Fatalf("body %s", b)
	}
	if r, err := do("POST", "http://api.test:9/form", "a=1&b=2"); err != nil || r.StatusCode != 201 {
		t.Fatalf("form in another order: %v %v", r, err)
	}
	_, err = do("GET", "http://api.test:9/items?a=1&b=2", "")
	if !errors.Is(err, ErrUnrecorded) || !strings.Contains(err.Error(), "GET __input_base__/items?a=1&b=2") {
		t.Fatalf("a second identical request: %v", err)
	}
	if _, err := do("POST", "http://api.test:9/token", `{"x":2}`); !errors.Is(err, ErrUnrecorded) {
		t.Fatalf("another body: %v", err)
	}
}

// TestRecordPlaceholders: a recording names tokens found in responses
// and the inputs it was given, everywhere they appear.
func TestRecordPlaceholders(t *testing.T) {
	p := newPlaceholders(map[string]string{"password": "hunter2-pass", "baseUrl": "http://127.0.0.1:4242"})
	p.learn([]byte(`{"refresh_token":"rt-AAAA","access_token":"at-BBBB","expires_in":3,"nested":{"id_token":"id-CCCC"}}`))
	got := p.apply(`http://127.0.0.1:4242/x {"password":"hunter2-pass","rt":"rt-AAAA","at":"at-BBBB","id":"id-CCCC"}`)
	// Keys are walked in sorted order: access_token, nested.id_token, refresh_token.
	want := `__input_baseUrl__/x {"password":"__input_password__","rt":"__token_3__","at":"__token_1__","id":"__token_2__"}`
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}

// TestRecordPlaceholdersEscaped: a token or secret input travels escaped
// as often as not — a refresh token of base64 in a form body, a secret with
// a quote in JSON — and a recording names it in each of those forms, so
// that the real value never reaches the cassette.
func TestRecordPlaceholdersEscaped(t *testing.T) {
	p := newPlaceholders(map[string]string{"clientSecret": `s3cr"et+/=&x`})
	p.learn([]byte(`{"refresh_token":"rt+abc/def==","access_token":"at<&>1234"}`))
	for _, text := range []string{
		"grant_type=refresh_token&refresh_token=rt%2Babc%2Fdef%3D%3D&client_secret=s3cr%22et%2B%2F%3D%26x", // a form body
		`{"refresh_token":"rt+abc/def==","client_secret":"s3cr\"et+/=&x"}`,                                 // JSON.stringify
		`{"token":"at\u003c\u0026\u003e1234"}`,                                                             // encoding/json
		"/items/rt+abc%2Fdef==?t=at%3C%26%3E1234",                                                          // a path and a query
	} {
		got := p.apply(text)
		for _, leak := range []string{"rt+abc", "rt%2Babc", "s3cr", "at<", `at\u003c`, "at%3C"} {
			if strings.Contains(got, leak) {
				t.Errorf("%s\n  -> %s: %q is still there", text, got, leak)
			}
		}
	}
}
