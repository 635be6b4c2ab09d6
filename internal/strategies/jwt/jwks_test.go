package jwt

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/jwks"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/api", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// TestNewJWKS: a jwt strategy with jwks_url verifies a provider's JWT
// access tokens with its key set.
func TestNewJWKS(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	sc := &config.Strategy{Type: "jwt", Issuer: p.Issuer, Audience: oidctest.GatewayClientID,
		Algorithms: []string{"RS256"}, JWKSURL: p.JWKSURL, RolesClaim: config.ClaimNames{"roles"}, Leeway: config.Duration(30 * time.Second)}
	s, err := New("idp", sc, strategies.Deps{KeySets: jwks.NewSets(nil, jwks.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	tok := p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret, "data:read")
	id, err := s.Authenticate(context.Background(), bearer(tok))
	if err != nil || id.Subject != oidctest.JWTServiceClientID || id.Strategy != "idp" ||
		!slices.Equal(id.Roles, []string{oidctest.ServiceRole}) || !slices.Equal(id.Scopes, []string{"data:read"}) {
		t.Fatalf("Authenticate = %+v, %v", id, err)
	}
	if c, ok := s.(interface{ CredentialHeaders() []string }); !ok || !slices.Equal(c.CredentialHeaders(), []string{"Authorization"}) {
		t.Fatal("the jwks jwt strategy does not name its credential header")
	}

	t.Run("technical while the key set is unreachable", func(t *testing.T) {
		down := oidctest.Start(t, oidctest.Options{})
		tok := down.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret)
		down.Stop()
		sc := *sc
		sc.Issuer, sc.JWKSURL = down.Issuer, down.JWKSURL
		s, err := New("idp", &sc, strategies.Deps{KeySets: jwks.NewSets(nil, jwks.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.Authenticate(context.Background(), bearer(tok))
		if id != nil || err == nil || errors.Is(err, strategies.ErrInvalidCredentials) {
			t.Fatalf("Authenticate = %+v, %v; want a technical error", id, err)
		}
	})
	t.Run("config errors", func(t *testing.T) {
		for _, mod := range []func(*config.Strategy){
			func(sc *config.Strategy) { sc.Algorithms = []string{"HS256"} },
			func(sc *config.Strategy) { sc.JWKSURL = "" },
			func(sc *config.Strategy) { sc.Audience = "" },
			func(sc *config.Strategy) { sc.Issuer = "" },
		} {
			bad := *sc
			mod(&bad)
			if _, err := New("idp", &bad, strategies.Deps{KeySets: jwks.NewSets(nil, jwks.Options{})}); err == nil {
				t.Errorf("New(%+v) succeeded", bad)
			}
		}
	})
}
