package engine

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Origin is a URL's origin as a string: scheme://host[:port], with the
// port only when it is not the scheme's default.
func Origin(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return strings.ToLower(u.Scheme) + "://" + host
}

// CheckHostPattern checks one entry of a credential's hosts: an origin
// https://host[:port] or https://*.example.com (any subdomain); http://
// only for a loopback host.
func CheckHostPattern(p string) error {
	u, err := url.Parse(p)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("host %q: want an origin such as https://api.example.com or https://*.example.com", p)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return fmt.Errorf("host %q: http:// only for a loopback host (tokens would cross the network in clear)", p)
		}
	default:
		return fmt.Errorf("host %q: want https:// (or http:// for a loopback host)", p)
	}
	if h := u.Hostname(); strings.Contains(h, "*") && (!strings.HasPrefix(h, "*.") || strings.Count(h, "*") != 1 || strings.Count(h, ".") < 2) {
		return fmt.Errorf("host %q: a wildcard stands only as the first label of a domain with two more (https://*.example.com)", p)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AllowedOrigins is where spec's tokens may be sent: the origin of its
// token URL and its Hosts.
func (spec TokenSpec) AllowedOrigins() []string {
	out := make([]string, 0, 1+len(spec.Hosts))
	if u, err := url.Parse(spec.TokenURL); err == nil && u.Host != "" {
		out = append(out, Origin(u))
	}
	for _, h := range spec.Hosts {
		if u, err := url.Parse(h); err == nil {
			out = append(out, Origin(u))
		}
	}
	return out
}

// CheckDestination returns an error, naming the credential and the
// origins it allows, unless u's origin is one where spec's token may go
// (DESIGN §17).
func (spec TokenSpec) CheckDestination(u *url.URL) error {
	allowed := spec.AllowedOrigins()
	got := Origin(u)
	for _, a := range allowed {
		if originMatches(a, got) {
			return nil
		}
	}
	return fmt.Errorf("%s: refusing to send the token to %s (allowed: %s; add it to the credential's hosts: if it is meant to get it)",
		spec.Name, got, strings.Join(allowed, ", "))
}

// originMatches reports whether origin got matches pattern: equal, or
// pattern's host is *.DOMAIN and got's a subdomain of DOMAIN, same scheme
// and port.
func originMatches(pattern, got string) bool {
	if pattern == got {
		return true
	}
	ps, phost, ok1 := strings.Cut(pattern, "://")
	gs, ghost, ok2 := strings.Cut(got, "://")
	if !ok1 || !ok2 || ps != gs || !strings.HasPrefix(phost, "*.") {
		return false
	}
	suffix := phost[1:] // .example.com[:port]
	pdomain, pport, _ := strings.Cut(suffix, ":")
	gname, gport := ghost, ""
	if i := strings.LastIndex(ghost, ":"); i >= 0 && !strings.HasSuffix(ghost, "]") {
		gname, gport = ghost[:i], ghost[i+1:]
	}
	return pport == gport && strings.HasSuffix(gname, pdomain) && len(gname) > len(pdomain)
}
