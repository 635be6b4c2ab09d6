package mtls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
)

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newIssuer(t testing.TB, parent *issuer, cn string, mod func(*x509.Certificate)) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: parent == nil, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{cn},
	}
	if mod != nil {
		mod(tmpl)
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &issuer{cert: cert, key: key}
}

func (i *issuer) tlsCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{i.cert.Raw}, PrivateKey: i.key, Leaf: i.cert}
}

func newStrategy(t testing.TB, ca *issuer, sc *config.Strategy, now func() time.Time) *Strategy {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	sc.Type = "mtls"
	sc.Provision()
	s, err := New("partners", sc, strategies.Deps{ClientCAs: pool, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s.(*Strategy)
}

func withCert(certs ...*x509.Certificate) *http.Request {
	r := httptest.NewRequest("GET", "https://gw/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: certs}
	return r
}

// TestCacheNeverOutlivesTheCertificate: a chain verified once is not
// accepted from the cache past its expiry.
func TestCacheNeverOutlivesTheCertificate(t *testing.T) {
	ca := newIssuer(t, nil, "ca", nil)
	leaf := newIssuer(t, ca, "partner-a", func(c *x509.Certificate) { c.NotAfter = time.Now().Add(time.Minute) })
	now := time.Now()
	s := newStrategy(t, ca, &config.Strategy{}, func() time.Time { return now })
	if _, err := s.Authenticate(context.Background(), withCert(leaf.cert)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	_, err := s.Authenticate(context.Background(), withCert(leaf.cert))
	var ie *strategies.InvalidError
	if !errors.As(err, &ie) || ie.Reason != strategies.ReasonExpired || !ie.Final {
		t.Errorf("after expiry: %v, want a final expired refusal", err)
	}
}

// TestIntermediates: a chain through an intermediate the client sends.
func TestIntermediates(t *testing.T) {
	ca := newIssuer(t, nil, "ca", nil)
	mid := newIssuer(t, ca, "mid", func(c *x509.Certificate) { c.IsCA = true })
	leaf := newIssuer(t, mid, "partner-a", nil)
	s := newStrategy(t, ca, &config.Strategy{}, nil)
	if id, err := s.Authenticate(context.Background(), withCert(leaf.cert, mid.cert)); err != nil || id.Subject != "partner-a" {
		t.Fatalf("leaf + intermediate: %v, %v", id, err)
	}
	if _, err := s.Authenticate(context.Background(), withCert(leaf.cert)); !errors.Is(err, strategies.ErrInvalidCredentials) {
		t.Errorf("leaf without its intermediate: %v, want refused", err)
	}
}

// BenchmarkHandshake compares a TLS 1.3 handshake that presents a client
// certificate (the listener with client_ca_file) with a plain one, and
// the strategy's chain check, uncached and cached.
func BenchmarkHandshake(b *testing.B) {
	ca := newIssuer(b, nil, "ca", nil)
	server := newIssuer(b, ca, "gateway.test", nil)
	client := newIssuer(b, ca, "partner-a", nil)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	handshake := func(b *testing.B, clientAuth tls.ClientAuthType, certs []tls.Certificate) {
		srv := &tls.Config{Certificates: []tls.Certificate{server.tlsCert()}, ClientAuth: clientAuth, MinVersion: tls.VersionTLS12}
		if clientAuth == tls.RequestClientCert {
			srv.ClientCAs = roots // named in the request, as the gateway does
		}
		cli := &tls.Config{RootCAs: roots, ServerName: "gateway.test", Certificates: certs}
		for b.Loop() {
			c1, c2 := net.Pipe()
			errc := make(chan error, 1)
			go func() { errc <- tls.Server(c1, srv).Handshake() }()
			if err := tls.Client(c2, cli).Handshake(); err != nil {
				b.Fatal(err)
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			c1.Close()
			c2.Close()
		}
	}
	b.Run("tls", func(b *testing.B) { handshake(b, tls.NoClientCert, nil) })
	b.Run("tls-asks-no-cert", func(b *testing.B) { handshake(b, tls.RequestClientCert, nil) })
	b.Run("mtls", func(b *testing.B) { handshake(b, tls.RequestClientCert, []tls.Certificate{client.tlsCert()}) })
	s := newStrategy(b, ca, &config.Strategy{}, nil)
	b.Run("verify-uncached", func(b *testing.B) {
		r := withCert(client.cert)
		for b.Loop() {
			clear(s.cache)
			if _, err := s.Authenticate(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify-cached", func(b *testing.B) {
		r := withCert(client.cert)
		for b.Loop() {
			if _, err := s.Authenticate(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTwoCommonNames: a certificate whose subject holds two CN attributes
// names no one identity: Go reads the last, OpenSSL-based readers of the
// same certificate (nginx's $ssl_client_s_dn_cn, the subject DN forwarded
// to the upstream) the first. A CA that copies a requested subject after
// checking its first CN would otherwise sign "partner-a" and let it in as
// "admin". Refused, finally, with or without allowed_subjects; a single CN
// still passes.
func TestTwoCommonNames(t *testing.T) {
	ca := newIssuer(t, nil, "Test CA", nil)
	oid := []int{2, 5, 4, 3}
	two := newIssuer(t, ca, "", func(c *x509.Certificate) {
		c.Subject = pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oid, Value: "partner-a"}, {Type: oid, Value: "admin"}}}
		c.DNSNames = nil
	})
	one := newIssuer(t, ca, "admin", nil)
	for _, allowed := range [][]string{{"admin"}, nil} {
		s := newStrategy(t, ca, &config.Strategy{SubjectFrom: "cn", AllowedSubjects: allowed}, time.Now)
		id, err := s.Authenticate(context.Background(), withCert(two.cert))
		var ie *strategies.InvalidError
		if !errors.As(err, &ie) || !ie.Final {
			got := ""
			if id != nil {
				got = id.Subject
			}
			t.Errorf("allowed %v: two CNs: identity %q, error %v; want a final refusal", allowed, got, err)
		}
		if id, err := s.Authenticate(context.Background(), withCert(one.cert)); err != nil || id.Subject != "admin" {
			t.Errorf("allowed %v: one CN: %v, %v", allowed, id, err)
		}
	}
}
