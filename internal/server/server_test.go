package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func serialOf(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test reads the served certificate
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestReloadSwapsCertificateAndRoutes: a reload picks up a new TLS
// certificate and a new route without a restart; a broken edit keeps both.
func TestReloadSwapsCertificateAndRoutes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "up "+r.URL.Path) }))
	defer up.Close()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1)
	listen := freeAddr(t)
	cfgPath := filepath.Join(dir, "gw.yaml")
	base := `server:
  listen: "` + listen + `"
  admin_listen: ""
  tls: {cert_file: ` + certFile + `, key_file: ` + keyFile + `}
routes:
  - {name: a, path: /a, upstream: "` + up.URL + `", public: true}
`
	app := appFromFile(t, cfgPath, base)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	defer func() { cancel(); <-done }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}} //nolint:gosec // self-signed test certificate
	get := func(path string) int {
		t.Helper()
		var code int
		poll.Until(t, time.Second, "gateway reachable", func() error {
			resp, err := client.Get("https://" + listen + path)
			if err != nil {
				return err
			}
			resp.Body.Close()
			code = resp.StatusCode
			return nil
		})
		return code
	}
	if got := get("/a"); got != 200 {
		t.Fatalf("/a = %d", got)
	}
	if got := get("/b"); got != 404 {
		t.Fatalf("/b before reload = %d, want 404", got)
	}
	if s := serialOf(t, listen); s != 1 {
		t.Fatalf("serial = %d, want 1", s)
	}

	// New certificate and a new route.
	writeCert(t, certFile, keyFile, 2)
	withB := base + `  - {name: b, path: /b, upstream: "` + up.URL + `", public: true}` + "\n"
	_ = os.WriteFile(cfgPath, []byte(withB), 0o600)
	if err := app.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if s := serialOf(t, listen); s != 2 {
		t.Fatalf("serial after reload = %d, want 2", s)
	}
	if got := get("/b"); got != 200 {
		t.Fatalf("/b after reload = %d, want 200", got)
	}

	// A broken edit (and a broken certificate) changes nothing.
	_ = os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	_ = os.WriteFile(cfgPath, []byte(withB+"routes: [\n"), 0o600)
	err := app.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gw.yaml:") {
		t.Fatalf("broken reload: err = %v, want a file:line error", err)
	}
	if s := serialOf(t, listen); s != 2 {
		t.Fatalf("serial after failed reload = %d, want 2", s)
	}
	if got := get("/b"); got != 200 {
		t.Fatalf("/b after failed reload = %d, want 200", got)
	}
	_ = os.WriteFile(cfgPath, []byte(withB), 0o600)
	if err := app.Reload(context.Background()); err == nil {
		t.Fatal("reload with an unreadable certificate succeeded")
	}
	if s := serialOf(t, listen); s != 2 {
		t.Fatalf("serial after bad certificate = %d, want 2", s)
	}
}
