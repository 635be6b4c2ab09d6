package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// testCA is a certificate authority made by the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client issues a client certificate; mod adjusts the template.
func (ca *testCA) client(t *testing.T, cn string, mod func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Partner"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

type mtlsGateway struct {
	*Gateway
	roots  *x509.CertPool
	caFile string
}

// startMTLSGateway serves TLS with client_ca_file holding ca.
func startMTLSGateway(t *testing.T, ca *testCA, upstream string) *mtlsGateway {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := selfSigned(t, key, &key.PublicKey, "gateway.test")
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "clients-ca.pem")
	for f, b := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		caFile:   ca.pem,
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`server:
  tls: {cert_file: %s, key_file: %s, client_ca_file: %s}
tokens:
  issuer: https://gw.test
  audience: partners
  signing_keys: [{kid: k1, algorithm: HS256, secret: %q}]
strategies:
  partners:
    type: mtls
    subject_from: cn
    allowed_subjects: [partner-a]
    roles: [partner]
    user_roles: {partner-a: [billing]}
  by_dns: {type: mtls, subject_from: san_dns}
  by_uri: {type: mtls, subject_from: san_uri}
  by_email: {type: mtls, subject_from: san_email, allowed_subjects: [a@partner.test]}
  jwt: {type: jwt, keys: tokens, issuer: "https://gw.test", audience: partners, algorithms: [HS256]}
routes:
  - {name: cn, path: /cn, upstream: %[5]s, strategies: [partners]}
  - {name: dns, path: /dns, upstream: %[5]s, strategies: [by_dns]}
  - {name: uri, path: /uri, upstream: %[5]s, strategies: [by_uri]}
  - {name: email, path: /email, upstream: %[5]s, strategies: [by_email]}
  - {name: mixed, path: /mixed, upstream: %[5]s, strategies: [partners, jwt]}
  - {name: jwtonly, path: /jwt, upstream: %[5]s, strategies: [jwt]}
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`, certFile, keyFile, caFile, randomSecret(t), upstream)
	g := startGateway(t, cfg, nil)
	roots := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(der)
	roots.AddCert(leaf)
	return &mtlsGateway{Gateway: g, roots: roots, caFile: caFile}
}

// send makes a new TLS connection, presenting cert when it is not nil,
// and sends raw on it.
// The certificate is presented whatever CAs the server's request names, as
// curl --cert does.
func (g *mtlsGateway) send(t *testing.T, cert *tls.Certificate, raw string) *Response {
	t.Helper()
	cfg := &tls.Config{RootCAs: g.roots, ServerName: "gateway.test"}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return g.dial(t, cfg, raw)
}

// sendHolding is send by a client holding certs, which presents the first
// one the server's certificate request accepts (Go's choice, and
// browsers').
func (g *mtlsGateway) sendHolding(t *testing.T, certs []tls.Certificate, raw string) *Response {
	t.Helper()
	return g.dial(t, &tls.Config{RootCAs: g.roots, ServerName: "gateway.test", Certificates: certs}, raw)
}

func (g *mtlsGateway) dial(t *testing.T, cfg *tls.Config, raw string) *Response {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.Addr, cfg)
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	r, err := exchange(conn, raw)
	if err != nil {
		t.Fatalf("%q: %v", firstLine(raw), err)
	}
	return r
}

func fingerprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return hex.EncodeToString(sum[:])
}

// spoofedCertHeaders are what a client could send to pass for the holder
// of a certificate with an upstream that trusts a TLS terminator's headers.
var spoofedCertHeaders = []string{
	"X-Forwarded-Client-Cert: By=spiffe://x;Hash=00;Subject=\"CN=partner-a\"",
	"X-SSL-Client-Cert: -----BEGIN CERTIFICATE-----",
	"X-SSL-Client-S-DN: CN=partner-a",
	"X-SSL-Client-Verify: SUCCESS",
	"X_SSL_Client_Verify: SUCCESS",
	"X-Client-Cert: forged",
	"X-Client-Cert-Chain: forged",
	"X-Auth-Client-Cert-Sha256: 00",
	"X-Auth-Client-Cert-Subject: CN=partner-a",
}

func wantNoSpoofedHeaders(t *testing.T, s Seen, fp string) {
	t.Helper()
	for name, vals := range s.Header {
		n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		switch {
		case strings.HasPrefix(n, "x-ssl-client"), strings.HasPrefix(n, "x-client-cert"), n == "x-forwarded-client-cert":
			t.Errorf("upstream got %s: %q", name, vals)
		case n == "x-auth-client-cert-sha256" && (fp == "" || vals[0] != fp || len(vals) != 1):
			t.Errorf("upstream got %s: %q, want %q", name, vals, fp)
		case n == "x-auth-client-cert-subject" && (fp == "" || len(vals) != 1 || vals[0] == "CN=partner-a"):
			t.Errorf("upstream got %s: %q", name, vals)
		}
	}
}

func TestMTLS(t *testing.T) {
	up := newUpstream(t, 0)
	ca, other := newTestCA(t, "Partners CA"), newTestCA(t, "Another CA")
	g := startMTLSGateway(t, ca, up.URL)
	tok := g.Token(t, "-sub", "svc")

	sans := func(c *x509.Certificate) {
		c.DNSNames = []string{"a.partner.test"}
		c.EmailAddresses = []string{"b@partner.test", "a@partner.test"}
		c.URIs = []*url.URL{{Scheme: "spiffe", Host: "partner.test", Path: "/a"}}
	}
	partnerA := ca.client(t, "partner-a", sans)
	partnerB := ca.client(t, "partner-b", nil)
	foreign := other.client(t, "partner-a", sans)
	expired := ca.client(t, "partner-a", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	})
	serverOnly := ca.client(t, "partner-a", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })

	ok := []struct {
		name, path string
		cert       *tls.Certificate
		headers    []string
		sub, roles string
		strategy   string
	}{
		{"cn", "/cn/x", &partnerA, nil, "partner-a", "partner,billing", "partners"},
		{"san_dns", "/dns/x", &partnerA, nil, "a.partner.test", "", "by_dns"},
		{"san_uri", "/uri/x", &partnerA, nil, "spiffe://partner.test/a", "", "by_uri"},
		{"san_email: the allowed one of two", "/email/x", &partnerA, nil, "a@partner.test", "", "by_email"},
		{"certificate on [mtls, jwt]", "/mixed/x", &partnerA, nil, "partner-a", "partner,billing", "partners"},
		{"no certificate on [mtls, jwt]: the token", "/mixed/x", nil, []string{bearer(tok)}, "svc", "", "jwt"},
		{"spoofed headers with a certificate", "/cn/x", &partnerA, spoofedCertHeaders, "partner-a", "partner,billing", "partners"},
		{"spoofed headers without a certificate", "/mixed/x", nil, append([]string{bearer(tok)}, spoofedCertHeaders...), "svc", "", "jwt"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			up.Reset()
			r := g.send(t, tt.cert, req("GET", tt.path, tt.headers...))
			if r.Status != http.StatusOK {
				t.Fatalf("status %d, want 200 (%s)", r.Status, r.Body)
			}
			s := up.One(t)
			h := authHeaders(s.Header)
			if h["X-Auth-Subject"] != tt.sub || h["X-Auth-Roles"] != tt.roles || h["X-Auth-Strategy"] != tt.strategy {
				t.Errorf("upstream X-Auth headers = %v, want subject %q roles %q strategy %q", h, tt.sub, tt.roles, tt.strategy)
			}
			fp := ""
			if tt.cert != nil {
				fp = fingerprint(*tt.cert)
				if got := h["X-Auth-Client-Cert-Sha256"]; got != fp {
					t.Errorf("X-Auth-Client-Cert-Sha256 = %q, want %q", got, fp)
				}
				if got, want := h["X-Auth-Client-Cert-Subject"], tt.cert.Leaf.Subject.String(); got != want {
					t.Errorf("X-Auth-Client-Cert-Subject = %q, want %q", got, want)
				}
			}
			wantNoSpoofedHeaders(t, s, fp)
		})
	}

	refused := []struct {
		name, path string
		cert       *tls.Certificate
		headers    []string
		reason     string
	}{
		{"subject not allowed", "/cn/x", &partnerB, nil, "subject_not_allowed"},
		{"no SAN of the kind", "/dns/x", &partnerB, nil, "subject_not_allowed"},
		{"certificate from another CA", "/cn/x", &foreign, nil, "untrusted_certificate"},
		{"another CA's certificate beside a valid token", "/mixed/x", &foreign, []string{bearer(tok)}, "untrusted_certificate"},
		{"expired", "/cn/x", &expired, nil, "expired"},
		{"expired beside a valid token", "/mixed/x", &expired, []string{bearer(tok)}, "expired"},
		{"not for client authentication", "/cn/x", &serverOnly, nil, "untrusted_certificate"},
		{"no certificate", "/cn/x", nil, nil, "no_credentials"},
		{"no certificate, no token on [mtls, jwt]", "/mixed/x", nil, nil, "no_credentials"},
		{"spoofed headers alone", "/cn/x", nil, spoofedCertHeaders, "no_credentials"},
	}
	for i, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			up.Reset()
			id := fmt.Sprintf("mtls-refused-%d", i)
			r := g.send(t, tt.cert, req("GET", tt.path, append(tt.headers, "X-Request-Id: "+id)...))
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (%s)", r.Status, r.Body)
			}
			r.ErrorMessage(t)
			up.WantNothing(t)
			if ev := g.Event(t, id); ev["reason"] != tt.reason {
				t.Errorf("auth event reason = %v, want %s", ev["reason"], tt.reason)
			}
		})
	}

	t.Run("the request names the CAs: a client holding two certificates presents the right one", func(t *testing.T) {
		up.Reset()
		if r := g.sendHolding(t, []tls.Certificate{foreign, partnerA}, req("GET", "/cn/x")); r.Status != http.StatusOK {
			t.Fatalf("status %d, want 200 (%s)", r.Status, r.Body)
		}
		if got := up.One(t).Header.Get("X-Auth-Client-Cert-Sha256"); got != fingerprint(partnerA) {
			t.Errorf("presented %q, want partner-a's certificate", got)
		}
	})

	t.Run("a certificate does not get in on a route without mtls", func(t *testing.T) {
		up.Reset()
		if r := g.send(t, &partnerA, req("GET", "/jwt/x")); r.Status != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", r.Status)
		}
		if r := g.send(t, &foreign, req("GET", "/jwt/x", bearer(tok))); r.Status != http.StatusOK {
			t.Errorf("an untrusted certificate on a jwt route with a token: status %d, want 200 (the handshake asks, never requires)", r.Status)
		}
	})

	t.Run("the client CAs reload on SIGHUP", func(t *testing.T) {
		if err := os.WriteFile(g.caFile, other.pem, 0o600); err != nil {
			t.Fatal(err)
		}
		g.Signal(t, syscall.SIGHUP)
		poll.Until(t, 10*time.Second, "the other CA's certificate accepted", func() error {
			if r := g.send(t, &foreign, req("GET", "/cn/x")); r.Status != http.StatusOK {
				return fmt.Errorf("status %d", r.Status)
			}
			return nil
		})
		if r := g.send(t, &partnerA, req("GET", "/cn/x")); r.Status != http.StatusUnauthorized {
			t.Errorf("a certificate of the CA removed: status %d, want 401", r.Status)
		}
	})

	t.Run("the client CAs reload when the file changes", func(t *testing.T) {
		// Both CAs: a content the file watcher has not seen (it compares
		// with what it saw last, and a SIGHUP reload does not tell it).
		if err := os.WriteFile(g.caFile, append(append([]byte{}, ca.pem...), other.pem...), 0o600); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 10*time.Second, "the first CA's certificate accepted again", func() error {
			if r := g.send(t, &partnerA, req("GET", "/cn/x")); r.Status != http.StatusOK {
				return fmt.Errorf("status %d", r.Status)
			}
			return nil
		})
	})
}

func TestMTLSNeedsClientCAFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(`strategies:
  partners: {type: mtls, subject_from: serial}
routes:
  - {path: /p, upstream: "http://127.0.0.1:1", strategies: [partners]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, dir, nil, "validate", "-config", cfg)
	out := res.Stdout + res.Stderr
	for _, want := range []string{"gateway.yaml:2: strategies.partners.type: type: mtls needs server.tls.client_ca_file", "unknown subject source \"serial\""} {
		if res.Code != 1 || !strings.Contains(out, want) {
			t.Errorf("validate: exit %d\n%s\nwant exit 1 and %q", res.Code, out, want)
		}
	}
}

// runReadmeLines runs the lines of a README sh block with bash in dir, as
// printed but for the binary's path, leaving out those skip matches
// (requests to the example host, interactive prompts).
func runReadmeLines(t *testing.T, dir, block string, skip func(line string) bool) {
	t.Helper()
	var keep []string
	for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", ""), "\n") {
		if strings.TrimSpace(line) != "" && !skip(line) {
			keep = append(keep, strings.ReplaceAll(line, "authgateway ", binPath+" "))
		}
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.Join(keep, "\n"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README commands: %v\n%s", err, out)
	}
}

// TestReadmeBasicAndClientCertificates runs the section's commands as
// printed and uses what they make: the htpasswd line and the client
// certificate get through a gateway.
func TestReadmeBasicAndClientCertificates(t *testing.T) {
	const heading = "HTTP Basic and client certificates"
	dir := t.TempDir()
	runReadmeLines(t, dir, readmeBlock(t, heading, "authgateway htpasswd"), func(l string) bool {
		return strings.HasPrefix(l, "curl ") || strings.Contains(l, "# asks")
	})
	runReadmeLines(t, dir, readmeBlock(t, heading, "openssl req"), func(l string) bool { return strings.HasPrefix(l, "curl ") })

	up := newUpstream(t, 0)
	ca, err := os.ReadFile(filepath.Join(dir, "clients-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	g := startMTLSGateway(t, &testCA{pem: ca}, up.URL)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "partner-a.pem"), filepath.Join(dir, "partner-a.key"))
	if err != nil {
		t.Fatal(err)
	}
	if r := g.send(t, &cert, req("GET", "/cn/orders")); r.Status != http.StatusOK {
		t.Errorf("the README's client certificate: status %d (%s), want 200", r.Status, r.Body)
	}
	if s := up.One(t); s.Header.Get("X-Auth-Subject") != "partner-a" {
		t.Errorf("X-Auth-Subject = %q", s.Header.Get("X-Auth-Subject"))
	}

	up.Reset()
	bg := startGateway(t, basicConfig(t, filepath.Join(dir, "htpasswd"), up.URL, 100), nil)
	if r := bg.Do(t, req("GET", "/api/status", basicAuth("deploybot", "s3cret-for-deploybot"))); r.Status != http.StatusOK {
		t.Errorf("the README's htpasswd line: status %d, want 200", r.Status)
	}
}
