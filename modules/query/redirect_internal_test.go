package query

import (
	"net/url"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"http://api.example.com/x", "http://api.example.com/y", true},
		{"http://API.Example.com/x", "http://api.example.com", true},
		{"http://api.example.com:80/x", "http://api.example.com/y", true},
		{"https://api.example.com:443/", "https://api.example.com", true},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/", false}, // another port
		{"https://api.example.com/", "http://api.example.com/", false},
		{"http://auth.api.example.com/", "http://api.example.com/", false}, // a subdomain is another origin
		{"http://evilexample.com/", "http://example.com/", false},
		{"http://[::1]:8080/", "http://[::1]:8080/", true},
	} {
		a, _ := url.Parse(c.a)
		b, _ := url.Parse(c.b)
		if got := sameOrigin(a, b); got != c.want {
			t.Errorf("sameOrigin(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
