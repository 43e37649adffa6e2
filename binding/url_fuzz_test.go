package binding_test

import (
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine/enginetest"
)

// FuzzURLKeepsOrigin holds URL templates to DESIGN §17: whatever a value
// bound after the origin holds, the bound URL goes to the origin the
// template's text (or its base URL input) names — the same scheme, host
// and port, and no user info — or binding fails.
func FuzzURLKeepsOrigin(f *testing.F) {
	for _, s := range []string{"", "x", "@evil.example", ":1", ".evil.example", "\\evil.example", "%40evil.example",
		"/", "//evil.example", "..", "a/../../b", "?q=1", "#f", "a b", "😀", "\x00", "http://evil.example/"} {
		f.Add(s, s)
	}
	templates := []struct{ src, origin string }{
		{"<<inputs.baseUrl>><<this.params.a>>", "https://api.example.com:8443"},
		{"<<inputs.baseUrl>>/<<this.params.a>>?q=<<this.params.b>>", "https://api.example.com:8443"},
		{"<<inputs.baseUrl>><<this.params.a>>/x/<<this.params.b>>", "https://api.example.com:8443"},
		{"https://api.example.com/<<this.params.a>>#<<this.params.b>>", "https://api.example.com"},
		{"http://127.0.0.1:9/v1<<this.params.a>><<this.params.b>>", "http://127.0.0.1:9"},
	}
	var compiled []*binding.Template
	for _, tc := range templates {
		tmpl, err := binding.Parse(tc.src, binding.Pos{File: "q.query.yaml", Line: 1}, binding.Names{})
		if err != nil {
			f.Fatal(err)
		}
		compiled = append(compiled, tmpl)
	}
	sc := &scope{MapScope: enginetest.MapScope{Inputs: map[string]any{"baseUrl": "https://api.example.com:8443"}}}
	for i, tmpl := range compiled { // plain values bind: the property is not held by refusing all
		if _, err := tmpl.URL(sc, map[string]any{"a": "/users/42", "b": "x y"}); err != nil {
			f.Fatalf("%s: %v", templates[i].src, err)
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return // JavaScript strings reach Go as valid UTF-8
		}
		params := map[string]any{"a": a, "b": b}
		for i, tmpl := range compiled {
			u, err := tmpl.URL(sc, params)
			if err != nil {
				continue
			}
			want, _ := url.Parse(templates[i].origin)
			if u.Scheme != want.Scheme || u.Host != want.Host || u.User != nil {
				t.Fatalf("%s with a=%q b=%q goes to %s://%s (user %v), want %s", templates[i].src, a, b, u.Scheme, u.Host, u.User, templates[i].origin)
			}
			// What is sent is u printed; read again it names the same
			// origin.
			again, err := url.Parse(u.String())
			if err != nil || again.Host != u.Host || again.Scheme != u.Scheme || again.User != nil {
				t.Fatalf("%s with a=%q b=%q prints as %q, which reads as another origin (%v)", templates[i].src, a, b, u.String(), err)
			}
		}
	})
}
