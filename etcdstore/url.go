package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/modrun/modrun/engine"
)

// Config is what Open connects with, parsed from a store URL.
type Config struct {
	Endpoints []string // host:port, at least one
	Prefix    string   // every key of the store is under it; "/" when the URL has none
	TLS       bool     // etcds://
	Username  string
	Password  string // from the URL or $MODRUN_ETCD_PASSWORD; never printed

	// TLS files, from $MODRUN_ETCD_CA, $MODRUN_ETCD_CERT and $MODRUN_ETCD_KEY.
	CAFile, CertFile, KeyFile string

	// LockTTL is the lease of the store's locks (?lock-ttl=5s): how long a
	// holder that stopped (killed, paused, cut off) keeps a lock from its
	// peers. Zero means the package's LockTTL.
	LockTTL time.Duration
}

// IsURL reports whether s names an etcd store rather than a bbolt file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "etcd://") || strings.HasPrefix(s, "etcds://")
}

// ParseURL parses etcd://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]/PREFIX
// [?lock-ttl=DURATION] (etcds:// for TLS). Errors never quote the
// password.
func ParseURL(s string) (Config, error) {
	var c Config
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "etcds://"); !ok {
			return c, errors.New("etcd store: the URL must start with etcd:// or etcds://")
		}
		c.TLS = true
	}
	// The user information ends at the last "@": a password may hold "/",
	// "@" or ":" (percent-encoded or not), and no part of it is ever taken
	// for an endpoint or the prefix. (A prefix cannot hold "@".)
	userinfo := ""
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo, rest = rest[:at], rest[at+1:]
	}
	rest, query, _ := strings.Cut(rest, "?")
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return c, fmt.Errorf("etcd store: the URL's query %q: %v", query, err)
		}
		for k, v := range q {
			if k != "lock-ttl" {
				return c, fmt.Errorf("etcd store: unknown URL parameter %q (known: lock-ttl)", k)
			}
			d, err := time.ParseDuration(v[0])
			if err != nil || d < MinLockTTL || d%time.Second != 0 {
				return c, fmt.Errorf("etcd store: lock-ttl %q: want whole seconds, at least %v", v[0], MinLockTTL)
			}
			c.LockTTL = d
		}
	}
	authority, prefix, _ := strings.Cut(rest, "/")
	if userinfo != "" {
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if c.Username, err = url.PathUnescape(user); err != nil {
			return c, errors.New("etcd store: the user name in the URL is badly escaped")
		}
		if hasPass {
			if c.Password, err = url.PathUnescape(pass); err != nil {
				return c, errors.New("etcd store: the password in the URL is badly escaped")
			}
		}
	}
	if c.Password == "" {
		c.Password = os.Getenv("MODRUN_ETCD_PASSWORD")
	}
	if c.Username == "" && c.Password != "" {
		return c, errors.New("etcd store: a password needs a user name (USER@ in the URL)")
	}
	for ep := range strings.SplitSeq(authority, ",") {
		host, port, err := net.SplitHostPort(ep)
		if err != nil || host == "" || port == "" {
			return c, fmt.Errorf("etcd store: endpoint %q: want HOST:PORT", ep)
		}
		c.Endpoints = append(c.Endpoints, ep)
	}
	c.Prefix = "/" + strings.Trim(prefix, "/")
	// Stores nest only through the segments a store's own keys use: the
	// keys of prefix a/kv/x would lie inside the ranges of prefix a (its
	// app x). A prefix may hold any other segment (a/b never meets a).
	for seg := range strings.SplitSeq(strings.Trim(prefix, "/"), "/") {
		if seg == "kv" || seg == "locks" {
			return c, fmt.Errorf("etcd store: prefix %q: a segment named %s would reach into the store of a shorter prefix; choose another name", c.Prefix, seg)
		}
	}
	c.CAFile = os.Getenv("MODRUN_ETCD_CA")
	c.CertFile = os.Getenv("MODRUN_ETCD_CERT")
	c.KeyFile = os.Getenv("MODRUN_ETCD_KEY")
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, errors.New("etcd store: $MODRUN_ETCD_CERT and $MODRUN_ETCD_KEY go together")
	}
	if !c.TLS && (c.CAFile != "" || c.CertFile != "") {
		return c, errors.New("etcd store: TLS files are set but the URL is etcd://; use etcds://")
	}
	return c, nil
}

// String is the URL without its password, for logs and errors.
func (c Config) String() string {
	scheme := "etcd"
	if c.TLS {
		scheme = "etcds"
	}
	user := ""
	if c.Username != "" {
		user = url.PathEscape(c.Username) + "@"
	}
	q := ""
	if c.LockTTL != 0 {
		q = "?lock-ttl=" + c.LockTTL.String()
	}
	return scheme + "://" + user + strings.Join(c.Endpoints, ",") + c.Prefix + q
}

func init() {
	open := func(_ context.Context, url string) (engine.Store, error) { return Open(url) }
	engine.RegisterStore("etcd", open)
	engine.RegisterStore("etcds", open)
}
