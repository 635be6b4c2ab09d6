package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// The gateway configurations of the attack suite. Placeholders in capitals
// are replaced with the suite's files, upstreams and ports.

// atkMainConfig: the first signing key is RS256 (identity_token needs an
// asymmetric key), an HS256 key sits beside it and the strategy accepts both
// algorithms — the setting in which algorithm confusion would be possible if
// keys were not pinned to their algorithm. read_header_timeout is short for
// the slowloris row; max_header_bytes is low enough to reach cheaply but
// above the 8 KB token limit, so both limits can be hit separately.
const atkMainConfig = `
server:
  read_header_timeout: 1s
  max_header_bytes: 16384
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  access_ttl: 15m
  signing_keys:
    - {kid: rs-1, algorithm: RS256, private_key_file: RS_PEM}
    - kid: hs-1
      algorithm: HS256
      secret: ${ACCESS_SECRET}
strategies:
  userJwt:
    type: jwt
    issuer: e2e.issuer
    audience: e2e.audience
    algorithms: [RS256, HS256]
    keys: tokens
  machineKey:
    type: api_key
    header: X-API-Key
    prefixes: [pk_e2e]
    store: file
    file: KEYS_FILE
routes:
  - name: admin
    path: /api/admin
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [admin]
  - name: api
    path: /api
    upstream: UPSTREAM
    strategies: [userJwt]
  - name: machine
    path: /machine
    upstream: UPSTREAM
    strategies: [machineKey]
  # The assertion's aud is the route name. Naming the route after the
  # access-token audience is the worst case: only the assertion's typ and
  # type claim keep it from being accepted as an access token.
  - name: e2e.audience
    path: /asserted
    upstream: UPSTREAM
    strategies: [userJwt]
    identity_token: true
  - name: app
    path: /app
    upstream: UPSTREAM
    strategies: [userJwt]
    methods: [GET, POST]
    cors:
      allowed_origins: ["https://app.example.com"]
      allowed_headers: [Authorization, Content-Type]
      exposed_headers: [X-Request-Id]
      allow_credentials: true
      max_age: 5m
  - name: ws
    path: /ws
    upstream: WS_UPSTREAM
    strategies: [userJwt]
  - name: upload
    path: /upload
    upstream: UPSTREAM
    public: true
    max_body_bytes: 1024
  - name: public
    path: /public
    upstream: UPSTREAM
    public: true
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
audit:
  output: AUDIT_FILE
`

const atkTLSConfig = `
server:
  tls: {cert_file: CERT_FILE, key_file: KEY_FILE, redirect_http: "REDIRECT_ADDR", hsts: true, min_version: "1.2"}
routes:
  - name: site
    path: /
    upstream: UPSTREAM
    public: true
`

// atkProxyConfig: TLS is terminated by a proxy at 127.0.0.2; the tests reach
// the gateway from 127.0.0.2 (trusted) and 127.0.0.1 (not).
const atkProxyConfig = `
server:
  https_only: true
  behind_tls_proxy: true
  trusted_proxies: ["127.0.0.2"]
routes:
  - name: site
    path: /
    upstream: UPSTREAM
    public: true
`

// atkAuthLimitConfig: a low auth-failure limit and the browser-login
// endpoints (/auth/*), whose provider is never reached by these rows.
const atkAuthLimitConfig = `
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  signing_keys:
    - kid: hs-1
      algorithm: HS256
      secret: ${ACCESS_SECRET}
strategies:
  userJwt:
    type: jwt
    issuer: e2e.issuer
    audience: e2e.audience
    algorithms: [HS256]
    keys: tokens
  sso:
    type: oauth2
    issuer_url: http://127.0.0.1:1
    client_id: gateway
    client_secret: ${SSO_SECRET}
    redirect_url: http://gateway.test/auth/callback
    login: true
routes:
  - name: api
    path: /api
    upstream: UPSTREAM
    strategies: [userJwt]
  - name: public
    path: /public
    upstream: UPSTREAM
    public: true
rate_limits:
  auth_failures: {limit: 3, period: 1m}
`

// atkRotationConfig is rewritten by the rotation row: SIGNING_KEYS is the
// list of signing keys of each step.
const atkRotationConfig = `
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  signing_keys:
SIGNING_KEYS
strategies:
  userJwt:
    type: jwt
    issuer: e2e.issuer
    audience: e2e.audience
    algorithms: [HS256]
    keys: tokens
routes:
  - name: api
    path: /api
    upstream: UPSTREAM
    strategies: [userJwt]
`

// The signing keys of the rotation steps.
const (
	rotOldKey = "    - kid: old\n      algorithm: HS256\n      secret: ${OLD_SECRET}\n"
	rotNewKey = "    - kid: new\n      algorithm: HS256\n      secret: ${NEW_SECRET}\n"
)

// How a row reaches a gateway: the "setup" column of the attack table.
const (
	viaMain         = "main"
	viaTLS12        = "tls, TLS 1.2 client"
	viaTLSPlain     = "tls, plain TCP to the TLS port"
	viaTLSRedirect  = "tls, redirect_http listener"
	viaProxyUntrust = "https_only behind proxy, from untrusted 127.0.0.1"
	viaProxyTrusted = "https_only behind proxy, from trusted 127.0.0.2"
	viaAuthLimit    = "auth_failures limit 3, /auth/* endpoints"
	viaRotation     = "signing keys rotated by reload"
	viaServe        = "authgateway serve on a config of its own"
)

// atkSuite is the running setup of the attack table: three gateways, their
// upstreams, the keys, tokens and credentials the rows use.
type atkSuite struct {
	main, tls, proxy, authLimit, rot *Gateway
	up, wsUp                         *Upstream // main gateway's upstreams
	tlsUp, proxyUp, authLimitUp      *Upstream
	rotUp                            *Upstream
	rotOld, rotNew                   []byte         // HMAC secrets of the rotation gateway
	jku                              *atkHitCounter // the attacker's key server
	rsa                              [3]*rsa.PrivateKey
	hsSecret                         []byte
	apiKey, apiKeyID                 string
	auditPath                        string
	redirectAddr                     string
	tlsPort                          string
	roots                            *x509.CertPool
	attackerCertDER                  []byte

	reader, admin string // RS256 access tokens of rita (reader) and root (admin)
	assertion     string // the X-Auth-Token captured from an upstream (filled by a row)
	secrets       []string
}

func startAttackSuite(t *testing.T) *atkSuite {
	t.Helper()
	s := &atkSuite{rsa: testRSAKeys(t), hsSecret: []byte(randomSecret(t)), jku: newHitCounter(t)}
	dir := t.TempDir()
	s.secrets = append(s.secrets, string(s.hsSecret))

	// main
	s.up, s.wsUp = newUpstream(t, 0), newWSUpstream(t)
	s.auditPath = filepath.Join(dir, "audit.jsonl")
	cfg := strings.NewReplacer(
		"RS_PEM", writePrivatePEM(t, dir, "rs-1.pem", s.rsa[0]),
		"KEYS_FILE", filepath.Join(dir, "api-keys.yaml"),
		"AUDIT_FILE", s.auditPath,
		"WS_UPSTREAM", s.wsUp.URL,
		"UPSTREAM", s.up.URL,
	).Replace(atkMainConfig)
	env := map[string]string{"ACCESS_SECRET": string(s.hsSecret)}
	// The key is created with the real CLI before the gateway starts, so the
	// audit log also holds a key.created event.
	cliCfg := filepath.Join(dir, "cli.yaml")
	if err := os.WriteFile(cliCfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, dir, env, "keys", "create", "-config", cliCfg, "-name", "ci-bot", "-roles", "reader")
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if res.Code != 0 || len(lines) < 2 {
		t.Fatalf("keys create: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	s.apiKey = strings.TrimSpace(lines[len(lines)-1])
	if _, rest, ok := strings.Cut(lines[0], "created key "); ok {
		s.apiKeyID, _, _ = strings.Cut(rest, " ")
	}
	if !strings.HasPrefix(s.apiKey, "pk_e2e_") || s.apiKeyID == "" {
		t.Fatalf("keys create printed %q", res.Stdout)
	}
	// The key, and its random part alone.
	s.secrets = append(s.secrets, s.apiKey, strings.TrimPrefix(s.apiKey, "pk_e2e_"))
	s.main = startGateway(t, cfg, env)

	// tls
	certFile, keyFile := s.writeServerCert(t, dir)
	s.tlsUp = newUpstream(t, 0)
	s.redirectAddr = freePort(t)
	s.tls = startGateway(t, strings.NewReplacer(
		"CERT_FILE", certFile, "KEY_FILE", keyFile, "REDIRECT_ADDR", s.redirectAddr, "UPSTREAM", s.tlsUp.URL,
	).Replace(atkTLSConfig), nil)
	_, s.tlsPort, _ = net.SplitHostPort(s.tls.Addr)

	// https_only behind a TLS proxy
	s.proxyUp = newUpstream(t, 0)
	s.proxy = startGateway(t, strings.ReplaceAll(atkProxyConfig, "UPSTREAM", s.proxyUp.URL), nil)

	// auth-failure limit on /auth/*
	s.authLimitUp = newUpstream(t, 0)
	s.authLimit = startGateway(t, strings.ReplaceAll(atkAuthLimitConfig, "UPSTREAM", s.authLimitUp.URL),
		map[string]string{"ACCESS_SECRET": string(s.hsSecret), "SSO_SECRET": randomSecret(t)})

	// signing-key rotation
	s.rotUp = newUpstream(t, 0)
	s.rotOld, s.rotNew = []byte(randomSecret(t)), []byte(randomSecret(t))
	s.secrets = append(s.secrets, string(s.rotOld), string(s.rotNew))
	s.rot = startGateway(t, s.rotationConfig(rotOldKey), map[string]string{"OLD_SECRET": string(s.rotOld), "NEW_SECRET": string(s.rotNew)})

	s.reader = s.rs(t, header("RS256", "rs-1"), accessClaims("rita", "reader"))
	s.admin = s.rs(t, header("RS256", "rs-1"), accessClaims("root", "admin"))
	s.attackerCertDER = selfSigned(t, s.rsa[2], &s.rsa[2].PublicKey, "attacker")
	return s
}

// keep records a credential the suite sends: the logs must never hold it.
func (s *atkSuite) keep(tok string) string {
	s.secrets = append(s.secrets, tok)
	return tok
}

// rs signs a token with the gateway's real RS256 key rs-1.
func (s *atkSuite) rs(t *testing.T, h, c map[string]any) string {
	t.Helper()
	return s.keep(sign(t, jwt.SigningMethodRS256, s.rsa[0], h, c))
}

// evil signs a token with the attacker's own RSA key.
func (s *atkSuite) evil(t *testing.T, h, c map[string]any) string {
	t.Helper()
	return s.keep(sign(t, jwt.SigningMethodRS256, s.rsa[2], h, c))
}

// attackerJWK is the attacker's public key as a JWK, for an embedded "jwk" header.
func (s *atkSuite) attackerJWK(t *testing.T) map[string]any {
	t.Helper()
	b, err := jose.JSONWebKey{Key: &s.rsa[2].PublicKey, KeyID: "attacker", Algorithm: "RS256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// writeServerCert writes a self-signed ECDSA P-256 certificate for
// gateway.test and 127.0.0.1 and makes it the suite's only trusted root.
func (s *atkSuite) writeServerCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := selfSigned(t, key, &key.PublicKey, "gateway.test")
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	s.roots = x509.NewCertPool()
	s.roots.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// selfSigned returns a DER certificate for name (DNS and, for gateway.test,
// 127.0.0.1) self-signed by priv.
func selfSigned(t *testing.T, priv any, pub any, name string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatalf("creating certificate: %v", err)
	}
	return der
}

// upstreams are every upstream of the suite: a row's "saw" column is what all
// of them together received.
func (s *atkSuite) upstreams() []*Upstream {
	return []*Upstream{s.up, s.wsUp, s.tlsUp, s.proxyUp, s.authLimitUp, s.rotUp}
}

func (s *atkSuite) resetUpstreams() {
	for _, u := range s.upstreams() {
		u.Reset()
	}
}

func (s *atkSuite) seen() []Seen {
	var all []Seen
	for _, u := range s.upstreams() {
		all = append(all, u.Requests()...)
	}
	return all
}

// tlsClient is a client config that trusts only the suite's certificate.
func (s *atkSuite) tlsClient(minV, maxV uint16) *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: "gateway.test", MinVersion: minV, MaxVersion: maxV}
}

// dial connects the way via says.
func (s *atkSuite) dial(via string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	switch via {
	case viaMain:
		return d.Dial("tcp", s.main.Addr)
	case viaTLS12:
		return tls.DialWithDialer(d, "tcp", s.tls.Addr, s.tlsClient(tls.VersionTLS12, tls.VersionTLS12))
	case viaTLSPlain:
		return d.Dial("tcp", s.tls.Addr)
	case viaTLSRedirect:
		return d.Dial("tcp", s.redirectAddr)
	case viaProxyUntrust:
		return d.Dial("tcp", s.proxy.Addr)
	case viaProxyTrusted:
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
		return d.Dial("tcp", s.proxy.Addr)
	case viaAuthLimit:
		return d.Dial("tcp", s.authLimit.Addr)
	case viaRotation:
		return d.Dial("tcp", s.rot.Addr)
	}
	return nil, fmt.Errorf("unknown setup %q", via)
}

// send writes raw on a new connection made as via says and reads one response.
func (s *atkSuite) send(via, raw string) (*Response, error) {
	conn, err := s.dial(via)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return exchange(conn, raw)
}

// exchange writes raw to conn as is and reads one response.
func exchange(conn net.Conn, raw string) (*Response, error) {
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return nil, fmt.Errorf("writing request: %w", err)
	}
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading response body: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// atkHitCounter is the attacker's key server (jku, x5u): it counts every
// request. The gateway must never fetch from it.
type atkHitCounter struct {
	*httptest.Server
	hits atomic.Int64
}

func newHitCounter(t *testing.T) *atkHitCounter {
	t.Helper()
	c := &atkHitCounter{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"keys":[]}`)
	}))
	t.Cleanup(c.Server.Close)
	return c
}

// newWSUpstream is an upstream that records each request like Upstream and
// answers a WebSocket upgrade with 101, then echoes whatever it receives.
func newWSUpstream(t *testing.T) *Upstream {
	t.Helper()
	u := &Upstream{arrived: make(chan struct{}, 64)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, Seen{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()})
		u.mu.Unlock()
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		if brw.Flush() != nil {
			return
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(conn, brw) // echo until the client closes
	}))
	t.Cleanup(u.Server.Close)
	return u
}

// wsUpgrade opens a WebSocket through the main gateway with the extra header
// lines and, on 101, checks that bytes travel both ways through the tunnel.
func wsUpgrade(headers ...string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, s *atkSuite) (*Response, error) {
		conn, err := s.dial(viaMain)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		raw := "GET /ws/chat HTTP/1.1\r\nHost: gateway.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		for _, h := range headers {
			raw += h + "\r\n"
		}
		if _, err := io.WriteString(conn, raw+"\r\n"); err != nil {
			return nil, err
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			return nil, fmt.Errorf("reading response: %w", err)
		}
		out := &Response{Status: resp.StatusCode, Header: resp.Header}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			out.Body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			return out, nil
		}
		if _, err := io.WriteString(conn, "ping\n"); err != nil {
			return out, fmt.Errorf("writing through the tunnel: %w", err)
		}
		echo, err := br.ReadString('\n')
		if err != nil || echo != "ping\n" {
			return out, fmt.Errorf("tunnel echo = %q, %v; want ping", echo, err)
		}
		return out, nil
	}
}

// slowloris sends a request's headers one byte every 100 ms, never finishing
// them, and reports how long the gateway kept the connection open.
func slowloris(t *testing.T, s *atkSuite) (*Response, error) {
	conn, err := s.dial(viaMain)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	start := time.Now()
	cut := make(chan error, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 256)
		n, err := conn.Read(buf)
		if n > 0 {
			err = fmt.Errorf("the gateway answered %q", buf[:n])
		}
		cut <- err
	}()
	verdict := func(err error) error {
		d := time.Since(start).Round(10 * time.Millisecond)
		// read_header_timeout is 1s; the rest is slack for a busy machine.
		if d > 3*time.Second {
			return fmt.Errorf("held open %s before being closed (read_header_timeout 1s): %v", d, err)
		}
		t.Logf("connection cut after %s: %v", d, err)
		return fmt.Errorf("connection cut after %s: %w", d, err)
	}
	head := "GET /public/slow HTTP/1.1\r\nHost: gateway.test\r\nX-Slow: "
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case err := <-cut:
			return nil, verdict(err)
		case <-tick.C:
		}
		c := byte('a')
		if i < len(head) {
			c = head[i]
		}
		if _, err := conn.Write([]byte{c}); err != nil {
			return nil, verdict(err)
		}
		if time.Since(start) > 6*time.Second {
			return nil, fmt.Errorf("still open after %s of byte-by-byte headers", time.Since(start).Round(time.Millisecond))
		}
	}
}

// tlsHandshake only handshakes with the TLS gateway using cfg.
func tlsHandshake(cfg func(*atkSuite) *tls.Config) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, s *atkSuite) (*Response, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.tls.Addr, cfg(s))
		if err != nil {
			return nil, err
		}
		conn.Close()
		return nil, nil
	}
}

// aeadSuites are the TLS 1.2 suites the gateway may choose: ECDHE with AEAD.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsRequest sends raw over TLS of exactly version, after checking the
// negotiated version and (for 1.2) that the suite is ECDHE + AEAD.
func tlsRequest(version uint16, raw string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, s *atkSuite) (*Response, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.tls.Addr, s.tlsClient(version, version))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		st := conn.ConnectionState()
		if st.Version != version {
			return nil, fmt.Errorf("negotiated %s, want %s", tls.VersionName(st.Version), tls.VersionName(version))
		}
		if version == tls.VersionTLS12 && !slices.Contains(aeadSuites, st.CipherSuite) {
			return nil, fmt.Errorf("negotiated %s, want an ECDHE AEAD suite", tls.CipherSuiteName(st.CipherSuite))
		}
		return exchange(conn, raw)
	}
}

// verifyAssertion checks an X-Auth-Token the way an upstream would: with the
// keys the gateway publishes at /.well-known/jwks.json, nothing else.
func (s *atkSuite) verifyAssertion(t *testing.T, tok, route, sub string) {
	t.Helper()
	verifyAssertion(t, s.main, tok, route, sub)
}

// verifyAssertion checks an X-Auth-Token for route and sub with the keys g
// publishes at /.well-known/jwks.json, nothing else.
func verifyAssertion(t *testing.T, g *Gateway, tok, route, sub string) {
	t.Helper()
	resp := g.Do(t, req("GET", "/.well-known/jwks.json"))
	if resp.Status != http.StatusOK {
		t.Fatalf("GET /.well-known/jwks.json: status %d", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(resp.Body, &set); err != nil {
		t.Fatalf("decoding JWKS: %v", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("JWKS publishes a non-public key %q", k.KeyID)
		}
	}
	parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		keys := set.Key(kid)
		if len(keys) != 1 {
			return nil, fmt.Errorf("kid %q: %d keys in the JWKS", kid, len(keys))
		}
		return keys[0].Key, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(testIssuer), jwt.WithAudience(route),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("X-Auth-Token does not verify with the published JWKS: %v", err)
	}
	if typ := parsed.Header["typ"]; typ != "authgw-assertion+jwt" {
		t.Errorf("assertion typ = %v, want authgw-assertion+jwt", typ)
	}
	c := parsed.Claims.(jwt.MapClaims)
	if c["type"] != "assertion" || c["sub"] != sub {
		t.Errorf("assertion type/sub = %v/%v, want assertion/%s", c["type"], c["sub"], sub)
	}
	iat, _ := c.GetIssuedAt()
	exp, _ := c.GetExpirationTime()
	if iat == nil || exp == nil || exp.Sub(iat.Time) > 5*time.Minute {
		t.Errorf("assertion lifetime %v..%v, want at most 5m", iat, exp)
	}
}

// checkAuditLog: the audit log is JSON lines with an event each, holds the
// events the suite caused, and no credential the suite used appears in it
// or in the gateway's own output.
func checkAuditLog(t *testing.T, s *atkSuite) (*Response, error) {
	// The last rows' events are written as their requests finish: wait
	// for every kind of event (a line that is not an event ends the wait).
	var text string
	var events map[string]int
	var bad, missing []string
	var readErr error
	_, _ = poll.Wait(5*time.Second, func() error {
		b, err := os.ReadFile(s.auditPath)
		if err != nil {
			readErr = err
			return nil
		}
		text, events, bad, missing = string(b), map[string]int{}, nil, nil
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			var ev struct {
				Time  time.Time `json:"time"`
				Event string    `json:"event"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Event == "" || ev.Time.IsZero() {
				bad = append(bad, line)
				continue
			}
			events[ev.Event]++
		}
		for _, want := range []string{"key.created", "auth.success", "auth.failure", "request.refused"} {
			if events[want] == 0 {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 && len(bad) == 0 {
			return fmt.Errorf("audit log has events %v, missing %v", events, missing)
		}
		return nil
	})
	if readErr != nil {
		return nil, fmt.Errorf("reading the audit log: %w", readErr)
	}
	for _, line := range bad {
		t.Errorf("audit line is not a JSON event: %q", line)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("audit log has events %v, missing %v", events, missing)
	}
	t.Logf("audit events: %v", events)
	outputs := map[string]string{
		"the audit log": text, "the main gateway's output": s.main.Stdout() + s.main.Stderr(),
		"the TLS gateway's output":        s.tls.Stdout() + s.tls.Stderr(),
		"the auth-limit gateway's output": s.authLimit.Stdout() + s.authLimit.Stderr(),
		"the rotation gateway's output":   s.rot.Stdout() + s.rot.Stderr(),
	}
	for where, out := range outputs {
		for i, sec := range s.secrets {
			if sec == "" {
				continue
			}
			if strings.Contains(out, sec) {
				t.Errorf("%s holds credential #%d the suite sent (%d bytes)", where, i, len(sec))
			}
			if parts := strings.Split(sec, "."); len(parts) == 3 && len(parts[2]) >= 16 && strings.Contains(out, parts[2]) {
				t.Errorf("%s holds the signature of token #%d", where, i)
			}
		}
		// No JWT of any kind: every JWT header starts with base64 of `{"`.
		if strings.Contains(out, "eyJ") {
			t.Errorf("%s holds something that looks like a JWT", where)
		}
	}
	return nil, nil
}

// pipelined writes raw (several requests on one connection) and returns the
// last response: the gateway must answer each request on its own.
func pipelined(raw string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, s *atkSuite) (*Response, error) {
		conn, err := s.dial(viaMain)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, raw); err != nil {
			return nil, err
		}
		br := bufio.NewReader(conn)
		var last *Response
		for n := strings.Count(raw, " HTTP/1.1\r\n"); n > 0; n-- {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return nil, fmt.Errorf("reading response: %w", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			t.Logf("response: %d %q", resp.StatusCode, body)
			last = &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
		}
		return last, nil
	}
}

// onlyRealPeer checks that a client-IP header the client forged did not reach
// the upstream: it is absent, or holds the real peer.
func onlyRealPeer(name string) func(*testing.T, *atkSuite, *Response, []Seen) {
	return func(t *testing.T, _ *atkSuite, _ *Response, got []Seen) {
		if v := got[0].Header.Values(name); len(v) > 0 && (len(v) != 1 || v[0] != "127.0.0.1") {
			t.Errorf("upstream %s = %q from an untrusted peer, want it absent (or the real peer 127.0.0.1)", name, v)
		}
	}
}

func (s *atkSuite) rotationConfig(keys ...string) string {
	return strings.NewReplacer("SIGNING_KEYS\n", strings.Join(keys, ""), "UPSTREAM", s.rotUp.URL).Replace(atkRotationConfig)
}

// rotateSigningKeys walks the documented rotation (README, "Rotating
// secrets"): add the new key second, move it first, drop the old one, each
// step a config rewrite and SIGHUP. It returns the answer to a token of the
// old key after the last step.
func rotateSigningKeys(t *testing.T, s *atkSuite) (*Response, error) {
	g := s.rot
	tok := func(kid string, secret []byte) string {
		return s.keep(sign(t, jwt.SigningMethodHS256, secret, header("HS256", kid), accessClaims("rosa", "reader")))
	}
	oldTok, newTok := tok("old", s.rotOld), tok("new", s.rotNew)
	status := func(tok string) int {
		resp, err := s.send(viaRotation, req("GET", "/api/x", bearer(tok)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	step := func(name string, want map[string]int, keys ...string) {
		full, err := withListeners(s.rotationConfig(keys...), g.Addr, g.AdminAddr)
		if err != nil {
			t.Fatal(err)
		}
		tmp := g.ConfigPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(full), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, g.ConfigPath); err != nil {
			t.Fatal(err)
		}
		g.Signal(t, syscall.SIGHUP)
		poll.Until(t, 10*time.Second, name, func() error {
			if got := map[string]int{"old": status(oldTok), "new": status(newTok)}; !maps.Equal(got, want) {
				return fmt.Errorf("token statuses %v, want %v", got, want)
			}
			return nil
		})
	}
	if got := status(oldTok); got != http.StatusOK {
		t.Fatalf("before rotation: old key's token got %d, want 200", got)
	}
	step("new key added second", map[string]int{"old": 200, "new": 200}, rotOldKey, rotNewKey)
	step("new key first", map[string]int{"old": 200, "new": 200}, rotNewKey, rotOldKey)
	// The CLI now signs with the new key.
	minted := g.Token(t, "-sub", "rosa")
	s.keep(minted)
	var h struct {
		Kid string `json:"kid"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(strings.Split(minted, ".")[0]); err != nil || json.Unmarshal(b, &h) != nil || h.Kid != "new" {
		t.Errorf("after moving the new key first, minted tokens have kid %q, want new", h.Kid)
	}
	step("old key removed", map[string]int{"old": 401, "new": 200}, rotNewKey)
	s.resetUpstreams()
	return s.send(viaRotation, req("GET", "/api/x", bearer(oldTok)))
}

// refusedConfig starts `authgateway serve` on cfg (an HS256 key from
// ${ACCESS_SECRET} is available) and wants it to refuse to start, naming
// the offending key.
func refusedConfig(cfg, want string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, s *atkSuite) (*Response, error) {
		full, err := withListeners(cfg, freePort(t), freePort(t))
		if err != nil {
			return nil, err
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "gateway.yaml")
		if err := os.WriteFile(p, []byte(full), 0o600); err != nil {
			return nil, err
		}
		res := runCLI(t, dir, map[string]string{"ACCESS_SECRET": string(s.hsSecret)}, "serve", "-config", p)
		if out := res.Stdout + res.Stderr; res.Code != 1 || !strings.Contains(out, want) {
			return nil, fmt.Errorf("serve exited %d, want 1 naming %q; output:\n%s", res.Code, want, out)
		}
		return nil, nil
	}
}
