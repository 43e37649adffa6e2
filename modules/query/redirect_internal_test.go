package query

import "testing"

func TestSameOrSubdomain(t *testing.T) {
	for _, c := range []struct {
		host, origin string
		want         bool
	}{
		{"api.example.com", "api.example.com", true},
		{"API.Example.com", "api.example.com", true},
		{"auth.api.example.com", "api.example.com", true},
		{"example.com", "api.example.com", false},
		{"evilexample.com", "example.com", false},
		{"example.com.evil.net", "example.com", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"localhost", "127.0.0.1", false},
		{"::1%.example.com", "example.com", false},
		{"::1", "::1", true},
	} {
		if got := sameOrSubdomain(c.host, c.origin); got != c.want {
			t.Errorf("sameOrSubdomain(%q, %q) = %v, want %v", c.host, c.origin, got, c.want)
		}
	}
}
