package server

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/oauth2"
)

//go:embed ui
var uiFiles embed.FS

// Handler returns the server's HTTP API and inspector.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// api routes pattern to h for requests whose token holds scope (admin
	// or read); "" leaves the check to h: a run's scope is its package's,
	// known once the reference (a name, a range, a directory) resolves.
	api := func(pattern, scope string, h func(w http.ResponseWriter, r *http.Request) error) {
		mux.Handle(pattern, s.authorized(func(w http.ResponseWriter, r *http.Request) {
			err := error(nil)
			if scope != "" {
				err = need(r, scope)
			}
			if err == nil {
				err = h(w, r)
			}
			if err != nil {
				writeError(w, "", errorInfo(err, func(s string) string { return s }))
			}
		}))
	}
	api("POST /v1/run/{package}/{target}", "", s.handleRun)
	api("POST /v1/runs", "", s.handleQueue)
	api("GET /v1/runs", "", s.handleList)
	api("GET /v1/runs/{id}", "", s.handleGetRun)
	api("GET /v1/packages", ScopeRead, s.handlePackages)
	api("GET /v1/credentials", ScopeRead, s.handleCredentials)
	api("GET /v1/store/{app}", ScopeRead, s.handleStoreList)
	api("GET /v1/store/{app}/{key}", ScopeRead, s.handleStoreGet)
	api("PUT /v1/store/{app}/{key}", ScopeAdmin, s.handleStoreSet)
	api("DELETE /v1/store/{app}/{key}", ScopeAdmin, s.handleStoreDelete)
	api("DELETE /v1/store/{app}", ScopeAdmin, s.handleStoreClear)
	api("POST /v1/rekey", ScopeAdmin, s.handleRekey)
	api("POST /v1/tokens", ScopeAdmin, s.handleTokenCreate)
	api("GET /v1/tokens", ScopeAdmin, s.handleTokenList)
	api("DELETE /v1/tokens/{name}", ScopeAdmin, s.handleTokenRevoke)
	metrics := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", s.authorized(func(w http.ResponseWriter, r *http.Request) {
		if err := need(r, ScopeRead); err != nil {
			writeError(w, "", errorInfo(err, func(s string) string { return s }))
			return
		}
		metrics.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	ui, _ := fs.Sub(uiFiles, "ui")
	files := http.FileServerFS(ui) // static, no data: no token
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			writeError(w, "", &ErrorInfo{Message: "no such endpoint: " + r.Method + " " + r.URL.Path, status: http.StatusNotFound})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, "", &ErrorInfo{Message: "the inspector's files are read with GET", status: http.StatusMethodNotAllowed})
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Frame-Options", "DENY")
		files.ServeHTTP(w, r)
	})
	return s.accessLog(mux)
}

// runRequest is the body of POST /v1/run/... and /v1/runs.
type runRequest struct {
	Package string            `json:"package"`
	Target  string            `json:"target"`
	Args    []json.RawMessage `json:"args"`
	Params  json.RawMessage   `json:"params"`
	App     string            `json:"app"`
	Timeout json.RawMessage   `json:"timeout"`
}

// decode reads a JSON body of at most MaxBody bytes; an empty body is {}.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return errBadRequest("the request body is over %d bytes", s.opts.MaxBody)
		}
		return errBadRequest("reading the body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest("the body is not a valid JSON request: %v", err)
	}
	return nil
}

// prepare turns a request into a job: the package resolved, the target
// and arguments checked, the run recorded.
func (s *Server) prepare(req runRequest) (*job, error) {
	if req.Package == "" || req.Target == "" {
		return nil, errBadRequest(`"package" and "target" are required`)
	}
	pkg, err := s.resolve(req.Package)
	if err != nil {
		return nil, err
	}
	if err := target(pkg, req.Target); err != nil {
		return nil, err
	}
	timeout, err := parseTimeout(req.Timeout)
	if err != nil {
		return nil, errBadRequest("%v", err)
	}
	isQuery := !strings.Contains(req.Target, ".")
	var args []json.RawMessage
	switch {
	case isQuery && req.Args != nil:
		return nil, errBadRequest(`%s is a query module: give "params": {...}, not "args"`, req.Target)
	case !isQuery && req.Params != nil:
		return nil, errBadRequest(`%s is a function: give "args": [...], not "params"`, req.Target)
	case isQuery && len(req.Params) > 0 && string(req.Params) != "null":
		if bytes.TrimSpace(req.Params)[0] != '{' {
			return nil, errBadRequest(`"params" must be a JSON object`)
		}
		args = []json.RawMessage{req.Params}
	case !isQuery:
		args = req.Args
	}
	app := req.App
	if app == "" {
		app = pkg.Manifest.Name
	}
	if err := checkApp(app); err != nil {
		return nil, err
	}
	r := &Run{Package: pkg.Manifest.Name, Version: pkg.Manifest.Version, Target: req.Target, App: app,
		Trigger: TriggerAPI, Status: StatusQueued}
	return &job{run: r, pkg: pkg, args: args, timeout: timeout}, nil
}

func checkApp(app string) error {
	if engine.ReservedApp(app) {
		return errBadRequest("app %q is reserved: modrun.* apps are the server's own", app)
	}
	if app == "" || len(app) > engine.MaxAppLen {
		return errBadRequest("app %q: want 1 to %d bytes", app, engine.MaxAppLen)
	}
	return nil
}

// checkWritableKey refuses a /v1/store write to a reserved key.
func checkWritableKey(key string) error {
	if engine.ReservedKey(key) {
		return &apiError{http.StatusForbidden, "key " + engine.QuoteKey(key) + " holds a credential's token set, which only modrun writes (runner login, or the credential's refresh)"}
	}
	return nil
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) error {
	var req runRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	req.Package, req.Target = r.PathValue("package"), r.PathValue("target")
	j, err := s.prepare(req)
	if err != nil {
		return err
	}
	if err := need(r, ScopeRunPrefix+j.run.Package); err != nil {
		return err
	}
	// The run is the request's: a client that goes away cancels it.
	run, err := s.submit(r.Context(), j, true, nil)
	if err != nil {
		return tooMany(w, err)
	}
	w.Header().Set("X-Run-Id", run.ID)
	if run.Status != StatusSucceeded {
		writeError(w, run.ID, run.Error)
		return nil
	}
	writeJSON(w, http.StatusOK, runAnswer{DurationMs: run.DurationMs, ID: run.ID, Result: run.Result})
	return nil
}

// runAnswer is the body of a run's success: a struct, not a map, which
// encoding/json would sort the keys of on every answer (the fields are in
// that order, so the bytes are the same).
type runAnswer struct {
	DurationMs *int64          `json:"durationMs"`
	ID         string          `json:"id"`
	Result     json.RawMessage `json:"result"`
}

func (s *Server) handleQueue(w http.ResponseWriter, r *http.Request) error {
	var req runRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	j, err := s.prepare(req)
	if err != nil {
		return err
	}
	if err := need(r, ScopeRunPrefix+j.run.Package); err != nil {
		return err
	}
	// Queued runs outlive the request; the server's shutdown ends them.
	// (It stays in the request's trace: its span is a child of the
	// request's, which ends first.)
	if _, err := s.submit(trace.ContextWithSpan(context.Background(), trace.SpanFromContext(r.Context())), j, false, nil); err != nil {
		return tooMany(w, err)
	}
	w.Header().Set("X-Run-Id", j.run.ID)
	w.Header().Set("Location", "/v1/runs/"+j.run.ID)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": j.run.ID, "status": StatusQueued})
	return nil
}

// tooMany adds Retry-After to a 429 and returns err.
func tooMany(w http.ResponseWriter, err error) error {
	if ae := (*apiError)(nil); errors.As(err, &ae) && ae.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	return err
}

// MaxWait bounds GET /v1/runs/{id}?wait=.
const MaxWait = time.Minute

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	run, done, ok := s.history.get(r.Context(), id)
	if !ok || !who(r).canReadRunsOf(run.Package) {
		// A run of another package is as absent as an unknown one: its
		// id tells nothing.
		return errNotFound("no run %q (the history keeps the last %d)", id, s.opts.History)
	}
	if ws := r.URL.Query().Get("wait"); ws != "" && !run.finished() {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			return errBadRequest("wait %q: want a duration such as 10s", ws)
		}
		// This server's run says when it ends; another server's is read
		// from the store again every historySync.
		t := time.NewTimer(min(d, MaxWait))
		tick := time.NewTicker(historySync)
	waiting:
		for done != nil || !run.finished() {
			select {
			case <-done:
				done = nil
			case <-tick.C:
			case <-t.C:
				break waiting
			case <-r.Context().Done():
				break waiting
			}
			again, d, ok := s.history.get(r.Context(), id)
			if !ok {
				break // pushed out of the history meanwhile
			}
			run, done = again, d
		}
		t.Stop()
		tick.Stop()
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := filter{pkg: q.Get("package"), target: q.Get("target"), status: q.Get("status"), before: q.Get("before"), limit: 50,
		allowed: who(r).canReadRunsOf}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return errBadRequest("limit %q: want a positive number", l)
		}
		f.limit = min(n, s.opts.History)
	}
	writeJSON(w, http.StatusOK, s.history.list(r.Context(), f))
	return nil
}

// handleCredentials answers the health of every OAuth2 token set the
// store holds (DESIGN §18): states, expiries, failures; never a token.
func (s *Server) handleCredentials(w http.ResponseWriter, r *http.Request) error {
	all, err := oauth2.Credentials(r.Context(), s.opts.Store, nil)
	if err != nil {
		return err
	}
	pkg := r.URL.Query().Get("package")
	out := all[:0]
	for _, h := range all {
		if pkg == "" || h.Package == pkg {
			out = append(out, h)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handlePackages(w http.ResponseWriter, r *http.Request) error {
	out := []packageInfo{}
	for _, p := range s.Packages() {
		out = append(out, describe(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError answers {"id"?, "error": {...}} with the error's status.
func writeError(w http.ResponseWriter, id string, info *ErrorInfo) {
	if info == nil {
		info = &ErrorInfo{Message: "unknown error", status: http.StatusInternalServerError}
	}
	status := info.status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	body := map[string]any{"error": info}
	if id != "" {
		body["id"] = id
	}
	writeJSON(w, status, body)
}
