package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// idpConfig: an oauth2 strategy that also runs the browser login.
const idpConfig = `
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  signing_keys:
    - kid: hs-1
      algorithm: HS256
      secret: ${ACCESS_SECRET}
strategies:
  sso:
    type: oauth2
    issuer_url: SSO_ISSUER
    client_id: gateway
    client_secret: ${SSO_SECRET}
    audience: gateway
    redirect_url: http://gateway.test/auth/callback
    login: true
routes:
  - {name: sso, path: /sso, upstream: UPSTREAM, strategies: [sso]}
`

// TestOneKeySetForLoginAndStrategy (issue 15): the login's ID-token check
// and the oauth2 strategy's JWT check use one cached key set of the
// provider: one fetch serves both (go-oidc's key set of the login's own
// fetched it again).
func TestOneKeySetForLoginAndStrategy(t *testing.T) {
	t.Parallel()
	op := oidctest.Start(t, oidctest.Options{})
	op.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret,
		Introspect: true, RedirectURIs: []string{ssoCallback}})
	up := newUpstream(t, 0)
	cfg := strings.NewReplacer("SSO_ISSUER", op.Issuer, "UPSTREAM", up.URL).Replace(idpConfig)
	g := &ssoGateway{op: op, Gateway: startGateway(t, cfg, map[string]string{
		"ACCESS_SECRET": randomSecret(t), "SSO_SECRET": oidctest.GatewayClientSecret})}

	tok := op.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret, "data:read")
	if r := g.Do(t, req("GET", "/sso/x", bearer(tok))); r.Status != http.StatusOK {
		t.Fatalf("JWT access token: status %d (%s)", r.Status, r.Body)
	}
	if r := g.login(t, oidctest.UserName, oidctest.UserPassword); r.Status != http.StatusOK || len(sessionCookies(r)) != 2 {
		t.Fatalf("login: status %d, session cookies %v (%s)", r.Status, sessionCookies(r), truncate(r.Body))
	}
	if n := op.JWKSRequests(); n != 1 {
		t.Fatalf("the provider's key set was fetched %d times; want once for the strategy and the login", n)
	}
}
