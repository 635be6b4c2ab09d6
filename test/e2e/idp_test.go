package e2e

import (
	"net/http"
	"testing"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// TestOneKeySetForLoginAndStrategy (issue 15): the login's ID-token check
// and the oauth2 strategy's JWT check use one cached key set of the
// provider: one fetch serves both (go-oidc's key set of the login's own
// fetched it again).
func TestOneKeySetForLoginAndStrategy(t *testing.T) {
	t.Parallel()
	g := startSSOGateway(t, &atkSuite{up: newUpstream(t, 0), hsSecret: []byte(randomSecret(t))})
	tok := g.op.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret, "data:read")
	if r := g.Do(t, req("GET", "/sso/x", bearer(tok))); r.Status != http.StatusOK {
		t.Fatalf("JWT access token: status %d (%s)", r.Status, r.Body)
	}
	if r := g.login(t, oidctest.UserName, oidctest.UserPassword); r.Status != http.StatusOK || len(sessionCookies(r)) != 2 {
		t.Fatalf("login: status %d, session cookies %v (%s)", r.Status, sessionCookies(r), truncate(r.Body))
	}
	if n := g.op.JWKSRequests(); n != 1 {
		t.Fatalf("the provider's key set was fetched %d times; want once for the strategy and the login", n)
	}
}
