package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// reasonsConfig: every strategy type on one gateway. sso runs the login
// (so the jwt strategy checks the logout denylist); cross asks sso's
// provider about tokens while it expects the other provider's issuer.
const reasonsConfig = `
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  signing_keys:
    - kid: hs-1
      algorithm: HS256
      secret: ${ACCESS_SECRET}
strategies:
  userJwt:
    type: jwt
    issuer: e2e.issuer
    audience: e2e.audience
    algorithms: [HS256]
    keys: tokens
  machineKey:
    type: api_key
    header: X-API-Key
    prefixes: [pk_e2e]
    store: file
    file: KEYS_FILE
  sso:
    type: oauth2
    issuer_url: SSO_ISSUER
    client_id: gateway
    client_secret: ${SSO_SECRET}
    audience: gateway
    cache_ttl: 0s
    redirect_url: http://gateway.test/auth/callback
    login: true
  cross:
    type: oauth2
    issuer_url: OTHER_ISSUER
    introspection_url: SSO_INTROSPECTION
    jwks_url: OTHER_JWKS
    client_id: gateway
    client_secret: ${SSO_SECRET}
    audience: gateway
    cache_ttl: 0s
routes:
  - {name: api, path: /api, upstream: UPSTREAM, strategies: [userJwt]}
  - {name: machine, path: /machine, upstream: UPSTREAM, strategies: [machineKey]}
  - {name: sso, path: /sso, upstream: UPSTREAM, strategies: [sso]}
  - {name: cross, path: /cross, upstream: UPSTREAM, strategies: [cross]}
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`

// TestOneReasonPerDenial (issue 15): one denial has one reason id in the
// auth event, whichever strategy finds it. A token of another issuer or for
// another audience is wrong_issuer / wrong_audience from the jwt strategy
// and from an oauth2 strategy's introspection alike (the latter said
// issuer_mismatch / audience_mismatch); a revoked API key and a logged-out
// access token are both revoked (the latter said revoked_token).
func TestOneReasonPerDenial(t *testing.T) {
	t.Parallel()
	op, other := oidctest.Start(t, oidctest.Options{}), oidctest.Start(t, oidctest.Options{})
	up := newUpstream(t, 0)
	secret := randomSecret(t)
	env := map[string]string{"ACCESS_SECRET": secret, "SSO_SECRET": oidctest.GatewayClientSecret}
	dir := t.TempDir()
	cfg := strings.NewReplacer(
		"KEYS_FILE", filepath.Join(dir, "api-keys.yaml"), "SSO_ISSUER", op.Issuer, "SSO_INTROSPECTION", op.IntrospectionURL,
		"OTHER_ISSUER", other.Issuer, "OTHER_JWKS", other.JWKSURL, "UPSTREAM", up.URL,
	).Replace(reasonsConfig)
	cliCfg := filepath.Join(dir, "cli.yaml")
	if err := os.WriteFile(cliCfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, dir, env, "keys", "create", "-config", cliCfg, "-name", "ci-bot")
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	_, rest, _ := strings.Cut(lines[0], "created key ")
	keyID, _, _ := strings.Cut(rest, " ")
	apiKey := strings.TrimSpace(lines[len(lines)-1])
	if res.Code != 0 || keyID == "" || !strings.HasPrefix(apiKey, "pk_e2e_") {
		t.Fatalf("keys create: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	g := startGateway(t, cfg, env)
	hs := func(c map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(secret), header("HS256", "hs-1"), c)
	}

	// The API key revoked with the CLI (the gateway watches the file), and
	// an access token ended by /auth/logout.
	if res := runCLI(t, dir, env, "keys", "revoke", keyID, "-config", cliCfg); res.Code != 0 {
		t.Fatalf("keys revoke: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	pollUntil(t, "revoked key refused", func() error {
		if r := g.Do(t, req("GET", "/machine/x", "X-API-Key: "+apiKey)); r.Status != http.StatusUnauthorized {
			return fmt.Errorf("status %d", r.Status)
		}
		return nil
	})
	loggedOut := g.Token(t, "-sub", "alice")
	if r := g.Do(t, req("POST", "/auth/logout", bearer(loggedOut), "Origin: http://gateway.test", "Content-Length: 0")); r.Status != http.StatusOK {
		t.Fatalf("logout: status %d (%s)", r.Status, r.Body)
	}

	for _, tc := range []struct {
		name, target, credential, reason string
	}{
		{"jwt: another issuer", "/api/x", bearer(hs(with(accessClaims("alice"), "iss", "https://evil.example"))), "wrong_issuer"},
		{"oauth2 introspection: another issuer", "/cross/x", bearer(op.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)), "wrong_issuer"},
		{"jwt: another audience", "/api/x", bearer(hs(with(accessClaims("alice"), "aud", "billing"))), "wrong_audience"},
		{"oauth2 introspection: another audience", "/sso/x", bearer(op.ClientCredentialsToken(t, oidctest.OtherClientID, oidctest.OtherClientSecret)), "wrong_audience"},
		{"api key: revoked", "/machine/x", "X-API-Key: " + apiKey, "revoked"},
		{"jwt: logged out", "/api/x", bearer(loggedOut), "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "reason-" + randomSecret(t)[:12]
			r := g.Do(t, req("GET", tc.target, tc.credential, "X-Request-Id: "+id))
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401 (%s)", r.Status, r.Body)
			}
			if ev := g.Event(t, id); ev["reason"] != tc.reason || ev["outcome"] != "invalid" {
				t.Errorf("auth event outcome/reason = %v/%v, want invalid/%s", ev["outcome"], ev["reason"], tc.reason)
			}
		})
	}
	up.WantNothing(t)
}
