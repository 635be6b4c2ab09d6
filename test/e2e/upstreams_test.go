package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/deadaddr"
	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// instance is one instance of an app behind a route's upstreams: it
// counts the requests it got (health probes apart), can fail its health
// check, and can drop the connection after reading a request, as an app
// that crashed mid-write does.
type instance struct {
	*httptest.Server
	name    string
	mu      sync.Mutex
	got     []string // "METHOD URI body"
	sick    atomic.Bool
	drop    atomic.Bool
	probes  atomic.Int64
	headers http.Header
}

func newInstance(t *testing.T, name string) *instance {
	t.Helper()
	in := &instance{name: name}
	in.Server = httptest.NewServer(http.HandlerFunc(in.serve))
	t.Cleanup(in.Server.Close)
	return in
}

func (in *instance) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		in.probes.Add(1)
		if in.sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	body, _ := io.ReadAll(r.Body)
	in.mu.Lock()
	in.got = append(in.got, r.Method+" "+r.RequestURI+" "+string(body))
	in.headers = r.Header.Clone()
	in.mu.Unlock()
	if in.drop.Load() {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
		return
	}
	io.WriteString(w, in.name)
}

func (in *instance) requests() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.got...)
}

func (in *instance) reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.got = nil
}

// deadAddr is an upstream where nothing listens: not a freed :0 port,
// which the gateway started next may be given (it then answered as the
// "dead" target, a flake seen in CI).
func deadAddr(t *testing.T) string { return "http://" + deadaddr.New(t) }

const upstreamsConfig = `server: {}
` + userJWTConfig + `rate_limits:
  auth_failures: {limit: 100000, period: 1m}
routes:
  - name: billing
    path: /billing
    upstreams: [A, DEAD, B]
    strategies: [userJwt]
  - name: pay
    path: /pay
    upstreams: [DROP, C]
    strategies: [userJwt]
  - name: gone
    path: /gone
    upstreams: [DEAD, DEAD2]
    strategies: [userJwt]
  - name: checked
    path: /checked
    upstreams: [D, E]
    health_check: {path: /healthz, interval: 100ms, timeout: 50ms, unhealthy_after: 2, healthy_after: 2}
    strategies: [userJwt]
`

type upstreamsSuite struct {
	g                   *Gateway
	tok                 string
	a, b, c, d, e, drop *instance
	dead, dead2         string
}

func startUpstreamsSuite(t *testing.T) *upstreamsSuite {
	s := &upstreamsSuite{a: newInstance(t, "a"), b: newInstance(t, "b"), c: newInstance(t, "c"),
		d: newInstance(t, "d"), e: newInstance(t, "e"), drop: newInstance(t, "drop"), dead: deadAddr(t), dead2: deadAddr(t)}
	s.drop.drop.Store(true)
	cfg := strings.NewReplacer("DEAD2", s.dead2, "DEAD", s.dead, "DROP", s.drop.URL, "A", s.a.URL, "B", s.b.URL,
		"C", s.c.URL, "D", s.d.URL, "E", s.e.URL).Replace(upstreamsConfig)
	s.g = startGateway(t, cfg, map[string]string{"ACCESS_SECRET": randomSecret(t)})
	s.tok = s.g.Token(t, "-sub", "alice")
	return s
}

func (s *upstreamsSuite) do(t *testing.T, method, path, body string) *Response {
	t.Helper()
	raw := req(method, path, bearer(s.tok))
	if body != "" {
		raw = strings.TrimSuffix(raw, "\r\n") + "Content-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	return s.g.Do(t, raw)
}

// TestUpstreams drives a route's several upstreams through the binary:
// round robin, a refusing target skipped at once with the GET retried, a
// POST never sent twice, 503 JSON when none is healthy, health checks
// taking a target out and back, metrics, /readyz and explain.
func TestUpstreams(t *testing.T) {
	s := startUpstreamsSuite(t)

	t.Run("round robin, the refusing target skipped and the GET retried", func(t *testing.T) {
		for i := range 6 {
			if r := s.do(t, "GET", "/billing/inv?n="+strconv.Itoa(i), ""); r.Status != 200 {
				t.Fatalf("GET %d: status %d %s", i, r.Status, r.Body)
			}
		}
		a, b := s.a.requests(), s.b.requests()
		if len(a)+len(b) != 6 || len(a) < 2 || len(b) < 2 {
			t.Fatalf("a got %q, b got %q: want the 6 GETs once each, spread over both", a, b)
		}
		for _, got := range append(a, b...) {
			if !strings.HasPrefix(got, "GET /billing/inv?n=") {
				t.Errorf("an instance got %q", got)
			}
		}
		h := s.b.headers
		if h.Get("X-Auth-Subject") != "alice" || h.Get("Authorization") != "" {
			t.Errorf("instance b saw X-Auth-Subject %q, Authorization %q", h.Get("X-Auth-Subject"), h.Get("Authorization"))
		}
	})

	t.Run("a POST is never sent twice", func(t *testing.T) {
		// DROP reads the POST and drops the connection: the app may have
		// acted on it, so the gateway answers 502 and does not retry on C.
		var statuses []int
		for range 4 {
			statuses = append(statuses, s.do(t, "POST", "/pay/charge", "amount=100").Status)
		}
		drop, c := s.drop.requests(), s.c.requests()
		if len(drop) != 2 || len(c) != 2 {
			t.Fatalf("DROP got %q, C got %q; want 2 POSTs each (statuses %v)", drop, c, statuses)
		}
		for _, got := range append(drop, c...) {
			if got != "POST /pay/charge amount=100" {
				t.Errorf("an instance got %q", got)
			}
		}
		n502 := 0
		for _, st := range statuses {
			if st == 502 {
				n502++
			}
		}
		if n502 != 2 {
			t.Errorf("statuses %v: want the 2 POSTs DROP took answered 502", statuses)
		}
		// A POST to a refusing target is not retried either (the contract
		// retries idempotent requests only): 502, and nothing reaches B.
		s.a.reset()
		s.b.reset()
	})

	t.Run("none healthy: 503 JSON", func(t *testing.T) {
		r := s.do(t, "GET", "/gone/x", "")
		if r.Status != 502 {
			t.Fatalf("first GET: status %d, want 502 (both refused: the retry failed too)", r.Status)
		}
		r = s.do(t, "GET", "/gone/x", "")
		if r.Status != 503 || r.Header.Get("Content-Type") != "application/json" || r.ErrorMessage(t) != "no healthy upstream" {
			t.Fatalf("second GET: %d %q %s, want 503 JSON no healthy upstream", r.Status, r.Header.Get("Content-Type"), r.Body)
		}
	})

	t.Run("health check takes a target out and back", func(t *testing.T) {
		s.d.sick.Store(true)
		waitReadyDetail(t, s.g, "checked "+s.d.URL)
		s.e.reset()
		s.d.reset()
		for range 4 {
			if r := s.do(t, "GET", "/checked/x", ""); r.Status != 200 {
				t.Fatalf("status %d", r.Status)
			}
		}
		if d, e := s.d.requests(), s.e.requests(); len(d) != 0 || len(e) != 4 {
			t.Fatalf("sick D got %q, E got %q; want nothing and 4", d, e)
		}
		s.d.sick.Store(false)
		if _, err := poll.Wait(5*time.Second, func() error {
			s.d.reset()
			s.do(t, "GET", "/checked/x", "")
			s.do(t, "GET", "/checked/x", "")
			if len(s.d.requests()) == 0 {
				return errString("D gets nothing yet")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("readyz degraded names the targets down, metrics per target", func(t *testing.T) {
		rz := readyDetail(t, s.g)
		if rz.code != 200 || rz.Status != "degraded" || !strings.Contains(rz.Detail, "billing "+s.dead) || strings.Contains(rz.Detail, s.a.URL) {
			t.Errorf("/readyz %d %+v, want 200 degraded naming billing %s only", rz.code, rz, s.dead)
		}
		fams, _ := scrapeMetrics(t, s.g)
		if v := fams.value("authgateway_upstream_target_up", promLabels("route", "billing", "target", s.dead)); v != 0 {
			t.Errorf("up{billing,dead} = %v, want 0", v)
		}
		if v := fams.value("authgateway_upstream_target_up", promLabels("route", "billing", "target", s.a.URL)); v != 1 {
			t.Errorf("up{billing,a} = %v, want 1", v)
		}
		if v := fams.value("authgateway_upstream_target_requests_total", promLabels("route", "pay", "target", s.drop.URL)); v != 2 {
			t.Errorf("requests{pay,drop} = %v, want 2", v)
		}
		if v := fams.value("authgateway_upstream_target_errors_total", promLabels("route", "pay", "target", s.drop.URL)); v != 2 {
			t.Errorf("errors{pay,drop} = %v, want 2", v)
		}
	})

	t.Run("explain names the target next without advancing", func(t *testing.T) {
		before := len(s.a.requests()) + len(s.b.requests())
		res := s.g.CLI(t, "explain", "-config", s.g.ConfigPath, "-H", bearer(s.tok), "GET", "/billing/x")
		if res.Code != 0 || !strings.Contains(res.Stdout, "upstream targets") || !strings.Contains(res.Stdout, "<- next") ||
			!strings.Contains(res.Stdout, s.dead+" (up, not probed)") {
			t.Errorf("explain exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		if after := len(s.a.requests()) + len(s.b.requests()); after != before {
			t.Errorf("explain sent %d requests upstream", after-before)
		}
	})
}

// TestUpstreamsPostToRefusedTargetNotRetried: the contract retries only
// idempotent requests; a POST whose target refused is answered 502.
func TestUpstreamsPostToRefusedTargetNotRetried(t *testing.T) {
	a := newInstance(t, "a")
	cfg := `server: {}
` + userJWTConfig + `routes:
  - name: w
    path: /w
    upstreams: [DEAD, A]
    strategies: [userJwt]
`
	g := startGateway(t, strings.NewReplacer("DEAD", deadAddr(t), "A", a.URL).Replace(cfg), map[string]string{"ACCESS_SECRET": randomSecret(t)})
	tok := g.Token(t, "-sub", "bob")
	r := g.Do(t, "POST /w/x HTTP/1.1\r\nHost: gw\r\n"+bearer(tok)+"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
	if r.Status != 502 || len(a.requests()) != 0 {
		t.Fatalf("POST: %d, A got %q; want 502 and nothing", r.Status, a.requests())
	}
	r = g.Do(t, req("DELETE", "/w/x", bearer(tok)))
	if r.Status != 200 || len(a.requests()) != 1 {
		t.Fatalf("DELETE: %d, A got %q; want 200 (now on A) and one", r.Status, a.requests())
	}
}

type upReadyz struct {
	code   int
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func readyDetail(t *testing.T, g *Gateway) upReadyz {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + g.AdminAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rz upReadyz
	_ = json.NewDecoder(resp.Body).Decode(&rz)
	rz.code = resp.StatusCode
	return rz
}

func waitReadyDetail(t *testing.T, g *Gateway, want string) {
	t.Helper()
	if _, err := poll.Wait(5*time.Second, func() error {
		if rz := readyDetail(t, g); !strings.Contains(rz.Detail, want) {
			return errString("readyz detail " + rz.Detail)
		}
		return nil
	}); err != nil {
		t.Fatalf("waiting for %q in /readyz: %v", want, err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestUpstreamsReloadUnderLoad changes a route's upstream list while
// clients hammer it: not one request is lost, and the new list serves.
func TestUpstreamsReloadUnderLoad(t *testing.T) {
	a, b, c := newInstance(t, "a"), newInstance(t, "b"), newInstance(t, "c")
	tmpl := `server: {}
` + userJWTConfig + `rate_limits:
  auth_failures: {limit: 100000, period: 1m}
routes:
  - name: app
    path: /app
    upstreams: LIST
    health_check: {path: /healthz, interval: 50ms, timeout: 40ms}
    strategies: [userJwt]
`
	version := func(list ...*instance) string {
		var urls []string
		for _, in := range list {
			urls = append(urls, in.URL)
		}
		return strings.Replace(tmpl, "LIST", "["+strings.Join(urls, ", ")+"]", 1)
	}
	g := startGateway(t, version(a, b), map[string]string{"ACCESS_SECRET": randomSecret(t)})
	h := startHammer(4, "http://"+g.Addr+"/app/x", g.Token(t, "-sub", "alice"))
	for _, v := range [][]*instance{{b, c}, {c}, {a, b, c}, {a}} {
		before := scrapeReloads(t, g).success
		full, err := withListeners(version(v...), g.Addr, g.AdminAddr)
		if err != nil {
			t.Fatal(err)
		}
		writeAtomic(t, g.ConfigPath, full)
		if _, err := poll.Wait(10*time.Second, func() error {
			if scrapeReloads(t, g).success <= before {
				return errString("not reloaded yet")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	h.stop(t)
	a.reset()
	b.reset()
	c.reset()
	for range 3 {
		g.Do(t, req("GET", "/app/y", bearer(g.Token(t, "-sub", "alice"))))
	}
	// Counted by path: a hammering request cancelled by stop may still
	// reach an instance after the reset.
	ys := func(in *instance) (n int) {
		for _, r := range in.requests() {
			if strings.HasPrefix(r, "GET /app/y ") {
				n++
			}
		}
		return n
	}
	if ys(a) != 3 || ys(b)+ys(c) != 0 {
		t.Errorf("after the last reload a got %d, b %d, c %d; want 3, 0, 0 (a's requests %q)", ys(a), ys(b), ys(c), a.requests())
	}
	fams, _ := scrapeMetrics(t, g)
	if fam := fams["authgateway_upstream_target_up"]; fam == nil || len(fam.GetMetric()) != 1 {
		t.Errorf("authgateway_upstream_target_up has %d series, want a's only", len(fam.GetMetric()))
	}
	// The retired generations' health checks are gone: b and c are probed
	// no more.
	time.Sleep(200 * time.Millisecond)
	pb, pc := b.probes.Load(), c.probes.Load()
	time.Sleep(300 * time.Millisecond)
	if b.probes.Load() != pb || c.probes.Load() != pc {
		t.Errorf("b and c still probed after they left the config (%d→%d, %d→%d): a retired generation's health checks leak", pb, b.probes.Load(), pc, c.probes.Load())
	}
}

// testPKI is a CA made by the test, and the certificates it issues.
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
	pool   *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), ca: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.CAFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue makes a certificate for name (a server's DNS name, and 127.0.0.1;
// or a client's CN) and returns it loaded and as files.
func (p *testPKI) issue(t *testing.T, name string, client bool) (cert tls.Certificate, certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	if client {
		tmpl.ExtKeyUsage, tmpl.DNSNames, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile = p.write(t, name+".crt", "CERTIFICATE", der)
	keyFile = p.write(t, name+".key", "EC PRIVATE KEY", keyDER)
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certFile, keyFile
}

// TestUpstreamTLS: an https upstream that requires a client certificate
// from the test's CA gets the gateway's (mTLS) and is verified against
// ca_file for server_name; without ca_file its certificate is not trusted
// (502, nothing sent), and insecure_skip_verify is warned about loudly.
func TestUpstreamTLS(t *testing.T) {
	pki := newTestPKI(t)
	srvCert, _, _ := pki.issue(t, "billing.internal", false)
	_, clientCert, clientKey := pki.issue(t, "gateway-client", true)
	var mu sync.Mutex
	var peers []string
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers = append(peers, r.TLS.PeerCertificates[0].Subject.CommonName+" "+r.Proto+" "+r.RequestURI+" "+r.Header.Get("X-Auth-Subject"))
		mu.Unlock()
		io.WriteString(w, "secure")
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool, NextProtos: []string{"h2", "http/1.1"}}
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)

	// open asks for no client certificate: only verification can refuse it.
	var openHits atomic.Int64
	open := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { openHits.Add(1) }))
	open.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}}
	open.StartTLS()
	t.Cleanup(open.Close)

	cfg := `server: {}
` + userJWTConfig + `routes:
  - name: mtls
    path: /mtls
    upstream: UP
    upstream_tls: {ca_file: CA, cert_file: CERT, key_file: KEY, server_name: billing.internal}
    strategies: [userJwt]
  - name: unverified
    path: /unverified
    upstream: OPEN
    strategies: [userJwt]
  - name: othername
    path: /othername
    upstream: OPEN
    upstream_tls: {ca_file: CA, server_name: other.internal}
    strategies: [userJwt]
  - name: nocert
    path: /nocert
    upstream: UP
    upstream_tls: {ca_file: CA, server_name: billing.internal}
    strategies: [userJwt]
`
	cfg = strings.NewReplacer("OPEN", open.URL, "UP", up.URL, "CA", pki.CAFile, "CERT", clientCert, "KEY", clientKey).Replace(cfg)
	g := startGateway(t, cfg, map[string]string{"ACCESS_SECRET": randomSecret(t)})
	tok := g.Token(t, "-sub", "alice")
	r := g.Do(t, req("GET", "/mtls/a?b=1", bearer(tok)))
	if r.Status != 200 || string(r.Body) != "secure" {
		t.Fatalf("mtls: %d %s", r.Status, r.Body)
	}
	mu.Lock()
	got := append([]string(nil), peers...)
	mu.Unlock()
	if len(got) != 1 || got[0] != "gateway-client HTTP/2.0 /mtls/a?b=1 alice" {
		t.Fatalf("upstream saw %q, want the gateway's client certificate over h2", got)
	}
	for _, path := range []string{"/unverified/a", "/othername/a", "/nocert/a"} {
		if r := g.Do(t, req("GET", path, bearer(tok))); r.Status != 502 {
			t.Errorf("%s: status %d, want 502 (the upstream is not trusted, has another name, or wants a client certificate)", path, r.Status)
		}
	}
	if n := openHits.Load(); n != 0 {
		t.Errorf("an upstream whose certificate does not verify got %d requests", n)
	}
	mu.Lock()
	if len(peers) != 1 {
		t.Errorf("upstream served %d requests, want only the mTLS one", len(peers))
	}
	mu.Unlock()

	// insecure_skip_verify: accepted, loudly.
	insecure := strings.Replace(cfg, "upstream_tls: {ca_file: "+pki.CAFile+", server_name: billing.internal}", "upstream_tls: {insecure_skip_verify: true}", 1)
	full, _ := withListeners(insecure, "127.0.0.1:0", "")
	f := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(f, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, filepath.Dir(f), map[string]string{"ACCESS_SECRET": randomSecret(t)}, "validate", "-config", f)
	if res.Code != 0 || !strings.Contains(res.Stdout, "routes[3].upstream_tls.insecure_skip_verify: warning: route \"nocert\" does not verify") {
		t.Errorf("validate exit %d, stdout:\n%s", res.Code, res.Stdout)
	}
	g2 := startGateway(t, insecure, map[string]string{"ACCESS_SECRET": randomSecret(t)})
	if !strings.Contains(g2.Stderr(), "does not verify its upstream's certificate") {
		t.Errorf("serve gave no warning at start:\nstdout %s\nstderr %s", g2.Stdout(), g2.Stderr())
	}
}
