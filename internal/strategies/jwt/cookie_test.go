package jwt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// TestJWTCookieIdentityIsMarked: an identity from the session cookie says
// so (the gateway refuses cross-origin unsafe requests for it), one from a
// bearer token does not — also when the same token was verified (and
// cached) from the cookie first, and the other way round.
func TestJWTCookieIdentityIsMarked(t *testing.T) {
	s := newTestJWT(t, func(o *Options) { o.Cookie = "__Host-authgw_access" })
	tok := sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(nil), nil)
	cookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "__Host-authgw_access", Value: tok}) }
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	both := func(r *http.Request) { cookie(r); bearer(r) }
	for _, step := range []struct {
		name       string
		set        func(*http.Request)
		fromCookie bool
	}{
		{"cookie", cookie, true},
		{"bearer after the cookie (cached)", bearer, false},
		{"cookie again (cached)", cookie, true},
		{"bearer and cookie: the bearer token is the credential", both, false},
		{"cookie after the bearer", cookie, true},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		step.set(r)
		id, err := s.Authenticate(context.Background(), r)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if id.FromCookie != step.fromCookie {
			t.Errorf("%s: FromCookie = %v, want %v", step.name, id.FromCookie, step.fromCookie)
		}
	}
}

// BenchmarkJWTAuthenticateSource compares a cached token sent as the
// session cookie (whose identity is copied to be marked) with the same
// token as a bearer token, in one run.
func BenchmarkJWTAuthenticateSource(b *testing.B) {
	s, err := NewVerifier(Options{Name: "jwt", Keys: keysForTest(), Algorithms: []string{"HS256"},
		Issuer: "iss.example", Audience: "aud.example", Cookie: "__Host-authgw_access", Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	signed := gojwt.NewWithClaims(gojwt.SigningMethodHS256, claims(nil))
	signed.Header["kid"] = "hs"
	tok, err := signed.SignedString(hsSecret)
	if err != nil {
		b.Fatal(err)
	}
	for _, src := range []struct {
		name string
		set  func(*http.Request)
	}{
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }},
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "__Host-authgw_access", Value: tok}) }},
	} {
		b.Run(src.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			src.set(r)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Authenticate(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
