package modtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/modrun/modrun/internal/redact"
)

// Cassette is a case's recorded HTTP: each request the case made and the
// answer it got, with secrets and tokens replaced by placeholders.
type Cassette struct {
	Interactions []Interaction `yaml:"interactions"`
}

// Interaction is one request and its response.
type Interaction struct {
	Request struct {
		Method string `yaml:"method"`
		URL    string `yaml:"url"`
		Body   string `yaml:"body,omitempty"`
	} `yaml:"request"`
	Response struct {
		Status      int    `yaml:"status"`
		ContentType string `yaml:"contentType,omitempty"`
		Body        string `yaml:"body,omitempty"`
	} `yaml:"response"`
}

// maxBody bounds a recorded body.
const maxBody = 4 << 20

// ReadCassette reads a cassette file.
func ReadCassette(path string) (*Cassette, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Cassette
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &c, nil
}

// Write writes the cassette to path, making its directory.
func (c *Cassette) Write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("# Recorded by runner test --record; secrets and tokens are placeholders.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// placeholders replaces values with stable names: the case's secret and
// URL inputs by input name, tokens seen in responses by order.
type placeholders struct {
	mu     sync.Mutex
	from   []string // longest first
	to     map[string]string
	tokens int
}

func newPlaceholders(inputs map[string]string) *placeholders {
	p := &placeholders{to: map[string]string{}}
	for name, v := range inputs {
		p.add(v, "__input_"+name+"__", true)
	}
	return p
}

// add names value, in each form it travels in (redact.Forms: as it is,
// JSON-escaped, URL-escaped, and with b64 in base64): a refresh token of
// base64 goes out in a form body as rt%2B…, a secret with a quote in JSON
// as s\"…. A placeholder reads the same in every form.
func (p *placeholders) add(value, name string, b64 bool) {
	if len(value) < 4 {
		return // too short to replace safely
	}
	if _, ok := p.to[value]; ok {
		return
	}
	for _, form := range redact.Forms(value, b64) {
		if _, ok := p.to[form]; !ok {
			p.to[form] = name
			p.from = append(p.from, form)
		}
	}
	sort.Slice(p.from, func(i, j int) bool { return len(p.from[i]) > len(p.from[j]) })
}

// learn names the tokens in a JSON body: string fields whose names mark
// them secret (access_token, refresh_token, id_token, …).
func (p *placeholders) learn(body []byte) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys) // a stable numbering
			for _, k := range keys {
				if s, ok := t[k].(string); ok && redact.SecretKey(k) {
					if _, known := p.to[s]; !known && len(s) >= 4 {
						p.tokens++
						p.add(s, "__token_"+strconv.Itoa(p.tokens)+"__", false)
					}
					continue
				}
				walk(t[k])
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(v)
}

func (p *placeholders) apply(s string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.from {
		s = strings.ReplaceAll(s, v, p.to[v])
	}
	return s
}

// transport records or replays a case's HTTP.
type transport struct {
	real     http.RoundTripper // nil: replay
	ph       *placeholders
	mu       sync.Mutex
	cassette *Cassette
	used     []bool
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	if t.real == nil {
		return t.replay(req, body)
	}
	resp, err := t.real.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	t.ph.learn(data)
	var in Interaction
	in.Request.Method, in.Request.URL, in.Request.Body = req.Method, req.URL.String(), string(body)
	in.Response.Status, in.Response.ContentType, in.Response.Body = resp.StatusCode, resp.Header.Get("Content-Type"), string(data)
	t.mu.Lock()
	t.cassette.Interactions = append(t.cassette.Interactions, in)
	t.mu.Unlock()
	return resp, nil
}

// sealed is the cassette as written: every text with its placeholders.
func (t *transport) sealed() *Cassette {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := &Cassette{}
	for _, in := range t.cassette.Interactions {
		in.Request.URL = t.ph.apply(in.Request.URL)
		in.Request.Body = t.ph.apply(in.Request.Body)
		in.Response.Body = t.ph.apply(in.Response.Body)
		out.Interactions = append(out.Interactions, in)
	}
	return out
}

// replay answers req with the first unused recorded interaction that
// matches its method, URL (query in any order) and body (JSON and forms
// compared by value), after the case's inputs are replaced by their
// placeholders as when it was recorded.
func (t *transport) replay(req *http.Request, body []byte) (*http.Response, error) {
	u, b := t.ph.apply(req.URL.String()), t.ph.apply(string(body))
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, in := range t.cassette.Interactions {
		if t.used[i] || in.Request.Method != req.Method || !sameURL(in.Request.URL, u) || !sameBody(in.Request.Body, b) {
			continue
		}
		t.used[i] = true
		h := http.Header{}
		if in.Response.ContentType != "" {
			h.Set("Content-Type", in.Response.ContentType)
		}
		return &http.Response{StatusCode: in.Response.Status, Status: strconv.Itoa(in.Response.Status) + " " + http.StatusText(in.Response.Status),
			Header: h, Body: io.NopCloser(strings.NewReader(in.Response.Body)), ContentLength: int64(len(in.Response.Body)),
			Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	return nil, fmt.Errorf("%w: %s %s (record it with runner test --record)", ErrUnrecorded, req.Method, u)
}

// ErrUnrecorded is a replayed case's request that its cassette lacks.
var ErrUnrecorded = errors.New("no recorded response")

func (t *transport) unused() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, u := range t.used {
		if !u {
			n++
		}
	}
	return n
}

func sameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return ua.Scheme == ub.Scheme && ua.Host == ub.Host && ua.Path == ub.Path && sameValues(ua.Query(), ub.Query())
}

func sameValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		if len(va) != len(vb) {
			return false
		}
		sa, sb := append([]string(nil), va...), append([]string(nil), vb...)
		sort.Strings(sa)
		sort.Strings(sb)
		for i := range sa {
			if sa[i] != sb[i] {
				return false
			}
		}
	}
	return true
}

func sameBody(a, b string) bool {
	if a == b {
		return true
	}
	var ja, jb any
	if json.Unmarshal([]byte(a), &ja) == nil && json.Unmarshal([]byte(b), &jb) == nil {
		ca, _ := json.Marshal(ja)
		cb, _ := json.Marshal(jb)
		return bytes.Equal(ca, cb)
	}
	fa, err1 := url.ParseQuery(a)
	fb, err2 := url.ParseQuery(b)
	return err1 == nil && err2 == nil && strings.Contains(a, "=") && sameValues(fa, fb)
}
