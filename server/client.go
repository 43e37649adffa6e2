package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/oauth2"
)

// Client calls a runner serve: runner run --server and runner store
// --server use it. The zero value is not usable; call NewClient.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client of the server at baseURL
// (http://127.0.0.1:8787) that sends token. It does no I/O.
func NewClient(baseURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want a URL such as http://127.0.0.1:8787", baseURL)
	}
	c := &Client{base: u, token: token}
	c.http = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		// The token is for this server: never to another origin.
		if engine.Origin(req.URL) != engine.Origin(u) {
			return fmt.Errorf("the server redirected to %s, another origin; not following with its token", engine.Origin(req.URL))
		}
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		return nil
	}}
	return c, nil
}

// RemoteError is an error answer of the server.
type RemoteError struct {
	Status int // the HTTP status
	ID     string
	Info   ErrorInfo
}

func (e *RemoteError) Error() string { return e.Info.Message }

// Run runs target of pkg on the server and returns its result. For a
// query target, args is one params object.
func (c *Client) Run(ctx context.Context, pkg, target, app string, args []json.RawMessage, timeout time.Duration) (json.RawMessage, error) {
	req := map[string]any{}
	if strings.Contains(target, ".") {
		if args == nil {
			args = []json.RawMessage{}
		}
		req["args"] = args
	} else if len(args) > 0 {
		req["params"] = args[0]
	}
	if app != "" {
		req["app"] = app
	}
	if timeout > 0 {
		req["timeout"] = timeout.String()
	}
	var out struct {
		Result json.RawMessage `json:"result"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/run/"+url.PathEscape(pkg)+"/"+url.PathEscape(target), req, &out); err != nil {
		return nil, err
	}
	if out.Result == nil {
		return json.RawMessage("null"), nil
	}
	return out.Result, nil
}

// Credentials returns the health of the server's OAuth2 credentials
// (GET /v1/credentials), of package pkg only if not empty.
func (c *Client) Credentials(ctx context.Context, pkg string) ([]oauth2.Health, error) {
	path := "/v1/credentials"
	if pkg != "" {
		path += "?package=" + url.QueryEscape(pkg)
	}
	var out []oauth2.Health
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// Store returns the server's store as an engine.Store; values of
// secret-named keys and fields come back redacted unless reveal.
// CompareAndSwap is not offered remotely.
func (c *Client) Store(reveal bool) *RemoteStore { return &RemoteStore{c: c, reveal: reveal} }

// Rekey asks the server to re-seal its store under its keyring's first
// key (POST /v1/rekey) and returns the report.
func (c *Client) Rekey(ctx context.Context) (engine.RekeyReport, error) {
	var rep engine.RekeyReport
	err := c.do(ctx, http.MethodPost, "/v1/rekey", nil, &rep)
	return rep, err
}

// CreateToken asks the server for a scoped API token (POST /v1/tokens,
// admin): it is returned once. expires is a duration (12h, 30d) or "".
func (c *Client) CreateToken(ctx context.Context, name string, scopes []string, expires string) (string, TokenInfo, error) {
	var out struct {
		Token string    `json:"token"`
		Info  TokenInfo `json:"info"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/tokens", tokenRequest{Name: name, Scopes: scopes, Expires: expires}, &out)
	return out.Token, out.Info, err
}

// ListTokens lists the server's scoped API tokens (GET /v1/tokens, admin).
func (c *Client) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	var out []TokenInfo
	err := c.do(ctx, http.MethodGet, "/v1/tokens", nil, &out)
	return out, err
}

// RevokeToken revokes the token name (DELETE /v1/tokens/NAME, admin).
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(name), nil, nil)
}

// RemoteStore is a served store, reached over HTTP.
type RemoteStore struct {
	c      *Client
	reveal bool
}

var _ engine.Store = (*RemoteStore)(nil)

func (s *RemoteStore) path(app, key string) string {
	p := "/v1/store/" + url.PathEscape(app)
	if key != "" {
		p += "/" + url.PathEscape(key)
	}
	if s.reveal {
		p += "?reveal=true"
	}
	return p
}

// Get implements engine.Store.
func (s *RemoteStore) Get(ctx context.Context, app, key string) (json.RawMessage, error) {
	var v json.RawMessage
	err := s.c.do(ctx, http.MethodGet, s.path(app, key), nil, &v)
	var re *RemoteError
	if errors.As(err, &re) && re.Status == http.StatusNotFound {
		return nil, engine.ErrNotFound
	}
	return v, err
}

// Set implements engine.Store.
func (s *RemoteStore) Set(ctx context.Context, app, key string, value json.RawMessage) error {
	return s.c.do(ctx, http.MethodPut, s.path(app, key), value, nil)
}

// Delete implements engine.Store.
func (s *RemoteStore) Delete(ctx context.Context, app, key string) error {
	return s.c.do(ctx, http.MethodDelete, s.path(app, key), nil, nil)
}

// List implements engine.Store.
func (s *RemoteStore) List(ctx context.Context, app string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	err := s.c.do(ctx, http.MethodGet, s.path(app, ""), nil, &out)
	return out, err
}

// Clear implements engine.Store.
func (s *RemoteStore) Clear(ctx context.Context, app string) error {
	return s.c.do(ctx, http.MethodDelete, s.path(app, ""), nil, nil)
}

// CompareAndSwap implements engine.Store: not over HTTP.
func (s *RemoteStore) CompareAndSwap(context.Context, string, string, json.RawMessage, json.RawMessage) (bool, error) {
	return false, errors.New("compare-and-swap is not offered by the server's store API")
}

// Close implements engine.Store.
func (s *RemoteStore) Close() error { return nil }

// do sends a request with body (JSON-encoded unless already raw JSON) and
// decodes a 2xx answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	u := *c.base
	p, q, _ := strings.Cut(path, "?")
	u.RawPath = u.Path + p
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("server %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("server %s: %w", c.base.Host, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			ID    string    `json:"id"`
			Error ErrorInfo `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Message == "" {
			e.Error.Message = fmt.Sprintf("server %s: HTTP %d", c.base.Host, resp.StatusCode)
		}
		return &RemoteError{Status: resp.StatusCode, ID: e.ID, Info: e.Error}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("server %s: the answer is not JSON: %w", c.base.Host, err)
		}
	}
	return nil
}
