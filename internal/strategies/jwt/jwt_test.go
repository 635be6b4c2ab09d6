package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/strategies"

	"github.com/authgateway/authgateway/internal/testutil/cachetest"
	"github.com/authgateway/authgateway/internal/testutil/packtest"
)

type staticKey struct {
	kid, alg string
	key      any
}

// testKeys is a KeySource over fixed keys (the real tokens.KeySet is tested
// in its own package; this keeps the strategy's tests independent of it).
type testKeys []staticKey

func (ks testKeys) Key(_ context.Context, kid, alg string) (any, error) {
	for _, k := range ks {
		if k.kid == kid && k.alg == alg {
			return k.key, nil
		}
	}
	return nil, errors.New("unknown key")
}

var (
	now         = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	hsSecret    = []byte("0123456789abcdef0123456789abcdef")
	rsaKey, _   = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _    = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ = ed25519.GenerateKey(rand.Reader)
)

func keysForTest() testKeys {
	return testKeys{
		{"hs", "HS256", hsSecret}, {"hs384", "HS384", hsSecret}, {"hs512", "HS512", hsSecret},
		{"rs", "RS256", &rsaKey.PublicKey}, {"ps", "PS256", &rsaKey.PublicKey},
		{"es", "ES256", &ecKey.PublicKey}, {"ed", "EdDSA", edKey.Public()},
	}
}

func newTestJWT(t testing.TB, mod func(*Options)) *Verifier {
	t.Helper()
	o := Options{
		Name: "jwt", Keys: keysForTest(),
		Algorithms: []string{"HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA"},
		Issuer:     "iss.example", Audience: "aud.example", Leeway: 30 * time.Second,
		MaxLifetime: 15 * time.Minute, RolesClaim: "realm_access.roles",
		Now: func() time.Time { return now },
	}
	if mod != nil {
		mod(&o)
	}
	s, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(mod func(gojwt.MapClaims)) gojwt.MapClaims {
	c := gojwt.MapClaims{
		"iss": "iss.example", "aud": "aud.example", "sub": "alice",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "jti": "j1",
		"email": "alice@example.com", "scope": "read write",
		"realm_access": map[string]any{"roles": []any{"admin", "reader"}},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(t testing.TB, m gojwt.SigningMethod, kid string, key any, c gojwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := gojwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestJWTVerify(t *testing.T) {
	s := newTestJWT(t, nil)
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))})
	valid := sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(nil), nil)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name   string
		token  string
		reason strategies.Reason // "" = valid; "*" = invalid for any reason
	}{
		{"HS256 valid", valid, ""},
		{"HS384 valid", sign(t, gojwt.SigningMethodHS384, "hs384", hsSecret, claims(nil), nil), ""},
		{"HS512 valid", sign(t, gojwt.SigningMethodHS512, "hs512", hsSecret, claims(nil), nil), ""},
		{"RS256 valid", sign(t, gojwt.SigningMethodRS256, "rs", rsaKey, claims(nil), nil), ""},
		{"PS256 valid", sign(t, gojwt.SigningMethodPS256, "ps", rsaKey, claims(nil), nil), ""},
		{"ES256 valid", sign(t, gojwt.SigningMethodES256, "es", ecKey, claims(nil), nil), ""},
		{"EdDSA valid", sign(t, gojwt.SigningMethodEdDSA, "ed", edKey, claims(nil), nil), ""},
		{"typ at+jwt accepted", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(nil), map[string]any{"typ": "at+jwt"}), ""},
		{"expired", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) {
			c["iat"] = now.Add(-20 * time.Minute).Unix()
			c["exp"] = now.Add(-10 * time.Minute).Unix()
		}), nil), "expired"},
		{"expired within leeway is accepted", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) {
			c["exp"] = now.Add(-10 * time.Second).Unix()
		}), nil), ""},
		{"missing exp", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { delete(c, "exp") }), nil), "missing_claim"},
		{"missing iss", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { delete(c, "iss") }), nil), "missing_claim"},
		{"missing aud", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { delete(c, "aud") }), nil), "missing_claim"},
		{"wrong iss", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { c["iss"] = "evil" }), nil), "wrong_issuer"},
		{"wrong aud", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { c["aud"] = []string{"other"} }), nil), "wrong_audience"},
		{"aud array containing ours", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { c["aud"] = []string{"other", "aud.example"} }), nil), ""},
		{"future nbf", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), nil), "not_yet_valid"},
		{"future iat", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { c["iat"] = now.Add(5 * time.Minute).Unix() }), nil), "not_yet_valid"},
		{"lifetime over max", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) {
			c["iat"] = now.Add(-time.Minute).Unix()
			c["exp"] = now.Add(time.Hour).Unix()
		}), nil), "lifetime_too_long"},
		{"missing iat with max lifetime", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { delete(c, "iat") }), nil), "missing_iat"},
		{"missing sub", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { delete(c, "sub") }), nil), "missing_sub"},
		{"refresh token by claim", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { c["type"] = "refresh" }), nil), "wrong_token_type"},
		{"refresh token by typ", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(nil), map[string]any{"typ": "refresh+jwt"}), "wrong_token_type"},
		{"id token (nonce)", sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { c["nonce"] = "n" }), nil), "id_token"},
		{"wrong kid", sign(t, gojwt.SigningMethodHS256, "nope", hsSecret, claims(nil), nil), "unknown_key"},
		{"no kid", sign(t, gojwt.SigningMethodHS256, "", hsSecret, claims(nil), nil), "unknown_key"},
		{"kid traversal", sign(t, gojwt.SigningMethodHS256, "../../../../dev/null", []byte(""), claims(nil), nil), "unknown_key"},
		{"kid of another algorithm (RS kid, HS alg)", sign(t, gojwt.SigningMethodHS256, "rs", hsSecret, claims(nil), nil), "unknown_key"},
		{"HS256 signed with the RSA public key PEM", sign(t, gojwt.SigningMethodHS256, "rs", rsaPubPEM, claims(nil), nil), "unknown_key"},
		{"wrong secret", sign(t, gojwt.SigningMethodHS256, "hs", []byte("another-secret-another-secret-xx"), claims(nil), nil), "bad_signature"},
		{"alg none", b64(`{"alg":"none","typ":"JWT","kid":"hs"}`) + "." + parts[1] + ".", "*"},
		{"alg none uppercase", b64(`{"alg":"NONE","kid":"hs"}`) + "." + parts[1] + ".", "*"},
		{"tampered payload", parts[0] + "." + b64(`{"iss":"iss.example","aud":"aud.example","sub":"root","exp":9999999999,"iat":1}`) + "." + parts[2], "bad_signature"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "bad_signature"},
		{"garbage", "not-a-token", "malformed_token"},
		{"garbage three parts", "a.b.c", "malformed_token"},
		{"oversize", strings.Repeat("a", strategies.MaxTokenBytes+1), "oversize_token"},
		{"jku header ignored (key not fetched)", sign(t, gojwt.SigningMethodRS256, "attacker", mustKey(), claims(nil), map[string]any{"jku": "http://127.0.0.1:1/jwks"}), "unknown_key"},
		{"embedded jwk header ignored", sign(t, gojwt.SigningMethodRS256, "", mustKey(), claims(nil), map[string]any{"jwk": map[string]any{"kty": "RSA"}}), "unknown_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := s.Verify(context.Background(), tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if id.Subject != "alice" || id.Email != "alice@example.com" || !slices.Equal(id.Roles, []string{"admin", "reader"}) ||
					!slices.Equal(id.Scopes, []string{"read", "write"}) || id.Strategy != "jwt" || id.TokenID != "j1" {
					t.Errorf("identity = %+v", id)
				}
				return
			}
			if !errors.Is(err, strategies.ErrInvalidCredentials) {
				t.Fatalf("want invalid (%s), got id=%v err=%v", tt.reason, id, err)
			}
			if got := reasonOf(err); tt.reason != "*" && got != tt.reason {
				t.Errorf("reason = %q, want %q (err %v)", got, tt.reason, err)
			}
		})
	}
}

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestJWTPinnedAlgorithms(t *testing.T) {
	s := newTestJWT(t, func(o *Options) { o.Algorithms = []string{"RS256"} })
	tok := sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(nil), nil)
	if _, err := s.Verify(context.Background(), tok); !errors.Is(err, strategies.ErrInvalidCredentials) {
		t.Fatalf("HS256 token on an RS256-only strategy: want invalid, got %v", err)
	}
}

type revokedSet map[string]bool

func (r revokedSet) IsRevoked(_ context.Context, jti string) (bool, error) { return r[jti], nil }

func TestJWTAuthenticateSources(t *testing.T) {
	s := newTestJWT(t, func(o *Options) {
		o.Cookie = "__Host-authgw_access"
		o.Revocations = revokedSet{"revoked": true}
	})
	valid := sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(nil), nil)
	revoked := sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) { c["jti"] = "revoked" }), nil)
	tests := []struct {
		name string
		set  func(r *http.Request)
		want error // nil = identity
	}{
		{"no credentials", func(r *http.Request) {}, strategies.ErrNoCredentials},
		{"basic auth is not ours", func(r *http.Request) { r.Header.Set("Authorization", "Basic YTpi") }, strategies.ErrNoCredentials},
		{"empty bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, strategies.ErrNoCredentials},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+valid) }, nil},
		{"bearer lowercase scheme", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+valid) }, nil},
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "__Host-authgw_access", Value: valid}) }, nil},
		{"other cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session", Value: valid}) }, strategies.ErrNoCredentials},
		{"revoked jti", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+revoked) }, strategies.ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			tt.set(r)
			id, err := s.Authenticate(context.Background(), r)
			if tt.want == nil {
				if err != nil || id == nil {
					t.Fatalf("want identity, got %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func BenchmarkJWTVerify(b *testing.B) {
	for _, tc := range []struct {
		name string
		m    gojwt.SigningMethod
		kid  string
		key  any
	}{
		{"HS256", gojwt.SigningMethodHS256, "hs", hsSecret},
		{"ES256", gojwt.SigningMethodES256, "es", ecKey},
		{"RS256", gojwt.SigningMethodRS256, "rs", rsaKey},
		{"EdDSA", gojwt.SigningMethodEdDSA, "ed", edKey},
	} {
		for _, cache := range []struct {
			name string
			size int
		}{{"uncached", -1}, {"cached", 0}} {
			b.Run(tc.name+"/"+cache.name, func(b *testing.B) {
				s, _ := NewVerifier(Options{Name: "jwt", Keys: keysForTest(), Algorithms: []string{tc.m.Alg()},
					Issuer: "iss.example", Audience: "aud.example", Now: func() time.Time { return now }, CacheSize: cache.size})
				tok := gojwt.NewWithClaims(tc.m, claims(nil))
				tok.Header["kid"] = tc.kid
				raw, _ := tok.SignedString(tc.key)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Verify(context.Background(), raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

type mutableRevocations struct{ revoked map[string]bool }

func (m *mutableRevocations) IsRevoked(_ context.Context, jti string) (bool, error) {
	return m.revoked[jti], nil
}

func TestJWTCacheNeverServesStale(t *testing.T) {
	clock := now
	rev := &mutableRevocations{revoked: map[string]bool{}}
	s := newTestJWT(t, func(o *Options) {
		o.Now = func() time.Time { return clock }
		o.Revocations = rev
		o.Leeway = 0
	})
	tok := sign(t, gojwt.SigningMethodES256, "es", ecKey, claims(func(c gojwt.MapClaims) {
		c["exp"] = now.Add(2 * time.Minute).Unix()
	}), nil)
	ctx := context.Background()
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := cacheLen(s.cache); n != 1 {
		t.Fatalf("cache len = %d, want 1", n)
	}
	id, err := s.Verify(ctx, tok)
	if err != nil || id.Subject != "alice" {
		t.Fatalf("cached verify: %v %v", id, err)
	}
	// A mutation of the returned identity must not leak into the cache.
	id.Subject = "mallory"
	if id2, _ := s.Verify(ctx, tok); id2.Subject != "alice" {
		t.Fatalf("cache entry was mutated through a returned identity")
	}
	// A tampered variant is a different string: full verification, refused.
	if _, err := s.Verify(ctx, tok[:len(tok)-2]+"AA"); !errors.Is(err, strategies.ErrInvalidCredentials) {
		t.Fatalf("tampered signature accepted: %v", err)
	}
	// Revocation applies to cached tokens at once.
	rev.revoked["j1"] = true
	if _, err := s.Verify(ctx, tok); reasonOf(err) != "revoked" {
		t.Fatalf("revoked cached token: got %v", err)
	}
	rev.revoked["j1"] = false
	// Expiry applies to cached tokens on time.
	clock = now.Add(2*time.Minute + time.Second)
	if _, err := s.Verify(ctx, tok); reasonOf(err) != "expired" {
		t.Fatalf("expired cached token: got %v", err)
	}
}

// cacheLen counts the entries of c.
func cacheLen(c *tokenCache) int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}

// reasonOf is the reason of an invalid-credentials error, or "".
func reasonOf(err error) strategies.Reason {
	if ie := (*strategies.InvalidError)(nil); errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(160, time.Minute)
	for i := range 10_000 {
		c.put(strings.Repeat("x", i%50)+string(rune('a'+i%26))+time.Duration(i).String(), &strategies.Identity{Subject: "s"}, now.Add(time.Minute), now)
	}
	if n := cacheLen(c); n > 200 {
		t.Fatalf("cache grew to %d entries, bound is 200 (160 and a quarter)", n)
	}
	c.put("expired", &strategies.Identity{}, now.Add(-time.Second), now)
	if _, ok := c.get("expired", now); ok {
		t.Fatal("an already-expired token was cached")
	}
}

// TestTokenCacheHoldsItsSize: as many distinct tokens as the cache's size
// are all kept, however they fall over the shards: at exactly 10,000 live
// tokens (10,000 sessions) no token is evicted to pay a signature check again.
func TestTokenCacheHoldsItsSize(t *testing.T) {
	for range 5 { // a new hash seed each time
		c := newTokenCache(10_000, time.Hour)
		for i := range 10_000 {
			c.put("tok-"+strconv.Itoa(i), &strategies.Identity{Subject: "s"}, now.Add(time.Hour), now)
		}
		if n := cacheLen(c); n != 10_000 {
			t.Fatalf("%d of 10000 tokens kept", n)
		}
	}
}

// TestTokenCacheDropsExpired: tokens that expired leave the cache as new
// ones come in, long before it is full: renewed sessions do not fill it
// with dead entries for the collector to mark.
func TestTokenCacheDropsExpired(t *testing.T) {
	c := newTokenCache(10_000, time.Hour)
	for i := range 1000 {
		c.put("old-"+strconv.Itoa(i), &strategies.Identity{Subject: "s"}, now.Add(time.Minute), now)
	}
	later := now.Add(2 * time.Minute)
	for i := range 1000 {
		c.put("new-"+strconv.Itoa(i), &strategies.Identity{Subject: "s"}, later.Add(time.Hour), later)
	}
	if n := cacheLen(c); n > 1200 {
		t.Fatalf("%d entries after 1000 expired and 1000 new; want the expired mostly gone (≤ 1200)", n)
	}
	for i := range 1000 {
		if _, ok := c.get("new-"+strconv.Itoa(i), later); !ok {
			t.Fatalf("live token new-%d dropped", i)
		}
	}
}

// TestTokenCacheCopiesItsKey: a token read out of a larger string (the
// Cookie header with both session cookies) is cached as a copy, so the
// entry does not keep the whole header alive.
func TestTokenCacheCopiesItsKey(t *testing.T) {
	c := newTokenCache(10, time.Hour)
	header := "__Host-authgw_refresh=" + strings.Repeat("r", 800) + "; __Host-authgw_access=tok"
	tok := header[strings.LastIndexByte(header, '=')+1:]
	c.put(tok, &strategies.Identity{Subject: "s"}, now.Add(time.Hour), now)
	for i := range c.shards {
		for k := range c.shards[i].m {
			if k != tok {
				t.Fatalf("cached key %q; want %q", k, tok)
			}
			if unsafe.StringData(k) == unsafe.StringData(tok) {
				t.Fatal("the cache's key shares the header's memory")
			}
		}
	}
	if _, ok := c.get(tok, now); !ok {
		t.Fatal("the copied key does not find the token")
	}
}

// TestTokenCachePacksIdentity: a cached token's identity reads as it was
// verified, but its strings (key, subject, email, client, jti, roles,
// scopes) all lie in one block with the key, and its roles and scopes in
// one list: the strings the JSON decoder made, one object each, are not
// kept alive by the cache.
func TestTokenCachePacksIdentity(t *testing.T) {
	c := newTokenCache(10, time.Hour)
	fresh := func(s string) string { return strings.Clone(s) }
	tok := fresh("hdr.payload.sig")
	in := &strategies.Identity{
		Subject: fresh("alice"), Email: fresh("alice@example.test"), ClientID: fresh("cli"), TokenID: fresh("jti-1"),
		Strategy: "jwt", Roles: []string{fresh("admin"), fresh("ops")}, Scopes: []string{fresh("read")},
		ExpiresAt: now.Add(time.Hour),
	}
	want := *in
	want.Roles, want.Scopes = slices.Clone(in.Roles), slices.Clone(in.Scopes)
	c.put(tok, in, in.ExpiresAt, now)

	got, ok := c.get(tok, now)
	if !ok {
		t.Fatal("not cached")
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("cached identity %+v; want %+v", *got, want)
	}
	var key string
	for i := range c.shards {
		for k := range c.shards[i].m {
			key = k
		}
	}
	packtest.OneBlock(t, "cached identity", append([]string{key, got.Subject, got.Email, got.ClientID, got.TokenID}, append(got.Roles, got.Scopes...)...))
	packtest.OneArray(t, "roles and scopes", got.Roles, got.Scopes)
	// The caller's identity is untouched.
	if unsafe.StringData(in.Subject) == unsafe.StringData(got.Subject) || in.Roles[0] != "admin" {
		t.Fatal("put changed or shares the caller's identity")
	}
}

// TestTokenCacheSpreadsExpiry: tokens cached at the same moment do not all
// fall due for re-verification at once, and none outlives maxAge.
func TestTokenCacheSpreadsExpiry(t *testing.T) {
	const maxAge = 5 * time.Minute
	c := newTokenCache(10_000, maxAge)
	for i := range 1000 {
		c.put(fmt.Sprintf("tok-%d", i), &strategies.Identity{Subject: "s"}, now.Add(time.Hour), now)
	}
	var until []time.Time
	for i := range c.shards {
		for _, e := range c.shards[i].m {
			until = append(until, e.until)
		}
	}
	cachetest.CheckExpirySpread(t, now, maxAge, until)
}

// TestTokenCacheDefersClaims: a cached token's claims are held as its
// payload, not as a map, and read the same on a cache hit as on the first
// verification, decoded once however many requests read them.
func TestTokenCacheDefersClaims(t *testing.T) {
	s := newTestJWT(t, nil)
	tok := sign(t, gojwt.SigningMethodES256, "es", ecKey, claims(func(c gojwt.MapClaims) {
		c["tenant"] = "a"
		c["org"] = map[string]any{"id": "o-1"}
	}), nil)
	ctx := context.Background()
	first, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.cache.shards {
		for _, e := range s.cache.shards[i].m {
			if e.id.Claims != nil || e.id.DeferredClaims == nil {
				t.Fatalf("cache entry holds claims %v, deferred %v; want only the deferred payload", e.id.Claims, e.id.DeferredClaims)
			}
		}
	}
	hit, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(hit.ClaimMap(), first.ClaimMap()) || hit.ClaimMap()["tenant"] != "a" {
		t.Fatalf("claims on a cache hit %v; first verification %v", hit.ClaimMap(), first.ClaimMap())
	}
	again, _ := s.Verify(ctx, tok)
	if reflect.ValueOf(again.ClaimMap()).Pointer() != reflect.ValueOf(hit.ClaimMap()).Pointer() {
		t.Error("the claims were decoded again for another request")
	}
}
