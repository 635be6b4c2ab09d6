package proxy

import (
	"net/http"
	"testing"

	"github.com/authgateway/authgateway/internal/strategies"
)

// TestClientCertHeaders: the certificate headers describe the verified
// certificate only; a client's copies, in any spelling, never survive.
func TestClientCertHeaders(t *testing.T) {
	h := http.Header{}
	for _, name := range []string{"X-Auth-Client-Cert-Sha256", "X_Auth_Client_Cert_Subject", "X-Forwarded-Client-Cert",
		"X-Ssl-Client-Cert", "X-Ssl-Client-S-Dn", "X_SSL_Client_Verify", "X-Client-Cert", "X-Client-Cert-Chain"} {
		h[name] = []string{"forged"}
	}
	stripInboundHeaders(h, nil)
	if len(h) != 0 {
		t.Fatalf("left after stripping: %v", h)
	}
	setIdentityOn(h, &strategies.Identity{Subject: "partner-a", Strategy: "partners",
		ClientCert: &strategies.ClientCert{Fingerprint: "ab12", Subject: "CN=partner-a"}})
	if got := h.Get(HeaderClientCertSHA256); got != "ab12" {
		t.Errorf("%s = %q, want ab12", HeaderClientCertSHA256, got)
	}
	if got := h.Get(HeaderClientCertSubject); got != "CN=partner-a" {
		t.Errorf("%s = %q, want CN=partner-a", HeaderClientCertSubject, got)
	}
	h = http.Header{}
	setIdentityOn(h, &strategies.Identity{Subject: "svc", Strategy: "jwt"})
	if _, ok := h[HeaderClientCertSHA256]; ok {
		t.Errorf("certificate header without a certificate: %v", h)
	}
}
