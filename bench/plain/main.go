// Command plain is the baseline of bench/: the seed's refresh flow in
// plain Go — read the token from a map, POST it with net/http, decode the
// JSON with encoding/json, write two map entries — measured by the same
// harness as runner bench and printing the same JSON.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	"github.com/modrun/modrun/internal/benchrun"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:9900", "token server base URL")
	var opts benchrun.Options
	flag.IntVar(&opts.Runs, "n", 20000, "runs")
	flag.IntVar(&opts.Concurrency, "c", 64, "concurrency")
	flag.IntVar(&opts.Warmup, "warmup", 10, "warmup runs per worker")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()

	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: t}
	res, err := benchrun.Run(context.Background(), opts, func(int) (func(context.Context) error, error) {
		var mu sync.Mutex
		store := map[string]any{}
		return func(ctx context.Context) error {
			mu.Lock()
			rt, _ := store["refreshtoken"].(string)
			mu.Unlock()
			if rt == "" {
				rt = "rt-0"
			}
			body, _ := json.Marshal(map[string]string{"refresh_token": rt})
			req, _ := http.NewRequestWithContext(ctx, "POST", *url+"/api/user/token-refresh/", bytes.NewReader(body))
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				io.Copy(io.Discard, resp.Body)
				return fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			var tok struct {
				AccessToken  string  `json:"access_token"`
				RefreshToken string  `json:"refresh_token"`
				ExpiresIn    float64 `json:"expires_in"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
				return err
			}
			mu.Lock()
			store["accesstoken"] = tok.AccessToken
			store["refreshtoken"] = tok.RefreshToken
			mu.Unlock()
			return nil
		}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	res.Print(os.Stdout, *asJSON)
}
