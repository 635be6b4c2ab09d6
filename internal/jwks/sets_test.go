package jwks

import (
	"context"
	"crypto/elliptic"
	"errors"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// signJWS signs payload with key as a compact JWS whose header names kid.
func signJWS(t *testing.T, alg jose.SignatureAlgorithm, key any, kid, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifySignature: the go-oidc KeySet of the login's ID tokens applies
// the key set's rules: the kid's key, fitting the algorithm, public-key
// algorithms only, no short RSA keys.
func TestVerifySignature(t *testing.T) {
	good, short, other := rsaKey(t, 2048), rsaKey(t, 1024), rsaKey(t, 2048)
	ec := ecKey(t, elliptic.P256())
	srv := newKeyServer(t, pub("k1", "RS256", &good.PublicKey), pub("short", "", &short.PublicKey), pub("ec", "", &ec.PublicKey))
	s := New(srv.URL, nil, Options{})
	ctx := context.Background()
	if got, err := s.VerifySignature(ctx, signJWS(t, jose.RS256, good, "k1", `{"sub":"a"}`)); err != nil || string(got) != `{"sub":"a"}` {
		t.Fatalf("VerifySignature = %q, %v; want the payload", got, err)
	}
	for _, tc := range []struct {
		name string
		raw  string
		want error // nil: any error
	}{
		{"another key under the kid", signJWS(t, jose.RS256, other, "k1", `{}`), nil},
		{"unknown kid", signJWS(t, jose.RS256, good, "nope", `{}`), ErrKeyNotFound},
		{"RSA key under 2048 bits", signJWS(t, jose.RS256, short, "short", `{}`), ErrKeyRefused},
		{"algorithm the key does not fit", signJWS(t, jose.PS256, good, "k1", `{}`), ErrKeyMismatch},
		{"HMAC", signJWS(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "k1", `{}`), nil},
		{"not a JWS", "a.b.c", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.VerifySignature(ctx, tc.raw); err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("VerifySignature = %v; want %v", err, tc.want)
			}
		})
	}
}

func TestSetsShareOneSetPerURL(t *testing.T) {
	k := ecKey(t, elliptic.P256())
	srv := newKeyServer(t, pub("k1", "ES256", &k.PublicKey))
	p := NewSets(nil, Options{})
	a, b := p.Get(srv.URL), p.Get(srv.URL)
	if a != b || p.Get(srv.URL+"?other") == a {
		t.Fatal("Get does not answer one Set per URL")
	}
	for _, s := range []*Set{a, b} {
		if _, err := s.Key(context.Background(), "k1", "ES256"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("key set fetched %d times; want once for both users", n)
	}
	var none *Sets
	if first, second := none.Get(srv.URL), none.Get(srv.URL); first == second {
		t.Fatal("a nil *Sets shares Sets")
	}
}
