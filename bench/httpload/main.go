// Command httpload is the client of bench/'s serve rows: it POSTs one body
// to a URL at a concurrency over keep-alive connections, measured by the
// same harness as runner bench, and prints the same JSON.
//
//	httpload -url http://127.0.0.1:8787/v1/run/bench-refresh/auth.refresh -token T -n 20000 -c 64 -json
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"

	"github.com/modrun/modrun/internal/benchrun"
)

func main() {
	url := flag.String("url", "", "URL to POST to")
	token := flag.String("token", "", "bearer token, if any")
	body := flag.String("body", `{"args": []}`, "request body")
	var opts benchrun.Options
	flag.IntVar(&opts.Runs, "n", 20000, "requests")
	flag.IntVar(&opts.Concurrency, "c", 64, "concurrency")
	flag.IntVar(&opts.Warmup, "warmup", 10, "warmup requests per worker")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 1024
	client := &http.Client{Transport: t}
	res, err := benchrun.Run(context.Background(), opts, func(int) (func(context.Context) error, error) {
		return func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, "POST", *url, strings.NewReader(*body))
			req.Header.Set("Content-Type", "application/json")
			if *token != "" {
				req.Header.Set("Authorization", "Bearer "+*token)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, data)
			}
			return nil
		}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	res.Print(os.Stdout, *asJSON)
}
