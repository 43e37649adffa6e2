package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// StoreOpener opens the store a URL names (its scheme's backend).
type StoreOpener func(ctx context.Context, url string) (Store, error)

// The store backends, by URL scheme: a backend registers itself in its
// init, as database/sql drivers do; a program imports the ones it wants.
var (
	backendsMu sync.RWMutex
	backends   = map[string]StoreOpener{}
)

// RegisterStore makes a backend open the URLs of scheme (etcd, etcds; file
// for paths). It panics if scheme is registered twice, like sql.Register.
func RegisterStore(scheme string, open StoreOpener) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if _, dup := backends[scheme]; dup {
		panic("engine: store scheme " + scheme + " registered twice")
	}
	backends[scheme] = open
}

// OpenStore opens the store url names, by its scheme: etcd://…, or a
// file path (a URL without a scheme, or file://) for the embedded store.
// The backend must be registered: import its package (for etcd://,
// github.com/modrun/modrun/etcdstore; for files, .../store).
func OpenStore(ctx context.Context, url string) (Store, error) {
	scheme := "file"
	if i := strings.Index(url, "://"); i > 0 && !strings.ContainsAny(url[:i], `/\.`) {
		scheme = url[:i]
	}
	backendsMu.RLock()
	open, ok := backends[scheme]
	backendsMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("store %s: no backend for %s:// (registered: %s; import its package)", redactURL(url), scheme, strings.Join(StoreSchemes(), ", "))
	}
	return open(ctx, url)
}

// StoreSchemes lists the registered schemes.
func StoreSchemes() []string {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	out := make([]string, 0, len(backends))
	for s := range backends {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// redactURL hides a URL's userinfo (a password) for an error message.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		rest = "…@" + rest[at+1:]
	}
	return scheme + "://" + rest
}
