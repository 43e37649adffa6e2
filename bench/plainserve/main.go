// Command plainserve is the plain Go baseline of bench/'s serve row: an
// HTTP server that, per request, does the refresh flow by hand — read the
// token from a map, POST it to the token server, decode the JSON, store
// two map entries — and answers with expires_in.
//
//	plainserve -addr 127.0.0.1:0 -url http://TOKEN-SERVER   (prints "serving on http://ADDR")
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	url := flag.String("url", "http://127.0.0.1:9900", "token server base URL")
	flag.Parse()
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: t}
	var mu sync.Mutex
	store := map[string]string{}
	h := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		rt := store["refreshtoken"]
		mu.Unlock()
		if rt == "" {
			rt = "rt-0"
		}
		body, _ := json.Marshal(map[string]string{"refresh_token": rt})
		req, _ := http.NewRequestWithContext(r.Context(), "POST", *url+"/api/user/token-refresh/", bytes.NewReader(body))
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken  string  `json:"access_token"`
			RefreshToken string  `json:"refresh_token"`
			ExpiresIn    float64 `json:"expires_in"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 {
			http.Error(w, "token server failed", 500)
			return
		}
		mu.Lock()
		store["accesstoken"], store["refreshtoken"] = tok.AccessToken, tok.RefreshToken
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"result": tok.ExpiresIn})
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("serving on http://%s\n", l.Addr())
	log.Fatal(http.Serve(l, http.HandlerFunc(h)))
}
