package authserver

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. The zero value works.
type Options struct {
	// AccessTTL is the access tokens' lifetime. Zero means 3 s.
	AccessTTL time.Duration
	// Users are username → password. Nil means {"demo": "demo-password"}.
	Users map[string]string
	// KeepRefreshToken answers refreshes without a new refresh token: the
	// one spent stays valid (servers that do not rotate).
	KeepRefreshToken bool
	// NoReuseDetection answers a spent refresh token with invalid_grant
	// but does not revoke its family (servers with a grace policy).
	NoReuseDetection bool
	// OnRefresh, if set, is called at the start of every refresh request
	// with its number (1, 2, …): tests use it to order concurrent requests.
	OnRefresh func(n int64)
}

// Server is the auth service.
type Server struct {
	opts Options
	srv  *http.Server
	ln   net.Listener

	mu       sync.Mutex
	access   map[string]accessToken
	refresh  map[string]*refreshToken
	families map[string]bool // family id → revoked
	issued   []string        // every token handed out, for leak tests
	rotated  []time.Time     // when each refresh succeeded, for /stats

	// Counters, for tests and the example's output.
	Logins, Refreshes, Reuses, Profiles, Unauthorized atomic.Int64
}

type accessToken struct {
	user    string
	expires time.Time
	family  string
}

type refreshToken struct {
	user   string
	family string
	spent  bool
}

// New returns a server; Start makes it listen.
func New(opts Options) *Server {
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = 3 * time.Second
	}
	if opts.Users == nil {
		opts.Users = map[string]string{"demo": "demo-password"}
	}
	return &Server{
		opts:     opts,
		access:   map[string]accessToken{},
		refresh:  map[string]*refreshToken{},
		families: map[string]bool{},
	}
}

// Start listens on 127.0.0.1 (port 0 picks a free one) and serves in the
// background.
func (s *Server) Start(port int) error {
	return s.StartOn(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// StartOn listens on addr (HOST:PORT; 0.0.0.0:8080 in a container) and
// serves in the background.
func (s *Server) StartOn(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return nil
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// Handler serves the API:
//
//	POST /api/user/login/          {"username","password"} → tokens
//	POST /api/user/token-refresh/  {"refresh_token"}      → new tokens
//	GET  /api/user/profile/        Authorization: Bearer  → the profile
//	GET  /stats                    the counters (Stats), for tests
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/user/login/", s.login)
	mux.HandleFunc("POST /api/user/token-refresh/", s.tokenRefresh)
	mux.HandleFunc("GET /api/user/profile/", s.profile)
	mux.HandleFunc("GET /stats", s.stats)
	// What the README's first commands and runner new's scaffold call.
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	return mux
}

// ExpireAccessTokens makes every access token expire now, as if time had
// passed: the next use gets 401.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, a := range s.access {
		a.expires = time.Now().Add(-time.Second)
		s.access[k] = a
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be JSON: {\"username\": …, \"password\": …}")
		return
	}
	s.Logins.Add(1)
	if pw, ok := s.opts.Users[req.Username]; !ok || pw != req.Password {
		oauthError(w, http.StatusUnauthorized, "invalid_grant", "wrong username or password")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issue(w, req.Username, token("fam_"))
}

func (s *Server) tokenRefresh(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.RefreshToken == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be JSON: {\"refresh_token\": \"…\"}")
		return
	}
	n := s.Refreshes.Add(1)
	if s.opts.OnRefresh != nil {
		s.opts.OnRefresh(n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[req.RefreshToken]
	switch {
	case !ok:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
		return
	case s.families[rt.family]:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the session was revoked")
		return
	case rt.spent:
		s.Reuses.Add(1)
		if s.opts.NoReuseDetection {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was already used")
			return
		}
		// Reuse of a rotated token: someone has a copy. Revoke the family.
		s.families[rt.family] = true
		oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token reuse detected; the session is revoked")
		return
	}
	if s.opts.KeepRefreshToken {
		s.issueAccess(w, rt.user, rt.family)
		return
	}
	rt.spent = true
	s.rotated = append(s.rotated, time.Now())
	s.issue(w, rt.user, rt.family)
}

// Stats are the server's counters, as GET /stats answers them.
type Stats struct {
	Logins       int64 `json:"logins"`
	Refreshes    int64 `json:"refreshes"` // refresh requests, failed ones too
	Reuses       int64 `json:"reuses"`    // spent refresh tokens presented again
	Profiles     int64 `json:"profiles"`
	Unauthorized int64 `json:"unauthorized"`
	// Rotations are when each successful refresh happened, in Unix
	// milliseconds, oldest first.
	Rotations []int64 `json:"rotations"`
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	st := Stats{Logins: s.Logins.Load(), Refreshes: s.Refreshes.Load(), Reuses: s.Reuses.Load(),
		Profiles: s.Profiles.Load(), Unauthorized: s.Unauthorized.Load(), Rotations: []int64{}}
	s.mu.Lock()
	for _, t := range s.rotated {
		st.Rotations = append(st.Rotations, t.UnixMilli())
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// issueAccess writes a new access token only; s.mu is held.
func (s *Server) issueAccess(w http.ResponseWriter, user, family string) {
	at := token("at_")
	s.access[at] = accessToken{user: user, expires: time.Now().Add(s.opts.AccessTTL), family: family}
	s.issued = append(s.issued, at)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": s.opts.AccessTTL.Seconds()})
}

// Issued returns every token the server has handed out.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// issue writes a new token pair; s.mu is held.
func (s *Server) issue(w http.ResponseWriter, user, family string) {
	at, rt := token("at_"), token("rt_")
	s.access[at] = accessToken{user: user, expires: time.Now().Add(s.opts.AccessTTL), family: family}
	s.refresh[rt] = &refreshToken{user: user, family: family}
	s.issued = append(s.issued, at, rt)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token":  at,
		"refresh_token": rt,
		"token_type":    "Bearer",
		"expires_in":    s.opts.AccessTTL.Seconds(),
	})
}

func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	s.Profiles.Add(1)
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	tok := ""
	if len(h) > len(prefix) && h[:len(prefix)] == prefix {
		tok = h[len(prefix):]
	}
	s.mu.Lock()
	a, ok := s.access[tok]
	revoked := ok && s.families[a.family]
	s.mu.Unlock()
	if !ok || revoked || time.Now().After(a.expires) {
		s.Unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="the access token expired or is invalid"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "the access token expired or is invalid")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"username": a.user, "plan": "demo", "tokenExpiresAt": a.expires.UTC().Format(time.RFC3339Nano)})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func token(prefix string) string {
	var b [24]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
