// Command demo-upstream is a tiny HTTP service for trying the gateway: it
// answers every request with JSON describing what it received (method, path,
// query and headers), so you can see exactly which identity headers the
// gateway injected and which it stripped.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	name := flag.String("name", "demo-upstream", "name reported in responses")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers := map[string]string{}
		for k, v := range r.Header {
			headers[k] = v[0]
			for _, more := range v[1:] {
				headers[k] += ", " + more
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{
			"service": *name,
			"method":  r.Method,
			"path":    r.URL.EscapedPath(),
			"query":   r.URL.RawQuery,
			"headers": headers,
		})
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("demo-upstream listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}
