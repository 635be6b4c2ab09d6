package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcUpstream is a real gRPC server (the standard health service) that
// records the metadata of every call it serves.
type grpcUpstream struct {
	addr string
	mu   sync.Mutex
	seen []metadata.MD
}

func startGRPCUpstream(t *testing.T, creds credentials.TransportCredentials) *grpcUpstream {
	t.Helper()
	u := &grpcUpstream{}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		u.mu.Lock()
		u.seen = append(u.seen, md.Copy())
		u.mu.Unlock()
		// A trailer of the app's own, which must reach the client.
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-app-trailer", "kept"))
		return h(ctx, req)
	})}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return u
}

func (u *grpcUpstream) calls() []metadata.MD {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]metadata.MD(nil), u.seen...)
}

// TestGRPC calls a real gRPC server through the binary's TLS listener
// (HTTP/2 by ALPN) to h2c:// and https:// (h2 by ALPN) upstreams: the call
// succeeds with the identity in its metadata and the app's trailers; a
// call that fails authentication or authorization gets a gRPC status, never
// a JSON body.
func TestGRPC(t *testing.T) {
	pki := newTestPKI(t)
	gwCert, gwCertFile, gwKeyFile := pki.issue(t, "gateway.test", false)
	_ = gwCert
	upCert, _, _ := pki.issue(t, "orders.internal", false)
	h2cUp := startGRPCUpstream(t, nil)
	tlsUp := startGRPCUpstream(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{upCert}}))

	cfg := `server:
  tls: {cert_file: GWCERT, key_file: GWKEY}
` + userJWTConfig + `rate_limits:
  auth_failures: {limit: 100000, period: 1m}
routes:
  - name: grpc-h2c
    path: /grpc.health.v1.Health/Check
    upstream: h2c://H2C
    strategies: [userJwt]
    roles: [orders]
  - name: grpc-tls
    path: /grpc.health.v1.Health/Watch
    upstream: https://TLSUP/
    upstream_tls: {ca_file: CA, server_name: orders.internal}
    strategies: [userJwt]
`
	cfg = strings.NewReplacer("GWCERT", gwCertFile, "GWKEY", gwKeyFile, "H2C", h2cUp.addr, "TLSUP", tlsUp.addr, "CA", pki.CAFile).Replace(cfg)
	g := startGateway(t, cfg, map[string]string{"ACCESS_SECRET": randomSecret(t)})
	good := g.Token(t, "-sub", "alice", "-roles", "orders")
	noRole := g.Token(t, "-sub", "mallory")

	conn, err := grpc.NewClient(g.Addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pki.pool, ServerName: "gateway.test"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	call := func(tok string) (*healthpb.HealthCheckResponse, metadata.MD, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if tok != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
		}
		var trailer metadata.MD
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "orders"}, grpc.Trailer(&trailer))
		return resp, trailer, err
	}

	t.Run("authenticated call to an h2c upstream", func(t *testing.T) {
		resp, trailer, err := call(good)
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check: %v, %v", resp, err)
		}
		if got := trailer.Get("x-app-trailer"); len(got) != 1 || got[0] != "kept" {
			t.Errorf("trailer x-app-trailer = %q, want the app's", got)
		}
		seen := h2cUp.calls()
		if len(seen) != 1 {
			t.Fatalf("upstream served %d calls, want 1", len(seen))
		}
		md := seen[0]
		if s := md.Get("x-auth-subject"); len(s) != 1 || s[0] != "alice" {
			t.Errorf("upstream saw x-auth-subject %q", s)
		}
		if a := md.Get("authorization"); len(a) != 0 {
			t.Errorf("upstream saw the credential: authorization %q", a)
		}
	})

	for _, tc := range []struct {
		name, tok string
		code      codes.Code
	}{
		{"no token: Unauthenticated", "", codes.Unauthenticated},
		{"bad token: Unauthenticated", good + "x", codes.Unauthenticated},
		{"missing role: PermissionDenied", noRole, codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h2cUp.calls())
			_, _, err := call(tc.tok)
			st, _ := status.FromError(err)
			if st.Code() != tc.code {
				t.Fatalf("code %v (%v), want %v", st.Code(), err, tc.code)
			}
			if strings.Contains(st.Message(), "Bearer") || strings.Contains(st.Message(), "{") {
				t.Errorf("grpc-message %q", st.Message())
			}
			if len(h2cUp.calls()) != before {
				t.Error("the refused call reached the upstream")
			}
		})
	}

	t.Run("server stream from an https upstream, h2 by ALPN", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+noRole)
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "orders"})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := stream.Recv()
		if err != nil || msg.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Watch: %v, %v", msg, err)
		}
	})

	t.Run("a gRPC client never gets a JSON body", func(t *testing.T) {
		for _, tc := range []struct{ path, tok, code string }{
			{"/grpc.health.v1.Health/Check", "", "16"},
			{"/grpc.health.v1.Health/Check", noRole, "7"},
			{"/nowhere/Check", good, "12"},
		} {
			r := h2Do(t, g.Addr, pki, tc.path, tc.tok, grpcFrame(nil))
			if r.status != 200 || r.header.Get("Content-Type") != "application/grpc" || r.header.Get("Grpc-Status") != tc.code || len(r.body) != 0 {
				t.Errorf("%s: %d %v body %q, want 200 application/grpc grpc-status %s and no body", tc.path, r.status, r.header, r.body, tc.code)
			}
		}
	})

	t.Run("Upgrade: h2c is still never honoured", func(t *testing.T) {
		// On the TLS listener h2 is negotiated by ALPN only; an HTTP/1.1
		// request asking to upgrade to h2c goes on as HTTP/1.1.
		conn, err := tls.Dial("tcp", g.Addr, &tls.Config{RootCAs: pki.pool, ServerName: "gateway.test", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r, err := exchange(conn, req("GET", "/grpc.health.v1.Health/Check", bearer(good), "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == http.StatusSwitchingProtocols {
			t.Fatalf("the gateway switched to h2c")
		}
	})
}

// grpcFrame is one uncompressed gRPC message.
func grpcFrame(msg []byte) []byte {
	n := len(msg)
	return append([]byte{0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, msg...)
}

type h2Response struct {
	status          int
	header, trailer http.Header
	body            []byte
}

// h2Do sends one gRPC-shaped POST over HTTP/2 to the gateway's TLS listener.
func h2Do(t *testing.T, addr string, pki *testPKI, path, tok string, body []byte) h2Response {
	t.Helper()
	var only2 http.Protocols
	only2.SetHTTP2(true)
	tr := &http.Transport{Protocols: &only2, ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: pki.pool, ServerName: "gateway.test"}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", "https://"+addr+path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("h2 %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
	}
	return h2Response{status: resp.StatusCode, header: resp.Header, trailer: resp.Trailer, body: b}
}
