package redact

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// Mask replaces every secret.
const Mask = "[REDACTED]"

// minLen is the shortest value hidden: shorter ones would mask ordinary
// words and digits everywhere.
const minLen = 6

// MaxLearned bounds the secrets a Redactor learns at run time (Learn):
// past it, the oldest learned are forgotten. Tokens rotate; without a
// bound an instance refreshing for months would hide an ever longer list
// from every log line, and rebuild it on every new token.
const MaxLearned = 1024

// Redactor holds the secrets to hide: the ones it was given (Add), kept
// for good, and the last MaxLearned ones it learned (Learn). It is safe
// for concurrent use; the zero value hides nothing.
type Redactor struct {
	mu      sync.RWMutex
	pinned  map[string]bool
	learned map[string]bool
	order   []string // learned, oldest first
	r       *strings.Replacer
}

// New returns an empty Redactor.
func New() *Redactor { return &Redactor{} }

// Add registers secrets for good (a package's secret inputs). Values
// shorter than six bytes are ignored.
func (r *Redactor) Add(secrets ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, s := range secrets {
		if len(s) < minLen || r.pinned[s] {
			continue
		}
		if r.pinned == nil {
			r.pinned = map[string]bool{}
		}
		r.pinned[s] = true
		changed = true
	}
	if changed {
		r.rebuild()
	}
}

// Learn registers a secret seen at run time (a token in a response or the
// store). It is cheap for a secret already known, which is the common
// case: the same token passes many times.
func (r *Redactor) Learn(s string) {
	if r == nil || len(s) < minLen {
		return
	}
	r.mu.RLock()
	known := r.pinned[s] || r.learned[s]
	r.mu.RUnlock()
	if known {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pinned[s] || r.learned[s] {
		return
	}
	if r.learned == nil {
		r.learned = map[string]bool{}
	}
	if len(r.order) >= MaxLearned {
		delete(r.learned, r.order[0])
		r.order = append(r.order[:0], r.order[1:]...)
	}
	r.learned[s] = true
	r.order = append(r.order, s)
	r.rebuild()
}

// rebuild makes the replacer of every secret, longest first, so that a
// secret containing another is hidden whole. r.mu is held.
func (r *Redactor) rebuild() {
	all := make([]string, 0, len(r.pinned)+len(r.learned))
	for s := range r.pinned {
		all = append(all, s)
	}
	for s := range r.learned {
		if !r.pinned[s] {
			all = append(all, s)
		}
	}
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, Mask)
	}
	r.r = strings.NewReplacer(pairs...)
}

// String returns s with every secret replaced by Mask.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	rep := r.r
	r.mu.RUnlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

// Handler wraps h so that the message and every string attribute of each
// record pass through r.
func Handler(h slog.Handler, r *Redactor) slog.Handler {
	if rh, ok := h.(*handler); ok && rh.r == r {
		return h
	}
	return &handler{h: h, r: r}
}

type handler struct {
	h slog.Handler
	r *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.String(err.Error()))
		}
		return slog.String(a.Key, h.r.String(v.String()))
	}
	return a
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{h: h.h.WithAttrs(red), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h: h.h.WithGroup(name), r: h.r}
}

// secretSuffixes end the names of fields and store keys whose values are
// secrets, compared case-insensitively.
var secretSuffixes = []string{"token", "secret", "password", "passwd", "credential", "credentials",
	"apikey", "api_key", "api-key", "sessionid", "session_id", "cookie", "authorization"}

// SecretKey reports whether a field or store key named k holds a secret:
// its name ends in token, secret, password and the like.
func SecretKey(k string) bool {
	for _, s := range secretSuffixes {
		if len(k) >= len(s) && strings.EqualFold(k[len(k)-len(s):], s) {
			return true
		}
	}
	return false
}
