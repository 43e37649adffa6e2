package oauth2_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/modrun/modrun/internal/oauth2"
)

func TestParseResponse(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   string // error text; "" means ok
	}{
		{200, `{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt"}`, ""},
		{200, `{"access_token":"at","expires_in":"3600"}`, ""},
		{200, `{"access_token":"at"}`, ""},
		{500, `oops`, "HTTP 500: Internal Server Error"},
		{200, `<html>hi</html>`, "not JSON"},
		{200, `{"token_type":"bearer"}`, "no access_token"},
		{200, `{"access_token":"at","expires_in":"soon"}`, `expires_in "soon" is not a number`},
		{200, `{"access_token":"at","token_type":"mac"}`, `token_type "mac"`},
		{200, `{"error":"invalid_scope"}`, "invalid_scope"},
		{401, `{"error":"invalid_client","error_description":"x"}`, "HTTP 401: invalid_client"},
		{200, `{"access_token":"at","refresh_token":7}`, "refresh_token is not a string"},
	} {
		r, err := oauth2.ParseResponse(c.status, []byte(c.body))
		switch {
		case c.want == "" && (err != nil || r.AccessToken != "at"):
			t.Errorf("%d %s: %v", c.status, c.body, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%d %s: err = %v, want %q", c.status, c.body, err, c.want)
		}
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{`{"access_token":"at","expires_in":1}`, `{"error":"x"}`, `[]`, `{"access_token":1}`, `{"access_token":"a","expires_in":"1e309"}`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := oauth2.ParseResponse(status, body)
		if err == nil && (r.AccessToken == "" || status != http.StatusOK || r.ExpiresIn < 0) {
			t.Fatalf("accepted %d %q: %+v", status, body, r)
		}
	})
}
