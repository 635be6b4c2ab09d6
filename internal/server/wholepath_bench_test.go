package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/tokens"
)

// BenchmarkWholePath is one request through everything a proxied request
// costs, over real loopback TCP: a keep-alive client, the net/http server
// reading the request, the handler, the transport to a real upstream and
// back. "bare" is benchtool's baseline (httputil.ReverseProxy with Rewrite
// = SetURL + SetXForwarded on proxy.NewTransport); the gateway rows run the
// App as `authgateway serve` does (event log through a LogWriter, metrics
// on). The client's and the upstream's allocations are in every row (bare
// is sent the RS256 row's request and forwards its Authorization header),
// so a row's difference to bare is what the gateway adds, including what
// the upstream spends reading the headers the gateway adds.
func BenchmarkWholePath(b *testing.B) {
	up := wholePathServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	upURL, _ := url.Parse(up)
	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upURL)
			pr.SetXForwarded()
		},
		Transport: proxy.NewTransport(proxy.TransportOptions{}),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	hs := wholePathApp(b, "HS256", up)
	rs := wholePathApp(b, "RS256", up)
	hsTok, _, _, _ := hs.Issuer().Access(tokens.AccessClaims{Subject: "alice", Roles: []string{"admin"}})
	rsTok, _, _, _ := rs.Issuer().Access(tokens.AccessClaims{Subject: "alice", Roles: []string{"admin"}})
	for _, tc := range []struct {
		name, path, token string
		h                 http.Handler
	}{
		{"bare", "/api/x", rsTok, bare}, // the same request as gateway-jwt-rs256
		{"gateway-public", "/pub/x", "", hs},
		{"gateway-jwt-hs256", "/api/x", hsTok, hs},
		{"gateway-jwt-rs256", "/api/x", rsTok, rs},
	} {
		b.Run(tc.name, func(b *testing.B) {
			base := wholePathServer(b, tc.h)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
			defer client.CloseIdleConnections()
			req, err := http.NewRequest("GET", base+tc.path, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("User-Agent", "bench/1")
			req.Header.Set("Accept", "*/*")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			do := func() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.StatusCode)
				}
			}
			do() // the connections are open before the clock starts
			b.ReportAllocs()
			for b.Loop() {
				do()
			}
		})
	}
}

// wholePathServer serves h on a loopback port with the main listener's
// settings, until the benchmark ends, and returns its base URL.
func wholePathServer(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 32 << 10, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// wholePathApp builds the App as the serve command does (auth events as
// JSON lines through a LogWriter to a discarding sink) with a jwt route
// /api whose tokens the App's issuer signs with alg, and a public route.
func wholePathApp(tb testing.TB, alg, upstream string) *App {
	tb.Helper()
	dir := tb.TempDir()
	key := filepath.Join(dir, "k")
	field := "secret_file"
	content := []byte(strings.Repeat("k", 40))
	if alg == "RS256" {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			tb.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		field, content = "private_key_file", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err := os.WriteFile(key, content, 0o600); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	y := `server: {listen: "127.0.0.1:0", admin_listen: ""}
tokens:
  issuer: i
  audience: a
  signing_keys: [{kid: k, algorithm: ` + alg + `, ` + field + `: ` + key + `}]
strategies:
  jwt: {type: jwt, issuer: i, audience: a, algorithms: [` + alg + `], keys: tokens}
routes:
  - {name: api, path: /api, upstream: "` + upstream + `", strategies: [jwt]}
  - {name: pub, path: /pub, upstream: "` + upstream + `", public: true}
`
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	lw := NewLogWriter(io.Discard)
	app, err := Build(context.Background(), cfg, NewLogger(cfg.Log, lw), WithEventLog(lw))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { app.Close(); _ = lw.Close() })
	return app
}
