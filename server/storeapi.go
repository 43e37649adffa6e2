// The store endpoints: an app's keys read (secret-named ones redacted
// unless revealed), written, deleted and cleared, and the rekey.

package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
)

// storeApp is the {app} of a store endpoint; the history is not for it.
func storeApp(r *http.Request) (string, error) {
	app := r.PathValue("app")
	return app, checkApp(app)
}

func (s *Server) handleStoreList(w http.ResponseWriter, r *http.Request) error {
	app, err := storeApp(r)
	if err != nil {
		return err
	}
	vals, err := s.opts.Store.List(r.Context(), app)
	if err != nil {
		return err
	}
	reveal, err := wantsReveal(r)
	if err != nil {
		return err
	}
	out := make(map[string]json.RawMessage, len(vals))
	for k, v := range vals {
		out[k] = s.masked(k, v, reveal)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// masked is a store value as runner store shows it: secret-named keys and
// fields redacted unless reveal, and the served packages' secret inputs
// wherever they stand (a secret stored under a plain key).
func (s *Server) masked(key string, v json.RawMessage, reveal bool) json.RawMessage {
	switch {
	case reveal:
		return v
	case redact.SecretKey(key):
		return json.RawMessage(`"` + redact.Mask + `"`)
	}
	return json.RawMessage(s.secrets.String(string(redact.JSON(v))))
}

func (s *Server) handleStoreGet(w http.ResponseWriter, r *http.Request) error {
	app, err := storeApp(r)
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	v, err := s.opts.Store.Get(r.Context(), app, key)
	if errors.Is(err, engine.ErrNotFound) {
		return errNotFound("app %s has no key %s", app, engine.QuoteKey(key))
	}
	if err != nil {
		return err
	}
	reveal, err := wantsReveal(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.masked(key, v, reveal))
	return nil
}

// wantsReveal is ?reveal=true, which only admin may ask.
func wantsReveal(r *http.Request) (bool, error) {
	if r.URL.Query().Get("reveal") != "true" {
		return false, nil
	}
	return true, need(r, ScopeAdmin)
}

func (s *Server) handleStoreSet(w http.ResponseWriter, r *http.Request) error {
	app, err := storeApp(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		return errBadRequest("the value is over %d bytes, or could not be read", s.opts.MaxBody)
	}
	if !json.Valid(body) && engine.Depth(body) <= engine.MaxValueDepth {
		return errBadRequest("the value must be JSON (a string needs quotes)")
	}
	if err := checkWritableKey(r.PathValue("key")); err != nil {
		return err
	}
	if err := s.opts.Store.Set(r.Context(), app, r.PathValue("key"), body); err != nil {
		return storeError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleStoreDelete(w http.ResponseWriter, r *http.Request) error {
	app, err := storeApp(r)
	if err != nil {
		return err
	}
	if err := checkWritableKey(r.PathValue("key")); err != nil {
		return err
	}
	if err := s.opts.Store.Delete(r.Context(), app, r.PathValue("key")); err != nil {
		return storeError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleStoreClear(w http.ResponseWriter, r *http.Request) error {
	app, err := storeApp(r)
	if err != nil {
		return err
	}
	if err := s.opts.Store.Clear(r.Context(), app); err != nil {
		return storeError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleRekey re-seals every value of the store under its keyring's first
// key (engine.Rekeyer): a bbolt store is held by this process, so rekeying
// it while serving goes through here. It answers the report when done.
func (s *Server) handleRekey(w http.ResponseWriter, r *http.Request) error {
	rk, ok := s.opts.Store.(engine.Rekeyer)
	if !ok {
		return &apiError{http.StatusNotImplemented, "this server's store does not seal its values"}
	}
	rep, err := rk.Rekey(r.Context(), nil)
	if err != nil {
		return err
	}
	s.log.Info("rekeyed the store", "key", rep.Key, "values", rep.Values, "resealed", rep.Resealed)
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// storeError makes a bad key or value a 400.
func storeError(err error) error {
	if errors.Is(err, engine.ErrInvalidKey) || errors.Is(err, engine.ErrInvalidValue) || errors.Is(err, engine.ErrValueTooLarge) {
		return errBadRequest("%v", err)
	}
	return err
}
