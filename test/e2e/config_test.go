package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Issuer and audience of the test configs.
const (
	testIssuer   = "e2e.issuer"
	testAudience = "e2e.audience"
	testKid      = "hs-1"
)

// userJWTConfig is the token issuer and the HS256 jwt strategy "userJwt"
// that most test configs share; the HMAC secret comes from ${ACCESS_SECRET}.
const userJWTConfig = `tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  access_ttl: 15m
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
`

// standardConfig is the config most tests run on: an admin route under an
// authenticated API, a public route, one HS256 jwt strategy with a
// distinctive name, and an auth-failure limit high enough never to trip
// (the rate-limit test has its own config). The HMAC secret comes from
// ${ACCESS_SECRET}.
const standardConfig = "\n" + userJWTConfig + `routes:
  - name: admin
    path: /api/admin
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [admin]
  - name: api
    path: /api
    upstream: UPSTREAM
    strategies: [userJwt]
  - name: public
    path: /public
    upstream: UPSTREAM
    public: true
rate_limits:
  auth_failures:
    limit: 100000
    period: 1m
`

// startStandard starts an upstream and a gateway on standardConfig in front
// of it, and returns them with the HMAC secret.
func startStandard(t *testing.T) (*Gateway, *Upstream, string) {
	t.Helper()
	up := newUpstream(t, 0)
	secret := randomSecret(t)
	g := startGateway(t, strings.ReplaceAll(standardConfig, "UPSTREAM", up.URL), map[string]string{"ACCESS_SECRET": secret})
	return g, up, secret
}

// rsaKeys are generated once per run: 2048-bit generation is slow on a busy
// machine, and the tests only need keys nobody else has.
var rsaKeys = sync.OnceValues(func() ([3]*rsa.PrivateKey, error) {
	var ks [3]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return ks, err
		}
		ks[i] = k
	}
	return ks, nil
})

// testRSAKeys returns three RSA keys: [0] signs (private_key_file), [1] is an
// older verify-only key (public_key_file), [2] is configured nowhere.
func testRSAKeys(t *testing.T) [3]*rsa.PrivateKey {
	t.Helper()
	ks, err := rsaKeys()
	if err != nil {
		t.Fatalf("generating RSA keys: %v", err)
	}
	return ks
}

// writePrivatePEM writes k as a PKCS#8 PEM file and returns its path.
func writePrivatePEM(t *testing.T, dir, name string, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// publicPEM is k's public half as a PKIX PEM: what an attacker can download.
func publicPEM(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
