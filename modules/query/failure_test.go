package query_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/query"
)

func send(t *testing.T, src string, sc scope, params map[string]any) (*engine.Response, error) {
	t.Helper()
	m := compile(t, "api", src)
	req, err := m.Bind(sc, params)
	if err != nil {
		return nil, err
	}
	return req.Send(context.Background())
}

func TestFailures(t *testing.T) {
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth-error":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant","error_description":"token rt-secret-123 was spent"}`))
		case "/500":
			w.WriteHeader(500)
			w.Write([]byte("boom"))
		case "/text":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("not json at all"))
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(strings.Repeat("x", 2048)))
		case "/big-chunked": // no Content-Length: the size is found by reading
			w.Header().Set("Content-Type", "text/plain")
			for range 4 {
				w.Write([]byte(strings.Repeat("x", 512)))
				w.(http.Flusher).Flush()
			}
		case "/short": // announces 100 bytes, sends 10, hangs up
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			w.Write([]byte("0123456789"))
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case "/slow":
			select {
			case <-slow:
			case <-r.Context().Done():
			}
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/binary":
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte{0x89, 'P', 'N', 'G', 0, 1, 2})
		}
	})
	sc := scope{Inputs: map[string]any{"baseUrl": rec.URL, "token": "secret-token-value"}}

	t.Run("4xx names the module and the OAuth error", func(t *testing.T) {
		_, err := send(t, "url: <<inputs.baseUrl>>/oauth-error\n", sc, nil)
		var re *engine.ResponseError
		if !errors.As(err, &re) || err.Error() != "api: HTTP 400: invalid_grant" || re.Response.StatusCode != 400 {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "rt-secret-123") {
			t.Fatal("the error echoes the server's description, which may hold a token")
		}
	})
	t.Run("5xx", func(t *testing.T) {
		_, err := send(t, "url: <<inputs.baseUrl>>/500\n", sc, nil)
		if err == nil || err.Error() != "api: HTTP 500: Internal Server Error" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a JSON content type with a text body is text", func(t *testing.T) {
		resp, err := send(t, "url: <<inputs.baseUrl>>/text\n", sc, nil)
		if err != nil || resp.Kind != engine.BodyText || string(resp.DataJSON()) != `"not json at all"` {
			t.Fatalf("resp = %+v, err = %v", resp, err)
		}
	})
	t.Run("binary is base64", func(t *testing.T) {
		resp, err := send(t, "url: <<inputs.baseUrl>>/binary\n", sc, nil)
		if err != nil || resp.Kind != engine.BodyBinary || string(resp.DataJSON()) != `"iVBORwABAg=="` {
			t.Fatalf("resp = %s, err = %v", resp.DataJSON(), err)
		}
	})
	t.Run("oversized body is an error, never truncated", func(t *testing.T) {
		for _, path := range []string{"/big", "/big-chunked"} {
			_, err := send(t, "url: <<inputs.baseUrl>>"+path+"\nmaxResponseBytes: 1024\n", sc, nil)
			if err == nil || !strings.Contains(err.Error(), "larger than 1024 bytes") {
				t.Fatalf("%s: err = %v", path, err)
			}
		}
		resp, err := send(t, "url: <<inputs.baseUrl>>/big-chunked\nmaxResponseBytes: 2048\n", sc, nil)
		if err != nil || len(resp.Body) != 2048 {
			t.Fatalf("2048 bytes within the limit: %d bytes, err = %v", len(resp.Body), err)
		}
	})
	t.Run("a body shorter than its Content-Length is an error", func(t *testing.T) {
		_, err := send(t, "url: <<inputs.baseUrl>>/short\n", sc, nil)
		if err == nil || !strings.Contains(err.Error(), "api: GET 127.0.0.1:") || !strings.Contains(err.Error(), "unexpected EOF") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("slow server vs timeout", func(t *testing.T) {
		start := time.Now()
		_, err := send(t, "url: <<inputs.baseUrl>>/slow\ntimeout: 100ms\n", sc, nil)
		if err == nil || !strings.Contains(err.Error(), "timeout after 100ms") || !strings.Contains(err.Error(), "api: GET 127.0.0.1:") {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the timeout took %s", d)
		}
	})
	t.Run("the caller's deadline cancels the request", func(t *testing.T) {
		m := compile(t, "api", "url: <<inputs.baseUrl>>/slow\n")
		req, _ := m.Bind(sc, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := req.Send(ctx)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("connection refused names the host", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		_, err := send(t, "url: http://"+addr+"/x?token=<<inputs.token>>\n", sc, nil)
		if err == nil || !strings.Contains(err.Error(), "api: GET "+addr+":") || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "secret-token-value") {
			t.Fatalf("the error leaks the URL's query: %v", err)
		}
	})
	t.Run("redirect loop", func(t *testing.T) {
		_, err := send(t, "url: <<inputs.baseUrl>>/loop\nmaxRedirects: 3\n", sc, nil)
		if err == nil || !strings.Contains(err.Error(), "stopped after 3 redirects") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestHeaderInjection(t *testing.T) {
	rec := newRecorder(t, nil)
	sc := scope{Inputs: map[string]any{"baseUrl": rec.URL}, Store: map[string]any{"token": "abc\r\nX-Evil: 1"}}
	for _, src := range []string{
		"url: <<inputs.baseUrl>>/h\nheaders: {X-Value: <<this.params.v>>}\n",
		"url: <<inputs.baseUrl>>/h\nauth: {bearer: <<appsmith.store.token>>}\n",
	} {
		_, err := send(t, src, sc, map[string]any{"v": "ok\nX-Evil: 1"})
		if err == nil || !strings.Contains(err.Error(), "line break") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "Evil") {
			t.Fatalf("the error quotes the value: %v", err)
		}
	}
	if n := len(rec.requests()); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

func TestDotSegmentsCannotWalkThePath(t *testing.T) {
	rec := newRecorder(t, nil)
	sc := scope{Inputs: map[string]any{"baseUrl": rec.URL}}
	for _, v := range []string{"..", ".", "../admin", "a/../../admin", "/rooted", "@127.0.0.1:9/x"} {
		if _, err := send(t, "url: <<inputs.baseUrl>>/items/<<this.params.v>>/x\n", sc, map[string]any{"v": v}); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.requests()
	// A "/" inside a value is kept (DESIGN §17), but a dot segment never
	// walks, a "/" never makes "//", and "@" never reads as a host.
	for i, want := range []string{"GET /items/%2E%2E/x", "GET /items/%2E/x", "GET /items/%2E%2E/admin/x", "GET /items/a/%2E%2E/%2E%2E/admin/x",
		"GET /items/%2Frooted/x", "GET /items/%40127.0.0.1:9/x/x"} {
		if !strings.HasPrefix(got[i], want+"\n") {
			t.Errorf("request %d: %q, want %q", i, strings.SplitN(got[i], "\n", 2)[0], want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"url: x\nbogus: 1\n", `api.query.yaml:2: unknown field "bogus"`},
		{"url: {{inputs.baseUrl}}/x\n", `api.query.yaml:1:6: did not find expected key (in YAML a value that starts with {{ must be quoted`},
		{"url: {{inputs.baseUrl}}\n", `api.query.yaml:1:6: url: expected a string, found a mapping (in YAML a value that starts with {{ must be quoted`},
		{"url: <<inputs.nope>>\n", `api.query.yaml:1:8: binding "inputs.nope": package has no input "nope"`},
		{"url: <<inptus.baseUrl>>\n", `unknown name "inptus"`},
		{"url: x\nbody: {json: {a: 1}, form: {b: 2}}\n", "at most one of json, form, multipart, raw"},
		{"url: x\nbody:\n  json: '{\"a\": <<this.params.x>>,}'\n", "api.query.yaml:3:9: the JSON body is not valid JSON"},
		{"url: x\ntimeout: soon\n", `timeout "soon"`},
		{"method: FETCH\nurl: x\n", `method "FETCH"`},
		{"headers: {a: b}\n", "url is required"},
	} {
		_, err := compileErr(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.src, err, tc.want)
		}
	}
}

func compileErr(src string) (engine.Module, error) {
	return query.NewKind().Compile(engine.Source{
		Name: "api", Path: "api.query.yaml", Data: []byte(src),
		Pkg: &engine.PackageInfo{Inputs: map[string]engine.Input{"baseUrl": {}}, Modules: map[string]string{"api": "api.query.yaml"}},
	})
}

// TestRedirectDropsBoundHeadersAcrossHosts: a header whose value is bound
// (it may be a credential) goes with a redirect to the same host but not
// to another one, as net/http does for Authorization; static headers go.
func TestRedirectDropsBoundHeadersAcrossHosts(t *testing.T) {
	got := make(chan http.Header, 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer other.Close()
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) // another host name
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, otherURL+"/landing", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/landing", http.StatusFound)
		case "/away-keep-body":
			http.Redirect(w, r, otherURL+"/landing", http.StatusTemporaryRedirect)
		case "/here-keep-body":
			http.Redirect(w, r, "/landing", http.StatusPermanentRedirect)
		default:
			got <- r.Header.Clone()
		}
	}))
	defer origin.Close()
	sc := scope{Inputs: map[string]any{"baseUrl": origin.URL, "token": "key-123456"}}
	for path, wantKey := range map[string]string{"/here": "key-123456", "/away": ""} {
		src := "url: <<inputs.baseUrl>>" + path + "\nheaders: {X-Api-Key: <<inputs.token>>, Accept: application/json}\n"
		if _, err := send(t, src, sc, nil); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		h := <-got
		if h.Get("X-Api-Key") != wantKey || h.Get("Accept") != "application/json" {
			t.Errorf("%s: the landing page got X-Api-Key %q, Accept %q; want %q, application/json", path, h.Get("X-Api-Key"), h.Get("Accept"), wantKey)
		}
	}

	// A 307/308 resends the body: to the same host, yes; to another, no.
	post := "method: POST\nurl: <<inputs.baseUrl>>%s\nbody:\n  form: {refresh_token: <<inputs.token>>}\n"
	if _, err := send(t, fmt.Sprintf(post, "/here-keep-body"), sc, nil); err != nil {
		t.Fatalf("308 to the same host: %v", err)
	}
	<-got
	_, err := send(t, fmt.Sprintf(post, "/away-keep-body"), sc, nil)
	if err == nil || !strings.Contains(err.Error(), "would resend the request body there") || strings.Contains(err.Error(), "key-123456") {
		t.Fatalf("307 to another host: err = %v", err)
	}
	select {
	case h := <-got:
		t.Fatalf("the other host got the request (%v)", h)
	default:
	}
}

// TestRedirectFromHTTPSToHTTPDropsCredentials: an https → http redirect on
// the same host keeps static headers but neither the bearer token nor a
// bound header, and never resends a body.
func TestRedirectFromHTTPSToHTTPDropsCredentials(t *testing.T) {
	got := make(chan http.Header, 1)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer plain.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusFound
		if r.Method == http.MethodPost {
			code = http.StatusTemporaryRedirect
		}
		http.Redirect(w, r, plain.URL+"/landing", code)
	}))
	defer tls.Close()
	kind := &query.Kind{Transport: tls.Client().Transport}
	pkg := &engine.PackageInfo{Name: "t", Inputs: map[string]engine.Input{"baseUrl": {}, "token": {}}, Modules: map[string]string{"api": "api.query.yaml"}}
	sc := scope{Inputs: map[string]any{"baseUrl": tls.URL, "token": "key-123456"}}
	sendTLS := func(src string) error {
		m, err := kind.Compile(engine.Source{Name: "api", Path: "api.query.yaml", Data: []byte(src), Pkg: pkg})
		if err != nil {
			t.Fatal(err)
		}
		req, err := m.(*query.Module).Bind(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = req.Send(context.Background())
		return err
	}
	if err := sendTLS("url: <<inputs.baseUrl>>/x\nheaders: {X-Api-Key: <<inputs.token>>, Accept: application/json}\nauth: {bearer: <<inputs.token>>}\n"); err != nil {
		t.Fatal(err)
	}
	h := <-got
	if h.Get("Authorization") != "" || h.Get("X-Api-Key") != "" || h.Get("Accept") != "application/json" {
		t.Errorf("over plain HTTP the landing page got Authorization %q, X-Api-Key %q, Accept %q", h.Get("Authorization"), h.Get("X-Api-Key"), h.Get("Accept"))
	}
	err := sendTLS("method: POST\nurl: <<inputs.baseUrl>>/x\nbody:\n  form: {refresh_token: <<inputs.token>>}\n")
	if err == nil || !strings.Contains(err.Error(), "would resend the request body there") {
		t.Fatalf("307 from https to http: err = %v", err)
	}
}

// TestRedirectsNeverSendReferer: the original URL, query-string secret and
// all, never reaches the next host as a Referer.
func TestRedirectsNeverSendReferer(t *testing.T) {
	got := make(chan http.Header, 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer other.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
	}))
	defer origin.Close()
	sc := scope{Inputs: map[string]any{"baseUrl": origin.URL, "token": "key-123456"}}
	if _, err := send(t, "url: <<inputs.baseUrl>>/start?access_token=<<inputs.token>>\n", sc, nil); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("Referer") != "" {
		t.Fatalf("Referer sent: %q", h.Get("Referer"))
	}
}

// TestRedirectToAnotherPortIsAnotherOrigin: same host, other port — bound
// headers are dropped and a 307 does not resend the body.
func TestRedirectToAnotherPortIsAnotherOrigin(t *testing.T) {
	got := make(chan http.Header, 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer other.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusFound
		if r.Method == http.MethodPost {
			code = http.StatusTemporaryRedirect
		}
		http.Redirect(w, r, other.URL+"/landing", code) // 127.0.0.1, another port
	}))
	defer origin.Close()
	sc := scope{Inputs: map[string]any{"baseUrl": origin.URL, "token": "key-123456"}}
	if _, err := send(t, "url: <<inputs.baseUrl>>/x\nheaders: {X-Api-Key: <<inputs.token>>}\n", sc, nil); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("X-Api-Key") != "" {
		t.Fatalf("X-Api-Key followed the redirect to another port")
	}
	_, err := send(t, "method: POST\nurl: <<inputs.baseUrl>>/x\nbody:\n  form: {refresh_token: <<inputs.token>>}\n", sc, nil)
	if err == nil || !strings.Contains(err.Error(), "would resend the request body there") {
		t.Fatalf("307 to another port: err = %v", err)
	}
}

// TestLyingContentLength: a response announcing 5 GB allocates only what
// arrives.
func TestLyingContentLength(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5000000000")
		w.Write([]byte(`{"ok": true}`))
	}))
	defer srv.Close()
	sc := scope{Inputs: map[string]any{"baseUrl": srv.URL}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := send(t, "url: <<inputs.baseUrl>>/x\nmaxResponseBytes: 10000000000\n", sc, nil)
	runtime.ReadMemStats(&after)
	if err == nil || strings.Contains(err.Error(), "5000000000") {
		t.Fatalf("err = %v; want a short-body error", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("allocated %d bytes for a 12-byte body", grew)
	}
}

// TestURLErrorsCarryNoQuery: a URL that does not parse once bound is named
// by its template, never by its bound text (which holds the token).
func TestURLErrorsCarryNoQuery(t *testing.T) {
	sc := scope{Inputs: map[string]any{"baseUrl": "http://127.0.0.1:port", "token": "tok-abcdef123"}}
	_, err := send(t, "url: <<inputs.baseUrl>>/x?access_token=<<inputs.token>>\n", sc, nil)
	if err == nil || strings.Contains(err.Error(), "tok-abcdef123") || !strings.Contains(err.Error(), "invalid port") {
		t.Fatalf("err = %v", err)
	}
}

// TestBindingsCannotMoveTheHost: a value bound after the base URL can
// never change the request's origin (issue 28, finding 5: a path of
// "@127.0.0.1:28083" sent the request, and its token, there).
func TestBindingsCannotMoveTheHost(t *testing.T) {
	rec := newRecorder(t, nil)
	other := newRecorder(t, nil)
	otherHost := strings.TrimPrefix(other.URL, "http://")
	sc := scope{Inputs: map[string]any{"baseUrl": rec.URL}}
	for _, tc := range []struct{ tmpl, v string }{
		{"url: <<inputs.baseUrl>><<this.params.v>>\n", "@" + otherHost},
		{"url: <<inputs.baseUrl>><<this.params.v>>\n", ":1/x"},
		{"url: <<inputs.baseUrl>><<this.params.v>>\n", ".evil.example/x"},
		{"url: <<inputs.baseUrl>><<this.params.v>>/x\n", "\\" + otherHost},
		{"url: <<inputs.baseUrl>><<this.params.v>>\n", "%40" + otherHost},
	} {
		if _, err := send(t, tc.tmpl, sc, map[string]any{"v": tc.v}); err == nil {
			t.Errorf("%q with %q was sent; want an error before sending", tc.tmpl, tc.v)
		}
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("%d requests reached the other host", n)
	}
}
