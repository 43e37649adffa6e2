// The API's scoped-token routes: create, list, revoke.

package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modrun/modrun/engine"
)

// tokenRequest is the body of POST /v1/tokens.
type tokenRequest struct {
	Name    string   `json:"name"`
	Scopes  []string `json:"scopes"`
	Expires string   `json:"expires"` // a duration: 12h, 30d; empty: never
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	ttl, err := ParseExpiry(req.Expires)
	if err != nil {
		return errBadRequest("%v", err)
	}
	if err := CheckTokenSpec(req.Name, req.Scopes, ttl); err != nil {
		return errBadRequest("%v", err)
	}
	token, info, err := CreateToken(r.Context(), s.opts.Store, req.Name, req.Scopes, ttl)
	if errors.Is(err, ErrTokenExists) {
		return &apiError{http.StatusConflict, err.Error()}
	}
	if err != nil {
		return err
	}
	s.log.Info("token created", "name", info.Name, "scopes", strings.Join(info.Scopes, " "), "by", who(r).String())
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "info": info})
	return nil
}

func (s *Server) handleTokenList(w http.ResponseWriter, r *http.Request) error {
	list, err := ListTokens(r.Context(), s.opts.Store)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) handleTokenRevoke(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := RevokeToken(r.Context(), s.opts.Store, name)
	s.tokens.forget(name)
	if errors.Is(err, engine.ErrNotFound) {
		return errNotFound("%v", err)
	}
	if err != nil {
		return err
	}
	s.log.Info("token revoked", "name", name, "by", who(r).String())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ParseExpiry reads a token's lifetime: a Go duration (12h, 90m) or a
// number of days (30d); "" is no expiry.
func ParseExpiry(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 36500 {
			return 0, fmt.Errorf("expiry %q: want a positive number of days, such as 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("expiry %q: want a duration such as 12h or 30d", s)
	}
	return d, nil
}
