package query_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/engine/enginetest"
	"github.com/modrun/modrun/modules/query"
)

// scope resolves params, inputs and appsmith.store natively; the golden
// and failure tests need no JavaScript.
type scope = enginetest.MapScope

func compile(t testing.TB, name, src string) *query.Module {
	t.Helper()
	m, err := query.NewKind().Compile(engine.Source{
		Name: name, Path: name + ".query.yaml", Data: []byte(src),
		Pkg: &engine.PackageInfo{Name: "t", Inputs: map[string]engine.Input{"baseUrl": {}, "token": {}}, Modules: map[string]string{name: name + ".query.yaml"}},
	})
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return m.(*query.Module)
}

// recorder is a server that records every request it gets, byte for byte.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []string
}

func newRecorder(t testing.TB, h http.HandlerFunc) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, dump(req, body))
		r.mu.Unlock()
		if h != nil {
			h(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

// dump renders the parts of a request a template controls: method, URI,
// the headers that are not Go's own, and the body. A multipart boundary,
// random by design, is replaced by BOUNDARY.
func dump(req *http.Request, body []byte) string {
	var b bytes.Buffer
	b.WriteString(req.Method + " " + req.RequestURI + "\n")
	var names []string
	for k := range req.Header {
		switch k {
		case "Accept-Encoding", "User-Agent", "Content-Length":
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	boundary := ""
	if ct := req.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/") {
		_, boundary, _ = strings.Cut(ct, "boundary=")
	}
	for _, k := range names {
		for _, v := range req.Header[k] {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	b.WriteString("\n")
	b.Write(body)
	out := b.String()
	if boundary != "" {
		out = strings.ReplaceAll(out, boundary, "BOUNDARY")
	}
	return out
}
