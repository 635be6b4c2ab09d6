package strategies

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTCookieIdentityIsMarked: an identity from the session cookie says
// so (the gateway refuses cross-origin unsafe requests for it), one from a
// bearer token does not — also when the same token was verified (and
// cached) from the cookie first, and the other way round.
func TestJWTCookieIdentityIsMarked(t *testing.T) {
	s := newTestJWT(t, func(o *JWTOptions) { o.Cookie = "__Host-authgw_access" })
	tok := sign(t, jwt.SigningMethodHS256, "hs", hsSecret, claims(nil), nil)
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
