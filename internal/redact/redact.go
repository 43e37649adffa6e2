package redact

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
)

// Mask replaces every secret.
const Mask = "[REDACTED]"

// MinLearned is the shortest value Learn takes: a token shorter than this
// is no real token, and hiding it would mask ordinary words and digits.
// Secrets given to Add are hidden at any length.
const MinLearned = 6

// MaxLearned bounds the secrets a Redactor learns at run time (Learn):
// past it, the oldest learned are forgotten. Tokens rotate; without a
// bound an instance refreshing for months would hide an ever longer list
// from every log line, and rebuild it on every new token.
const MaxLearned = 1024

// Redactor holds the secrets to hide: the ones it was given (Add), kept
// for good, and the last MaxLearned ones it learned (Learn). Each is
// hidden in every form it takes in text (see Forms). It is safe for
// concurrent use; the zero value hides nothing.
type Redactor struct {
	mu      sync.RWMutex
	pinned  map[string][]string // secret → its forms
	learned map[string][]string
	order   []string // learned, oldest first
	r       *strings.Replacer
}

// New returns an empty Redactor.
func New() *Redactor { return &Redactor{} }

// Add registers secrets for good (a package's secret inputs), at any
// length but the empty string.
func (r *Redactor) Add(secrets ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, s := range secrets {
		if _, ok := r.pinned[s]; s == "" || ok {
			continue
		}
		if r.pinned == nil {
			r.pinned = map[string][]string{}
		}
		r.pinned[s] = Forms(s, true)
		changed = true
	}
	if changed {
		r.rebuild()
	}
}

// Learn registers a secret seen at run time (a token in a response, the
// store or a request). It is cheap for a secret already known, which is
// the common case: the same token passes many times. Values shorter than
// MinLearned are ignored.
func (r *Redactor) Learn(s string) {
	if r == nil || len(s) < MinLearned {
		return
	}
	r.mu.RLock()
	known := r.known(s)
	r.mu.RUnlock()
	if known {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known(s) {
		return
	}
	if r.learned == nil {
		r.learned = map[string][]string{}
	}
	if len(r.order) >= MaxLearned {
		delete(r.learned, r.order[0])
		r.order = append(r.order[:0], r.order[1:]...)
	}
	r.learned[s] = Forms(s, false)
	r.order = append(r.order, s)
	r.rebuild()
}

// known reports whether s is held already. r.mu is held.
func (r *Redactor) known(s string) bool {
	if _, ok := r.pinned[s]; ok {
		return true
	}
	_, ok := r.learned[s]
	return ok
}

// LearnJSON learns the string values of secret-named fields (SecretKey)
// anywhere in the JSON value raw: {"session": {"access_token": "…"}}.
func (r *Redactor) LearnJSON(raw []byte) {
	if r == nil || len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
		return
	}
	learnJSON(r, gjson.ParseBytes(raw), 0)
}

func learnJSON(r *Redactor, v gjson.Result, depth int) {
	if depth > 64 { // values deeper than this are not searched (see doc.go)
		return
	}
	v.ForEach(func(k, el gjson.Result) bool {
		switch {
		case el.Type == gjson.String && k.Type == gjson.String && SecretKey(k.Str):
			r.Learn(el.Str)
		case el.IsObject() || el.IsArray():
			learnJSON(r, el, depth+1)
		}
		return true
	})
}

// Forms returns the ways secret s appears in text: as it is; escaped
// inside a JSON string (as JSON.stringify and encoding/json write it);
// escaped in a URL's query or path (as Go and encodeURIComponent escape
// it); and, with b64, in base64 (standard and
// URL alphabets, as in a Basic credential or a JWT part). Forms equal to
// an earlier one are left out: for a token of URL-safe characters, the
// escaped forms are the token itself.
func Forms(s string, b64 bool) []string {
	forms := []string{s}
	add := func(f string) {
		for _, g := range forms {
			if g == f {
				return
			}
		}
		forms = append(forms, f)
	}
	js, _ := json.Marshal(s) // escapes <, > and & as \u003c…: encoding/json's form
	add(string(js[1 : len(js)-1]))
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // JSON.stringify's form
	enc.Encode(s)
	js = []byte(strings.TrimSuffix(b.String(), "\n"))
	add(string(js[1 : len(js)-1]))
	add(url.QueryEscape(s))
	add(url.PathEscape(s))
	add(uriComponent(s))
	if b64 {
		add(base64.StdEncoding.EncodeToString([]byte(s)))
		add(base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	return forms
}

// uriComponent escapes s as JavaScript's encodeURIComponent does, the way
// module code escapes a value it puts in a URL itself: unlike
// url.QueryEscape, a space is %20 and !'()* stay as they are.
func uriComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// rebuild makes the replacer of every form of every secret, longest
// first, so that a secret containing another is hidden whole. r.mu is
// held.
func (r *Redactor) rebuild() {
	var all []string
	// Learned tokens are not base64'd: that would triple the patterns
	// and the cost of each rebuild, and a token travels as it is (a
	// Basic credential is learned whole, as sent).
	for _, forms := range r.pinned {
		all = append(all, forms...)
	}
	for _, forms := range r.learned {
		all = append(all, forms...)
	}
	// By length only: comparing the text of equal-length tokens made a
	// rebuild four times slower. Two secrets may share a form: NewReplacer
	// keeps the first of equal patterns, and every one maps to Mask.
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

// JSON returns raw with the value of every secret-named field (SecretKey),
// at any depth, replaced by "[REDACTED]"; a top-level value under a
// secret-named key is the caller's to hide. raw that is not JSON comes
// back as it is.
func JSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') || !gjson.ValidBytes(raw) {
		return raw
	}
	out, changed := maskJSON(nil, gjson.ParseBytes(raw))
	if !changed {
		return raw
	}
	return out
}

func maskJSON(dst []byte, v gjson.Result) ([]byte, bool) {
	if !v.IsObject() && !v.IsArray() {
		return append(dst, v.Raw...), false
	}
	open, close := byte('['), byte(']')
	if v.IsObject() {
		open, close = '{', '}'
	}
	dst = append(dst, open)
	changed, first := false, true
	v.ForEach(func(k, el gjson.Result) bool {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		if v.IsObject() {
			dst = append(append(dst, k.Raw...), ':')
			if k.Type == gjson.String && SecretKey(k.Str) && el.Type != gjson.Null {
				dst = append(dst, `"`+Mask+`"`...)
				changed = true
				return true
			}
		}
		var c bool
		dst, c = maskJSON(dst, el)
		changed = changed || c
		return true
	})
	return append(dst, close), changed
}
