package query_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/query"
)

func ExampleKind_Compile() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"got": %s}`, body)
	}))
	defer srv.Close()

	mod, err := query.NewKind().Compile(engine.Source{
		Name: "refreshAPI", Path: "refreshAPI.query.yaml",
		Data: []byte("method: POST\nurl: <<inputs.baseUrl>>/token\nbody:\n  json: {refresh_token: <<this.params.rt>>}\n"),
		Pkg:  &engine.PackageInfo{Inputs: map[string]engine.Input{"baseUrl": {}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	req, _ := mod.(engine.Query).Bind(scope{Inputs: map[string]any{"baseUrl": srv.URL}}, map[string]any{"rt": `quote " inside`})
	resp, _ := req.Send(context.Background())
	fmt.Println(resp.StatusCode, string(resp.Body))
	// Output: 200 {"got": {"refresh_token":"quote \" inside"}}
}
