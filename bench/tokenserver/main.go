// Command tokenserver answers the refresh endpoint on loopback with a
// fixed token pair: the server side of the benchmarks in bench/.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9900", "listen address (loopback)")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(`{"access_token":"at-0123456789abcdef","refresh_token":"rt-0123456789abcdef","token_type":"Bearer","expires_in":3600}`)
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})))
}
