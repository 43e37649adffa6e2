package oauth2

import (
	"errors"
	"fmt"
	"testing"
)

// TestFailureReason: a failed token request's reason is a label of a
// small, fixed set — the server's free text never becomes one.
func TestFailureReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&oauthError{400, "invalid_grant"}, "invalid_grant"},
		{fmt.Errorf("wrapped: %w", &oauthError{401, "invalid_client"}), "invalid_client"},
		{&oauthError{400, "some vendor's own error text"}, "http_4xx"},
		{&oauthError{503, "Service Unavailable"}, "http_5xx"},
		{&oauthError{429, "Too Many Requests"}, "http_429"},
		{&oauthError{200, "TOKEN_EXPIRED"}, "other"},
		{&transientError{err: errors.New("dial tcp: connection refused")}, "network"},
		{errors.New("anything else"), "other"},
	} {
		if got := FailureReason(c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
}
