package tokens

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
	jwtstrategy "github.com/authgateway/authgateway/internal/strategies/jwt"
)

const secret = "0123456789abcdef0123456789abcdef"

func writeKey(t testing.TB, key any) (privFile, pubFile string) {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	privFile = filepath.Join(dir, "key.pem")
	_ = os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	var pub any
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	}
	pder, _ := x509.MarshalPKIXPublicKey(pub)
	pubFile = filepath.Join(dir, "pub.pem")
	_ = os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o600)
	return privFile, pubFile
}

func TestLoadKeySet(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaPriv, rsaPub := writeKey(t, rsaKey)
	smallPriv, _ := writeKey(t, smallRSA)
	p256Priv, _ := writeKey(t, p256)
	p384Priv, _ := writeKey(t, p384)
	edPriv, _ := writeKey(t, edKey)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	_ = os.WriteFile(garbage, []byte("not pem"), 0o600)

	tests := []struct {
		name    string
		key     config.SigningKey
		wantErr string
	}{
		{"HS256", config.SigningKey{Kid: "h", Algorithm: "HS256", Secret: secret}, ""},
		{"short HMAC secret", config.SigningKey{Kid: "h", Algorithm: "HS256", Secret: "short"}, "shorter than 32"},
		{"RS256 private", config.SigningKey{Kid: "r", Algorithm: "RS256", PrivateKeyFile: rsaPriv}, ""},
		{"PS256 private", config.SigningKey{Kid: "p", Algorithm: "PS256", PrivateKeyFile: rsaPriv}, ""},
		{"RS256 verify-only", config.SigningKey{Kid: "r", Algorithm: "RS256", PublicKeyFile: rsaPub}, ""},
		{"RSA under 2048 bits", config.SigningKey{Kid: "r", Algorithm: "RS256", PrivateKeyFile: smallPriv}, "at least 2048"},
		{"ES256", config.SigningKey{Kid: "e", Algorithm: "ES256", PrivateKeyFile: p256Priv}, ""},
		{"ES256 with a P-384 key", config.SigningKey{Kid: "e", Algorithm: "ES256", PrivateKeyFile: p384Priv}, "needs curve P-256"},
		{"ES384", config.SigningKey{Kid: "e", Algorithm: "ES384", PrivateKeyFile: p384Priv}, ""},
		{"EdDSA", config.SigningKey{Kid: "d", Algorithm: "EdDSA", PrivateKeyFile: edPriv}, ""},
		{"RSA key for ES256", config.SigningKey{Kid: "x", Algorithm: "ES256", PrivateKeyFile: rsaPriv}, "does not fit"},
		{"EC key for RS256", config.SigningKey{Kid: "x", Algorithm: "RS256", PrivateKeyFile: p256Priv}, "does not fit"},
		{"not PEM", config.SigningKey{Kid: "x", Algorithm: "RS256", PrivateKeyFile: garbage}, "no PEM block"},
		{"no key read", config.SigningKey{Kid: "x", Algorithm: "RS256", PrivateKeyFile: "/never/read.pem"}, "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := LoadKeySet([]config.SigningKey{withPEM(t, tt.key)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatal("error echoes the secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Round trip: what the set signs, it verifies (verify-only keys cannot sign).
			tok, err := ks.Sign(jwt.MapClaims{"sub": "x"}, "JWT")
			if tt.key.PublicKeyFile != "" {
				if err == nil {
					t.Fatal("verify-only key signed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
				return ks.Key(context.Background(), tk.Header["kid"].(string), tk.Method.Alg())
			}, jwt.WithValidMethods([]string{tt.key.Algorithm})); err != nil {
				t.Fatalf("own token does not verify: %v", err)
			}
		})
	}
}

func TestKeyLookup(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv, _ := writeKey(t, p256)
	ks, err := LoadKeySet([]config.SigningKey{
		withPEM(t, config.SigningKey{Kid: "new", Algorithm: "ES256", PrivateKeyFile: priv}),
		{Kid: "old", Algorithm: "HS256", Secret: secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ks.Key(ctx, "new", "ES256"); err != nil {
		t.Errorf("new/ES256: %v", err)
	}
	if _, err := ks.Key(ctx, "old", "HS256"); err != nil {
		t.Errorf("old/HS256: %v", err)
	}
	for _, c := range []struct{ kid, alg string }{{"new", "HS256"}, {"old", "ES256"}, {"", "ES256"}, {"../etc/passwd", "HS256"}, {"missing", "ES256"}} {
		if _, err := ks.Key(ctx, c.kid, c.alg); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Key(%q, %q) = %v, want ErrUnknownKey", c.kid, c.alg, err)
		}
	}
	if got := ks.Signer().Kid; got != "new" {
		t.Errorf("signer = %q, want the first key", got)
	}
	// The JWKS publishes the asymmetric key only, never the HMAC secret.
	// (Its members, not its text: a random coordinate may spell "old".)
	doc, ok := ks.JWKS()
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(doc, &set); !ok || err != nil {
		t.Fatalf("JWKS = %s, %v", doc, err)
	}
	if len(set.Keys) != 1 || set.Keys[0]["kid"] != "new" || set.Keys[0]["alg"] != "ES256" {
		t.Errorf("JWKS keys = %v", set.Keys)
	}
	for _, k := range set.Keys {
		for _, secret := range []string{"d", "k", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[secret]; ok {
				t.Errorf("JWKS key %v publishes private member %q", k["kid"], secret)
			}
		}
	}
	// A set of one key takes an empty kid; an HMAC-only set publishes no JWKS.
	ks, _ = LoadKeySet([]config.SigningKey{{Kid: "only", Algorithm: "HS256", Secret: secret}})
	if _, err := ks.Key(ctx, "", "HS256"); err != nil {
		t.Errorf("single key, empty kid: %v", err)
	}
	if _, ok := ks.JWKS(); ok {
		t.Error("JWKS published for an HMAC-only set")
	}
}

func TestAccessAndAssertion(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv, _ := writeKey(t, p256)
	iss, err := NewIssuer(config.Tokens{Issuer: "gw", Audience: "app", AccessTTL: config.Duration(15 * time.Minute),
		SigningKeys: []config.SigningKey{withPEM(t, config.SigningKey{Kid: "k", Algorithm: "ES256", PrivateKeyFile: priv})}})
	if err != nil {
		t.Fatal(err)
	}
	strat, err := jwtstrategy.NewVerifier(jwtstrategy.Options{Name: "jwt", Keys: iss.Keys, Algorithms: []string{"ES256"},
		Issuer: "gw", Audience: "app", MaxLifetime: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tok, jti, exp, err := iss.Access(AccessClaims{Subject: "alice", Email: "a@x", Roles: []string{"admin"}, Scopes: []string{"r", "w"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d > 15*time.Minute || d < 14*time.Minute {
		t.Errorf("TTL over access_ttl was not capped: expires in %v", d)
	}
	id, err := strat.Verify(context.Background(), tok)
	if err != nil || id.Subject != "alice" || id.TokenID != jti || id.Email != "a@x" || strings.Join(id.Scopes, " ") != "r w" {
		t.Fatalf("minted token: id=%+v err=%v", id, err)
	}

	a := NewAsserter(iss.Keys, "gw", time.Minute)
	as1, err := a.Assert(&strategies.Identity{Subject: "alice", Strategy: "jwt", Roles: []string{"admin"}}, "app")
	if err != nil {
		t.Fatal(err)
	}
	as2, _ := a.Assert(&strategies.Identity{Subject: "alice", Strategy: "jwt", Roles: []string{"admin"}}, "app")
	if as1 != as2 {
		t.Error("assertion not reused within half its lifetime")
	}
	parsed, err := jwt.Parse(as1, func(tk *jwt.Token) (any, error) { return &p256.PublicKey, nil }, jwt.WithAudience("app"), jwt.WithIssuer("gw"))
	if err != nil || parsed.Header["typ"] != "authgw-assertion+jwt" || parsed.Claims.(jwt.MapClaims)["type"] != "assertion" {
		t.Fatalf("assertion: %v %v", parsed, err)
	}
	// An upstream must not be able to replay the assertion to the gateway.
	if _, err := strat.Verify(context.Background(), as1); !errors.Is(err, strategies.ErrInvalidCredentials) {
		t.Fatalf("assertion accepted as an access token: %v", err)
	}
}

// withPEM reads k's key file into KeyPEM, as config.LoadSecrets does; a
// file that does not exist leaves it empty.
func withPEM(t testing.TB, k config.SigningKey) config.SigningKey {
	t.Helper()
	file := k.PrivateKeyFile
	if file == "" {
		file = k.PublicKeyFile
	}
	if file != "" {
		k.KeyPEM, _ = os.ReadFile(file)
	}
	return k
}
