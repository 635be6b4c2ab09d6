package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	"github.com/authgateway/authgateway/internal/proxy"
)

// upstreamBody is the fixed response of the bench upstream: about 100 bytes,
// the size of a small JSON API answer, so the proxies' own work dominates.
const upstreamBody = `{"ok":true,"service":"bench-upstream","items":[1,2,3],"note":"fixed body for the load harness"}` + "\n"

// otlpTracesPath is where the upstream takes OTLP/HTTP spans.
const otlpTracesPath = "/v1/traces"

func cmdUpstream(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	length := strconv.Itoa(len(upstreamBody))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Drain a request body so keep-alive survives POST scenarios.
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == otlpTracesPath {
			// The tracing scenarios' collector: spans read and discarded
			// (an empty ExportTraceServiceResponse), so what is measured
			// is the gateway's side of tracing.
			w.Header()["Content-Type"] = []string{"application/x-protobuf"}
			return
		}
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{length}
		_, _ = io.WriteString(w, upstreamBody)
	})
	return serve(ctx, *addr, h)
}

// cmdBareProxy is the baseline: the smallest correct httputil.ReverseProxy
// (Rewrite with SetURL and SetXForwarded) on the gateway's own transport, so
// the difference to the gateway is the gateway's work and nothing else.
func cmdBareProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	up := fs.String("upstream", "", "upstream base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*up)
	if err != nil || target.Scheme == "" || target.Host == "" {
		return fmt.Errorf("bad -upstream %q", *up)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: proxy.NewTransport(proxy.TransportOptions{}),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	return serve(ctx, *addr, rp)
}

// serve runs h with the same server limits the gateway uses until ctx ends.
func serve(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return nil
	}
}
