package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// TestOneReasonPerDenial (issue 15): one denial has one reason id in the
// auth event, whichever strategy finds it. A token of another issuer or for
// another audience is wrong_issuer / wrong_audience from the jwt strategy
// and from an oauth2 strategy's introspection alike (the latter said
// issuer_mismatch / audience_mismatch); a revoked API key and a logged-out
// access token are both revoked (the latter said revoked_token).
func TestOneReasonPerDenial(t *testing.T) {
	t.Parallel()
	s := startAttackSuite(t)
	sso := startSSOGateway(t, s)
	reader := accessClaims("rita", "reader")
	rsTok := func(c map[string]any) string { return s.rs(t, header("RS256", "rs-1"), c) }
	tests := []attack{
		{name: "jwt: a token of another issuer", via: viaMain, raw: req("GET", "/api/x", bearer(rsTok(with(reader, "iss", "https://evil.example")))),
			status: 401, reason: "wrong_issuer", saw: nothing},
		{name: "oauth2 introspection: an answer naming another issuer", via: viaSSO, action: sso.send("wrong_issuer", req("GET", "/cross/x", bearer(sso.serviceToken(t, sso.op)))),
			status: 401, saw: nothing},
		{name: "jwt: a token for another audience", via: viaMain, raw: req("GET", "/api/x", bearer(rsTok(with(reader, "aud", "billing")))),
			status: 401, reason: "wrong_audience", saw: nothing},
		{name: "oauth2 introspection: a token for another audience", via: viaSSO,
			action: sso.send("wrong_audience", req("GET", "/sso/x", bearer(sso.op.ClientCredentialsToken(t, oidctest.OtherClientID, oidctest.OtherClientSecret)))),
			status: 401, saw: nothing},
		{name: "api key: revoked with the CLI", via: viaMain, action: revokedKey, status: 401, saw: nothing},
		{name: "jwt: an access token after /auth/logout", via: viaAuthLimit, action: loggedOut, status: 401, saw: nothing},
	}
	runAttacks(t, s, tests)
}

// revokedKey revokes the suite's API key with the CLI and, once the main
// gateway refuses it, sends it with a request id whose event must say
// revoked.
func revokedKey(t *testing.T, s *atkSuite) (*Response, error) {
	res := runCLI(t, s.main.Dir, map[string]string{"ACCESS_SECRET": string(s.hsSecret)}, "keys", "revoke", s.apiKeyID, "-config", s.main.ConfigPath)
	if res.Code != 0 {
		return nil, fmt.Errorf("keys revoke: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	pollUntil(t, "revoked key refused", func() error {
		if r := s.main.Do(t, req("GET", "/machine/x", "X-API-Key: "+s.apiKey)); r.Status != http.StatusUnauthorized {
			return fmt.Errorf("status %d", r.Status)
		}
		return nil
	})
	return (&ssoGateway{Gateway: s.main}).send("revoked", req("GET", "/machine/x", "X-API-Key: "+s.apiKey))(t, s)
}

// loggedOut ends an access token of the auth-limit gateway (which runs the
// login, so its jwt strategy checks the logout denylist) with /auth/logout,
// then sends it with a request id whose event must say revoked.
func loggedOut(t *testing.T, s *atkSuite) (*Response, error) {
	tok := s.keep(s.authLimit.Token(t, "-sub", "alice"))
	if r := s.authLimit.Do(t, req("POST", "/auth/logout", bearer(tok), "Origin: http://gateway.test", "Content-Length: 0")); r.Status != http.StatusOK {
		return nil, fmt.Errorf("logout: status %d (%s)", r.Status, r.Body)
	}
	return (&ssoGateway{Gateway: s.authLimit}).send("revoked", req("GET", "/api/x", bearer(tok)))(t, s)
}
