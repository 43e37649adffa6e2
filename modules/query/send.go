// Sending a bound request: OAuth2 (a 401 refreshes once), retries of
// what is safe to send again, the body read within its limit, and
// errors that say what failed.

package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/tracing"
)

// Send implements engine.Request. With retry:, a response whose status is
// listed, or a request that never reached the server, is tried again
// after an exponential backoff with jitter (or the server's Retry-After),
// never past ctx's deadline. A request that may have reached the server
// (a timeout, a dropped connection) is tried again only if its method is
// idempotent: a token request must never be spent twice.
func (r *request) Send(ctx context.Context) (*engine.Response, error) {
	if r.tokens != nil {
		return r.sendOAuth2(ctx)
	}
	return r.sendRetrying(ctx)
}

// sendOAuth2 sends with the credential's token, got or refreshed first if
// needed; on an answer that says the token expired (a 401, or the
// credential's expiryStatus or expiryMatch) it refreshes once (unless a
// concurrent run already replaced the token it used) and tries once more.
func (r *request) sendOAuth2(ctx context.Context) (*engine.Response, error) {
	tok, err := r.tokens.Token(ctx, r.spec, "")
	if err != nil {
		return nil, &engine.ResponseError{Module: r.m.name, Cause: err.Error(), Err: err}
	}
	r.header.Set("Authorization", "Bearer "+tok)
	resp, err := r.sendRetrying(ctx)
	got := resp
	var re *engine.ResponseError
	if errors.As(err, &re) {
		got = re.Response
	}
	if got == nil || !r.spec.Expired(got.StatusCode, func(path string) (string, bool) {
		if got.Kind != engine.BodyJSON {
			return "", false
		}
		v := gjson.GetBytes(got.Body, path)
		return v.String(), v.Exists()
	}) {
		return resp, err
	}
	fresh, terr := r.tokens.Token(ctx, r.spec, tok)
	if terr != nil {
		return nil, &engine.ResponseError{Module: r.m.name, Cause: terr.Error(), Err: terr}
	}
	r.header.Set("Authorization", "Bearer "+fresh)
	return r.sendRetrying(ctx)
}

func (r *request) sendRetrying(ctx context.Context) (*engine.Response, error) {
	rt := r.m.retry
	if rt == nil {
		return r.send(ctx)
	}
	for attempt := 1; ; attempt++ {
		resp, err := r.send(ctx)
		if err == nil || attempt >= rt.attempts {
			return resp, retried(err, attempt)
		}
		var re *engine.ResponseError
		errors.As(err, &re)
		wait, ok := rt.next(r.m.method, re, attempt)
		if !ok {
			return resp, retried(err, attempt)
		}
		if deadline, has := ctx.Deadline(); has && time.Until(deadline) < wait {
			return resp, retried(err, attempt) // the wait would outlast the call
		}
		if r.log != nil {
			// At info: an operator sees an API flapping before it fails.
			r.log.InfoContext(ctx, "query failed; retrying", "module", r.m.name, "attempt", attempt, "of", rt.attempts,
				"wait", wait.Round(time.Millisecond).String(), "cause", re.Cause)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, retried(err, attempt)
		case <-t.C:
		}
	}
}

// retried notes in err how many attempts were made, if more than one.
func retried(err error, attempts int) error {
	var re *engine.ResponseError
	if attempts > 1 && errors.As(err, &re) {
		c := *re
		c.Cause = fmt.Sprintf("%s (after %d attempts)", re.Cause, attempts)
		return &c
	}
	return err
}

// retry is a query's retry: policy.
type retry struct {
	attempts int
	backoff  time.Duration
	on       map[int]bool
}

// maxRetryWait caps one wait between attempts, Retry-After included.
const maxRetryWait = 30 * time.Second

// next reports whether the failure re of attempt n (1-based) is worth
// another try, and how long to wait first.
func (rt *retry) next(method string, re *engine.ResponseError, n int) (time.Duration, bool) {
	if re == nil {
		return 0, false
	}
	if resp := re.Response; resp != nil {
		if !rt.on[resp.StatusCode] {
			return 0, false
		}
		if after, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			return after, true
		}
	} else if !neverSent(re.Err) && !idempotent[method] {
		return 0, false
	}
	// Exponential, with full jitter in its upper half: backoff × 2^(n-1).
	d := rt.backoff << (n - 1)
	d = d/2 + mrand.N(d/2+1)
	return min(d, maxRetryWait), true
}

var idempotent = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodOptions: true, http.MethodPut: true, http.MethodDelete: true}

// neverSent reports whether err means the request did not reach the
// server: the connection was refused or could not be made.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryAfter parses a Retry-After header, seconds or an HTTP date, as a
// wait of at most maxRetryWait.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		// Capped before it becomes a Duration: 10^10 s overflows one.
		return time.Duration(min(s, int(maxRetryWait/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(0, time.Until(t)), maxRetryWait), true
	}
	return 0, false
}

// send makes one attempt.
func (r *request) send(ctx context.Context) (*engine.Response, error) {
	m := r.m
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout, errTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	// The URL is already parsed: hand it over rather than print and
	// parse it again.
	req, err := http.NewRequestWithContext(ctx, m.method, "", body)
	if err != nil {
		return nil, &engine.ResponseError{Module: m.name, Cause: "bad request: " + err.Error()}
	}
	req.URL, req.Host = r.url, r.url.Host
	// A bound request may be sent more than once (retry:): each attempt
	// gets its own copy of the headers, which redirects edit.
	req.Header = r.header
	if m.retry != nil {
		req.Header = r.header.Clone()
	}
	end := tracing.StartClient(req, m.span, attribute.String("modrun.module", m.name))
	start := time.Now()
	resp, err := m.client.Do(req)
	if err != nil {
		end(0, err)
		return nil, m.transportError(ctx, r.url, err)
	}
	end(resp.StatusCode, nil)
	defer resp.Body.Close()
	data, err := readBody(resp, m.maxBytes)
	if err != nil {
		return nil, m.transportError(ctx, r.url, err)
	}
	out := &engine.Response{
		StatusCode: resp.StatusCode,
		Header:     resp.Header,
		Body:       data,
		Duration:   time.Since(start),
	}
	if int64(len(data)) > m.maxBytes {
		out.Body = nil
		return nil, &engine.ResponseError{Module: m.name, Response: out,
			Cause: fmt.Sprintf("response from %s is larger than %d bytes (raise maxResponseBytes)", r.url.Host, m.maxBytes)}
	}
	out.Kind = bodyKind(resp.Header.Get("Content-Type"), data)
	if !out.Success() {
		return nil, &engine.ResponseError{Module: m.name, Response: out, Cause: statusCause(out)}
	}
	return out, nil
}

// readBody reads up to max+1 bytes of resp's body: one more than max
// tells the caller it was too large. Memory follows what has arrived, not
// what the server announced: a buffer of the announced length is taken
// only up to preallocMax (a lying Content-Length of 5 GB must not
// allocate 5 GB); past that the buffer grows as data comes.
func readBody(resp *http.Response, max int64) ([]byte, error) {
	n := resp.ContentLength
	if n < 0 || n > max || n > preallocMax {
		return io.ReadAll(io.LimitReader(resp.Body, max+1))
	}
	// net/http stops a body at its Content-Length, and reports a shorter
	// one as io.ErrUnexpectedEOF.
	data := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, data); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return data, nil
}

// preallocMax is the largest announced body read into a buffer of its
// size up front.
const preallocMax = 1 << 20

// transportError names the module, the method and the host, and the
// cause; never the URL's path or query, which may carry tokens.
func (m *Module) transportError(ctx context.Context, u *url.URL, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	where := m.method + " " + u.Host
	var ne net.Error
	switch {
	case context.Cause(ctx) == errTimeout:
		return &engine.ResponseError{Module: m.name, Err: context.DeadlineExceeded,
			Cause: fmt.Sprintf("%s: timeout after %s", where, m.timeout)}
	case ctx.Err() != nil:
		return &engine.ResponseError{Module: m.name, Err: ctx.Err(), Cause: fmt.Sprintf("%s: %v", where, context.Cause(ctx))}
	case errors.As(err, &ne) && ne.Timeout():
		return &engine.ResponseError{Module: m.name, Err: err, Cause: fmt.Sprintf("%s: timeout after %s", where, m.timeout)}
	}
	return &engine.ResponseError{Module: m.name, Err: err, Cause: fmt.Sprintf("%s: %v", where, err)}
}

// errTimeout is the cause of a request's context when the module's own
// timeout ends it, as opposed to the run's deadline.
var errTimeout = errors.New("query timeout")

// statusCause is "HTTP 400: invalid_grant": the status and a short cause
// taken from a JSON error body (OAuth's "error", or "message").
func statusCause(r *engine.Response) string {
	cause := ""
	if r.Kind == engine.BodyJSON {
		for _, p := range []string{"error", "error.message", "message", "error.code"} {
			if v := gjson.GetBytes(r.Body, p); v.Type == gjson.String && v.Str != "" {
				cause = v.Str
				break
			}
		}
	}
	if cause == "" {
		cause = http.StatusText(r.StatusCode)
	}
	if len(cause) > 200 {
		cause = cause[:200] + "…"
	}
	return fmt.Sprintf("HTTP %d: %s", r.StatusCode, cause)
}

// bodyKind tells how a response body reads: JSON, text or bytes.
func bodyKind(contentType string, data []byte) engine.BodyKind {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		if len(data) == 0 || gjson.ValidBytes(data) {
			return engine.BodyJSON
		}
		return engine.BodyText
	case mt == "" || strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "xml") ||
		mt == "application/javascript" || mt == "application/x-www-form-urlencoded":
		if utf8.Valid(data) {
			return engine.BodyText
		}
	}
	if utf8.Valid(data) && !bytes.ContainsRune(data, 0) && !strings.HasPrefix(mt, "image/") && mt != "application/octet-stream" {
		return engine.BodyText
	}
	return engine.BodyBinary
}
