// Token requests: the form, the request with its retries of transient
// failures, and the answer parsed into a Response or a FailureReason.

package oauth2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/tracing"
)

// form is the token request for spec given the stored set, and the grant
// it uses: a refresh when there is a refresh token, else the credential's
// own grant.
func (c *Client) form(spec engine.TokenSpec, set *Set) (url.Values, string, error) {
	f := url.Values{}
	grant := spec.Grant
	switch {
	case spec.Grant != engine.GrantClientCredentials && set != nil && set.RefreshToken != "":
		grant = engine.GrantRefreshToken
		f.Set("refresh_token", set.RefreshToken)
	case spec.Grant == engine.GrantClientCredentials:
	case spec.Grant == engine.GrantPassword:
		f.Set("username", spec.Username)
		f.Set("password", spec.Password)
	default:
		return nil, "", fmt.Errorf("%s: no token yet: run runner login %s %s (or store a refresh token under %s)", spec.Name, c.Package, spec.Name, Key(spec.Name))
	}
	f.Set("grant_type", grant)
	if len(spec.Scopes) > 0 && grant != engine.GrantRefreshToken {
		f.Set("scope", strings.Join(spec.Scopes, " "))
	}
	for k, v := range spec.Params {
		f.Set(k, v)
	}
	if spec.ClientAuth == "body" || spec.ClientSecret == "" {
		f.Set("client_id", spec.ClientID)
		if spec.ClientSecret != "" {
			f.Set("client_secret", spec.ClientSecret)
		}
	}
	return f, grant, nil
}

// Token requests that fail transiently — the endpoint unreachable, a 5xx
// or a 429 — are tried again, at most MaxTokenAttempts times in all, after
// a backoff doubling from TokenRetryBackoff (or the answer's
// Retry-After), within the call's deadline. invalid_grant and
// invalid_client are answers, not failures: never retried.
const (
	MaxTokenAttempts  = 4
	TokenRetryBackoff = 100 * time.Millisecond
)

// transientError is a token request failure worth trying again.
type transientError struct {
	err        error
	retryAfter time.Duration // the server's Retry-After; 0: none
}

func (e *transientError) Error() string { return e.err.Error() }

func (e *transientError) Unwrap() error { return e.err }

// requestRetrying is request, tried again on transient failures (see
// MaxTokenAttempts). A refresh whose request may have reached the server
// (a timeout, a dropped connection) is not sent again: the server may
// have rotated the refresh token on it, and a second request would spend
// the old one twice.
func (c *Client) requestRetrying(ctx context.Context, spec engine.TokenSpec, form url.Values) (*Response, error) {
	wait := TokenRetryBackoff
	grant := form.Get("grant_type")
	for attempt := 1; ; attempt++ {
		start := time.Now()
		resp, err := c.request(ctx, spec, form)
		if err == nil && c.Log != nil {
			c.Log.InfoContext(ctx, "token request", "credential", spec.Name, "grant", grant, "attempt", attempt,
				"took", time.Since(start).Round(time.Millisecond).String())
		}
		var te *transientError
		if err == nil || attempt >= MaxTokenAttempts || !errors.As(err, &te) {
			return resp, err
		}
		d := wait
		if te.retryAfter > 0 {
			d = te.retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return resp, err // no time for another try
		}
		c.observe(spec.Name, grant, "retry")
		if c.Log != nil {
			c.Log.InfoContext(ctx, "token request failed; retrying", "credential", spec.Name, "grant", grant, "attempt", attempt,
				"wait", d.String(), "reason", FailureReason(err), "error", err.Error())
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, err
		case <-t.C:
		}
		wait *= 2
	}
}

// notSent reports whether err means the request never reached the
// server: it could not connect.
func notSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// retryAfter reads a Retry-After header in seconds, capped at a minute.
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After")))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(min(n, 60)) * time.Second // 10^10 s would overflow a Duration
}

// MaxResponse bounds a token endpoint's answer.
const MaxResponse = 1 << 20

// request sends a token request: form-encoded, client authentication by
// Basic (RFC 6749 §2.3.1: id and secret form-encoded first) unless in the
// body; no redirect followed.
func (c *Client) request(ctx context.Context, spec engine.TokenSpec, form url.Values) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: token request: the tokenUrl is not valid: %v", spec.Name, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if spec.ClientAuth != "body" && spec.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(spec.ClientID), url.QueryEscape(spec.ClientSecret))
	}
	hc := *c.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	end := tracing.StartClient(req, "oauth2 token "+spec.Name,
		attribute.String("modrun.credential", spec.Name), attribute.String("oauth2.grant_type", form.Get("grant_type")))
	resp, err := hc.Do(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	end(status, err)
	if err != nil {
		sent := !notSent(err)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("%s: token request to %s: %v", spec.Name, req.URL.Host, err)
		if !sent || form.Get("grant_type") != engine.GrantRefreshToken {
			err = &transientError{err: err}
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s: token request to %s: %v", spec.Name, req.URL.Host, err)
	}
	if len(body) > MaxResponse {
		return nil, fmt.Errorf("%s: token request: the answer is over %d bytes", spec.Name, MaxResponse)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fmt.Errorf("%s: token request: HTTP %d: the token endpoint redirected; refusing to follow (it would resend the credentials)", spec.Name, resp.StatusCode)
	}
	tr, err := ParseResponse(resp.StatusCode, body)
	if err != nil {
		err = fmt.Errorf("%s: token request: %w", spec.Name, err)
		var oe *oauthError
		if errors.As(err, &oe) && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) &&
			oe.code != "invalid_grant" && oe.code != "invalid_client" {
			err = &transientError{err: err, retryAfter: retryAfter(resp.Header)}
		}
		return nil, err
	}
	return tr, nil
}

// Response is a token endpoint's successful answer.
type Response struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string
	ExpiresIn    float64 // seconds; 0: not given
	// RefreshExpiresIn is the refresh token's lifetime in seconds, from
	// refresh_expires_in (Keycloak and others); 0: not given.
	RefreshExpiresIn float64
}

// oauthError is an OAuth error answer (RFC 6749 §5.2).
// FailureReason classifies a failed token request for
// modrun_oauth2_refresh_failures_total: the OAuth2 error code the
// server gave (invalid_grant, invalid_client, …), else http_429,
// http_5xx, http_4xx, network or other.
func FailureReason(err error) string {
	var oe *oauthError
	if errors.As(err, &oe) {
		switch {
		case rfc6749Errors[oe.code]:
			return oe.code // a label value of a bounded set: never the server's free text
		case oe.status == http.StatusTooManyRequests:
			return "http_429"
		case oe.status >= 500:
			return "http_5xx"
		case oe.status >= 400:
			return "http_4xx"
		}
		return "other"
	}
	var te *transientError
	if errors.As(err, &te) {
		return "network"
	}
	return "other"
}

// rfc6749Errors are the token endpoint's error codes (RFC 6749 §5.2).
var rfc6749Errors = map[string]bool{"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true}

type oauthError struct {
	status int
	code   string
}

func (e *oauthError) Error() string {
	if e.status == http.StatusOK {
		return "the answer is an error: " + e.code
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.code)
}

// ParseResponse reads a token endpoint's answer: a 200 with a JSON object
// holding access_token, a bearer token_type (or none) and expires_in as a
// number or a numeric string (or none). Anything else is an error that
// names the OAuth error and never a token.
func ParseResponse(status int, body []byte) (*Response, error) {
	var m map[string]any
	jsonErr := json.Unmarshal(bytes.TrimSpace(body), &m)
	code := ""
	if jsonErr == nil {
		if e, ok := m["error"].(string); ok {
			code = e
		}
	}
	switch {
	case code != "":
		return nil, &oauthError{status, shorten(code)}
	case status != http.StatusOK:
		return nil, &oauthError{status, http.StatusText(status)}
	case jsonErr != nil:
		return nil, errors.New("the answer is not JSON (an HTML error page?)")
	}
	r := &Response{}
	var ok bool
	if r.AccessToken, ok = m["access_token"].(string); !ok || r.AccessToken == "" {
		return nil, errors.New("the answer has no access_token")
	}
	if v, present := m["refresh_token"]; present {
		if r.RefreshToken, ok = v.(string); !ok {
			return nil, errors.New("refresh_token is not a string")
		}
	}
	if v, present := m["token_type"]; present {
		r.TokenType, _ = v.(string)
		if !strings.EqualFold(r.TokenType, "bearer") {
			return nil, fmt.Errorf("token_type %q: only bearer tokens are supported", shorten(r.TokenType))
		}
	}
	r.Scope, _ = m["scope"].(string)
	if v, ok := m["refresh_expires_in"].(float64); ok && v > 0 {
		r.RefreshExpiresIn = v
	}
	switch v := m["expires_in"].(type) {
	case nil:
	case float64:
		r.ExpiresIn = v
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("expires_in %q is not a number", shorten(v))
		}
		r.ExpiresIn = f
	default:
		return nil, errors.New("expires_in is not a number")
	}
	if !(r.ExpiresIn > 0) { // negative, or "NaN"
		r.ExpiresIn = 0
	}
	return r, nil
}

func shorten(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
