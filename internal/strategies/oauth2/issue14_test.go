package oauth2

import (
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// TestUnverifiedEmailNotInIdentity: a user whose provider says the email is
// not verified (false as Keycloak, "false" as Cognito) has no email in the
// identity, from an introspected opaque token and from a JWT access token.
// One the provider says nothing about (zitadel's way) is kept: the strategy
// cannot tell; the login flow requires the statement.
func TestUnverifiedEmailNotInIdentity(t *testing.T) {
	const pw = "user-password"
	users := []oidctest.User{
		{ID: "ursula", Username: "ursula", Password: pw, Email: "ursula@example.com", EmailUnverified: true, EmailVerifiedClaim: false},
		{ID: "cora", Username: "cora", Password: pw, Email: "cora@example.com", EmailUnverified: true, EmailVerifiedClaim: "false"},
		{ID: "uma", Username: "uma", Password: pw, Email: "uma@example.com", EmailUnverified: true},
		{ID: "vera", Username: "vera", Password: pw, Email: "vera@example.com"},
	}
	p := oidctest.Start(t, oidctest.Options{Users: users})
	s := newStrategy(t, gatewayConfig(p, 0), strategies.Deps{})
	for _, u := range users {
		want := u.Email
		if u.EmailVerifiedClaim != nil {
			want = ""
		}
		for _, jwtAccess := range []bool{false, true} {
			kind := "opaque"
			if jwtAccess {
				kind = "jwt"
			}
			t.Run(u.Username+"/"+kind, func(t *testing.T) {
				access, _ := userTokensOf(t, p, u.Username, pw, jwtAccess)
				if jwtAccess != (strings.Count(access, ".") == 2) {
					t.Fatalf("access token kind is not %s", kind)
				}
				if id := mustAccept(t, s, access); id.Subject != u.ID || id.Email != want {
					t.Fatalf("identity = %+v; want subject %s, email %q", id, u.ID, want)
				}
			})
		}
	}
}

// TestIntrospectionWithoutIssuer: the zitadel example OP, unchanged, leaves
// iss out of introspection answers. Its endpoint is the configured issuer's
// (discovered from issuer_url, or configured beside it): accepted. An answer
// that names another issuer is refused.
func TestIntrospectionWithoutIssuer(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{IntrospectionWithoutIssuer: true})
	q := oidctest.Start(t, oidctest.Options{}) // adds its iss
	pTok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read")
	qTok := q.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read")
	explicit := gatewayConfig(p, 0)
	explicit.IntrospectionURL, explicit.JWKSURL = p.IntrospectionURL, p.JWKSURL
	noIssuerURL := gatewayConfig(p, 0)
	noIssuerURL.IssuerURL, noIssuerURL.Issuer, noIssuerURL.IntrospectionURL = "", p.Issuer, p.IntrospectionURL
	cross := gatewayConfig(p, 0) // expects p's issuer, asks q
	cross.IntrospectionURL, cross.JWKSURL = q.IntrospectionURL, p.JWKSURL
	for _, tc := range []struct {
		name   string
		sc     *config.Strategy
		tok    string
		reason strategies.Reason // "" = accepted
	}{
		{"discovered from issuer_url", gatewayConfig(p, 0), pTok, ""},
		{"introspection_url beside issuer_url", explicit, pTok, ""},
		{"introspection_url beside issuer", noIssuerURL, pTok, ""},
		{"an answer with the issuer's iss", gatewayConfig(q, 0), qTok, ""},
		{"an answer naming another issuer", cross, qTok, "wrong_issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStrategy(t, tc.sc, strategies.Deps{})
			if tc.reason != "" {
				if got := reasonOf(wantInvalid(t, s, tc.tok)); got != tc.reason {
					t.Fatalf("reason = %q; want %q", got, tc.reason)
				}
				return
			}
			if id := mustAccept(t, s, tc.tok); id.Subject != oidctest.ServiceClientID {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
}
