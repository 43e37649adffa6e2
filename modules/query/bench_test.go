package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func tokenHandler(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"access_token":"at-1","refresh_token":"rt-2","expires_in":3600}`))
}

// BenchmarkQuery compares a query module (bind + send + read) with the same
// request made with plain net/http, in one run: compare the ns/op of the
// two sub-benchmarks (target: module ≤ 1.15× plain).
func BenchmarkQuery(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(tokenHandler))
	defer srv.Close()
	sc := scope{Inputs: map[string]any{"baseUrl": srv.URL}, Store: map[string]any{"refreshtoken": "rt-1"}}
	m := compile(b, "refreshAPI", `method: POST
url: <<inputs.baseUrl>>/api/user/token-refresh/
headers: {Accept: application/json}
body:
  json: {refresh_token: <<appsmith.store.refreshtoken>>}
`)
	ctx := context.Background()
	b.Run("module", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			req, err := m.Bind(sc, nil)
			if err != nil {
				b.Fatal(err)
			}
			resp, err := req.Send(ctx)
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(err)
			}
		}
	})
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	b.Run("plain", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			body, _ := json.Marshal(map[string]string{"refresh_token": "rt-1"})
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/user/token-refresh/", bytes.NewReader(body))
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !json.Valid(data) {
				b.Fatal("bad response")
			}
		}
	})
}
