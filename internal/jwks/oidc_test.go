package jwks

import (
	"context"
	"crypto/rsa"
	"errors"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// TestRealProvider verifies a JWT access token of zitadel's OP with the key
// its JWKS endpoint serves.
func TestRealProvider(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	tok := p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret, "data:read")
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Headers[0]
	s, clk := newSet(p.JWKSURL, Options{})
	ctx := context.Background()

	key, err := s.Key(ctx, h.KeyID, h.Algorithm)
	if err != nil {
		t.Fatalf("Key(%q, %q): %v", h.KeyID, h.Algorithm, err)
	}
	if _, ok := key.(*rsa.PublicKey); !ok {
		t.Fatalf("key is %T; want *rsa.PublicKey", key)
	}
	var claims jwt.Claims
	if err := parsed.Claims(key, &claims); err != nil {
		t.Fatalf("verifying the token with the served key: %v", err)
	}
	if claims.Issuer != p.Issuer || claims.Subject != oidctest.JWTServiceClientID {
		t.Fatalf("claims = %+v", claims)
	}

	if _, err := s.Key(ctx, h.KeyID, "ES256"); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("RSA key asked for ES256: %v; want ErrKeyMismatch", err)
	}
	if _, err := s.Key(ctx, "unknown", "RS256"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown kid: %v; want ErrKeyNotFound", err)
	}
	if got := p.JWKSRequests(); got != 1 {
		t.Fatalf("JWKS requests = %d; want 1 (unknown kid within the refresh interval)", got)
	}
	clk.Advance(Options{}.withDefaults().MinRefreshInterval)
	_, _ = s.Key(ctx, "unknown", "RS256")
	_, _ = s.Key(ctx, "unknown-2", "RS256")
	if got := p.JWKSRequests(); got != 2 {
		t.Fatalf("JWKS requests = %d; want 2", got)
	}

	p.Stop() // the provider goes away: the fetched key still verifies
	if _, err := s.Key(ctx, h.KeyID, h.Algorithm); err != nil {
		t.Fatalf("after the provider stopped: %v", err)
	}
}
