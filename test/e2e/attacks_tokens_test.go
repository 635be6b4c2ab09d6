package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// atkSSOConfig: two oauth2 strategies against two real zitadel OPs, their
// upstream the main gateway's (so a row's "saw" column covers them). sso's
// provider adds iss to introspection answers and runs the browser login;
// bare's provider answers as the zitadel example OP does unchanged, without
// iss; cross asks sso's provider about tokens while it expects bare's issuer.
const atkSSOConfig = `
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
    cache_ttl: 0s
    redirect_url: http://gateway.test/auth/callback
    login: true
  bare:
    type: oauth2
    issuer_url: BARE_ISSUER
    client_id: gateway
    client_secret: ${SSO_SECRET}
    audience: gateway
    cache_ttl: 0s
  cross:
    type: oauth2
    issuer_url: BARE_ISSUER
    introspection_url: SSO_INTROSPECTION
    jwks_url: BARE_JWKS
    client_id: gateway
    client_secret: ${SSO_SECRET}
    audience: gateway
    cache_ttl: 0s
routes:
  - {name: sso, path: /sso, upstream: UPSTREAM, strategies: [sso]}
  - {name: bare, path: /bare, upstream: UPSTREAM, strategies: [bare]}
  - {name: cross, path: /cross, upstream: UPSTREAM, strategies: [cross]}
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`

const (
	viaSSO       = "oauth2 strategies and login against real zitadel OPs"
	ssoCallback  = "http://gateway.test/auth/callback"
	unverified   = "uma"    // email not verified; the OP says nothing, as zitadel does
	saysFalse    = "ursula" // email not verified; the OP says email_verified: false
	userPassword = "user-password"
)

// TestTokenAttacks is the attack table of issue 14 findings 4, 7, 10, 11,
// 12 and 16: what the gateway's tokens state, and what it reads from tokens.
func TestTokenAttacks(t *testing.T) {
	t.Parallel()
	s := startAttackSuite(t)
	sso := startSSOGateway(t, s)
	now := time.Now().Unix()

	// rsRaw signs header and claims given as JSON text, byte for byte, with
	// the gateway's real key rs-1: what golang-jwt would never produce.
	rsRaw := func(header, claims string) string {
		input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		sig, err := jwt.SigningMethodRS256.Sign(input, s.rsa[0])
		if err != nil {
			t.Fatal(err)
		}
		return s.keep(input + "." + base64.RawURLEncoding.EncodeToString(sig))
	}
	const rsHeader = `{"alg":"RS256","kid":"rs-1","typ":"at+jwt"}`
	// ritaJSON is rita's reader token as JSON text, with more members.
	ritaJSON := func(more string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"rita","iat":%d,"nbf":%d,"exp":%d,"jti":"jti-rita","type":"access","roles":["reader"]%s}`,
			testIssuer, testAudience, now, now, now+300, more)
	}
	rsTok := func(c map[string]any) string { return s.rs(t, header("RS256", "rs-1"), c) }
	withCrit := func(kv ...any) map[string]any { return with(header("RS256", "rs-1"), kv...) }
	const mustKnow = "https://example.com/must-understand"
	reader := accessClaims("rita", "reader")
	emailed := with(reader, "email", "rita@example.com")
	ritaSeen := saw{uri: "/api/x", auth: ident("rita", "reader")}

	// Finding 4: two tokens of one subject, without jti: the admin console's,
	// then the mobile app's with fewer rights.
	console := with(accessClaims("ada", "admin"), "jti", nil, "scope", "console", "client_id", "admin-console", "email", "ada@console.example")
	mobile := with(accessClaims("ada", "reader"), "jti", nil, "scope", "mobile", "client_id", "mobile-app", "email", "ada@mobile.example")

	tests := []attack{
		{name: "identity_token: a second token of one subject gets an assertion of its own claims", via: viaMain,
			action: func(t *testing.T, s *atkSuite) (*Response, error) {
				first, err := s.send(viaMain, req("GET", "/asserted/me", bearer(rsTok(console))))
				if err != nil || first.Status != http.StatusOK {
					return first, fmt.Errorf("the admin console's request: %v", err)
				}
				s.resetUpstreams()
				return s.send(viaMain, req("GET", "/asserted/me", bearer(rsTok(mobile))))
			},
			status: 200,
			saw: saw{uri: "/asserted/me", auth: map[string]string{"X-Auth-Subject": "ada", "X-Auth-Roles": "reader", "X-Auth-Scopes": "mobile",
				"X-Auth-Client-Id": "mobile-app", "X-Auth-Email": "ada@mobile.example", "X-Auth-Strategy": "userJwt", "X-Auth-Token": "*"}},
			check: func(t *testing.T, s *atkSuite, _ *Response, got []Seen) {
				tok := s.keep(got[0].Header.Get("X-Auth-Token"))
				s.verifyAssertion(t, tok, "e2e.audience", "ada")
				c := assertionClaims(t, tok)
				want := map[string]any{"roles": []any{"reader"}, "scope": "mobile", "client_id": "mobile-app", "email": "ada@mobile.example", "strategy": "userJwt"}
				for k, w := range want {
					if fmt.Sprint(c[k]) != fmt.Sprint(w) {
						t.Errorf("X-Auth-Token %s = %v, want %v (X-Auth-Roles said reader)", k, c[k], w)
					}
				}
			}},

		// Finding 7: one value for the decision, the log, the quota key and
		// the header — an identity value with surrounding (Unicode) space
		// is refused, and counted as an auth failure.
		{name: "identity: sub with surrounding spaces", via: viaMain, action: failureCounted("/api/admin", rsTok(accessClaims("  root  ", "admin"))),
			status: 401, saw: nothing},
		{name: "identity: sub with a trailing no-break space", via: viaMain, action: failureCounted("/api/admin", rsTok(accessClaims("root\u00a0", "admin"))),
			status: 401, saw: nothing},
		{name: "identity: sub with a leading ideographic space", via: viaMain, action: failureCounted("/api/admin", rsTok(accessClaims("\u3000root", "admin"))),
			status: 401, saw: nothing},
		{name: "identity: sub with a leading byte order mark (trimmed by JavaScript)", via: viaMain, action: failureCounted("/api/admin", rsTok(accessClaims("\ufeffroot", "admin"))),
			status: 401, saw: nothing},
		{name: "identity: email with a leading space", via: viaMain, action: failureCounted("/api/x", rsTok(with(reader, "email", " root@example.com"))),
			status: 401, saw: nothing},
		{name: "identity: client_id with a trailing space", via: viaMain, action: failureCounted("/api/x", rsTok(with(reader, "client_id", "console "))),
			status: 401, saw: nothing},
		{name: "identity: a space inside sub is kept", via: viaMain, raw: req("GET", "/api/x", bearer(rsTok(accessClaims("rita smith", "reader")))),
			status: 200, saw: saw{uri: "/api/x", auth: ident("rita smith", "reader")}},

		// Finding 10: an email its token says is unverified is not forwarded.
		{name: "email: control, a verified email is forwarded", via: viaMain, raw: req("GET", "/api/x", bearer(rsTok(with(emailed, "email_verified", true)))),
			status: 200, saw: saw{uri: "/api/x", auth: map[string]string{"X-Auth-Subject": "rita", "X-Auth-Roles": "reader", "X-Auth-Email": "rita@example.com", "X-Auth-Strategy": "userJwt"}}},
		{name: "email: email_verified false is not forwarded", via: viaMain, raw: req("GET", "/api/x", bearer(rsTok(with(emailed, "email_verified", false)))),
			status: 200, saw: ritaSeen},
		{name: `email: email_verified "false" (a string) is not forwarded`, via: viaMain, raw: req("GET", "/api/x", bearer(rsTok(with(emailed, "email_verified", "false")))),
			status: 200, saw: ritaSeen},
		{name: "email: oauth2 introspection with email_verified false", via: viaSSO, action: sso.send("", req("GET", "/sso/x", bearer(sso.userToken(t, saysFalse)))),
			status: 200, saw: saw{uri: "/sso/x", auth: map[string]string{"X-Auth-Subject": saysFalse, "X-Auth-Client-Id": "gateway",
				"X-Auth-Scopes": "openid email", "X-Auth-Strategy": "sso"}}},
		{name: "email: a provider that says nothing: signed in without an email", via: viaSSO, action: sso.loginWithoutEmail(unverified), saw: nothing},
		{name: "email: login refused for email_verified false", via: viaSSO, action: sso.loginRefused(saysFalse), saw: nothing},
		{name: "email: control, login with a verified email", via: viaSSO, action: sso.loginSucceeds(oidctest.UserName, oidctest.UserPassword), saw: nothing},

		// Finding 11: JSON with duplicate members has two readings; refused
		// at any depth, in the header and the claims, however spelt.
		{name: "json: roles twice, the last one admin", via: viaMain, raw: req("GET", "/api/admin", bearer(rsRaw(rsHeader, ritaJSON(`,"roles":["admin"]`)))),
			status: 401, reason: "duplicate_member", saw: nothing},
		{name: "json: sub twice", via: viaMain, raw: req("GET", "/api/x", bearer(rsRaw(rsHeader, ritaJSON(`,"sub":"root"`)))),
			status: 401, reason: "duplicate_member", saw: nothing},
		{name: "json: roles twice, once with an escaped letter", via: viaMain, raw: req("GET", "/api/admin", bearer(rsRaw(rsHeader, ritaJSON(`,"r\u006fles":["admin"]`)))),
			status: 401, reason: "duplicate_member", saw: nothing},
		{name: "json: sub and SUB (encoding/json matches struct fields in any case)", via: viaMain, raw: req("GET", "/api/x", bearer(rsRaw(rsHeader, ritaJSON(`,"SUB":"root"`)))),
			status: 401, reason: "duplicate_member", saw: nothing},
		{name: "json: duplicate inside a nested object", via: viaMain, raw: req("GET", "/api/x", bearer(rsRaw(rsHeader, ritaJSON(`,"realm_access":{"roles":["reader"],"roles":["admin"]}`)))),
			status: 401, reason: "duplicate_member", saw: nothing},
		{name: "json: duplicate inside an object in an array", via: viaMain, raw: req("GET", "/api/x", bearer(rsRaw(rsHeader, ritaJSON(`,"groups":[{"id":1,"id":2}]`)))),
			status: 401, reason: "duplicate_member", saw: nothing},
		{name: "json: kid twice in the header", via: viaMain, raw: req("GET", "/api/x", bearer(rsRaw(`{"alg":"RS256","kid":"rs-1","typ":"at+jwt","kid":"rs-1"}`, ritaJSON("")))),
			status: 401, reason: "duplicate_member", saw: nothing},
		{name: "json: a second claims object after the first", via: viaMain, raw: req("GET", "/api/admin", bearer(rsRaw(rsHeader, ritaJSON("")+`{"roles":["admin"]}`))),
			status: 401, reason: "malformed_token", saw: nothing},
		{name: "json: control, the same token without duplicates", via: viaMain, raw: req("GET", "/api/x", bearer(rsRaw(rsHeader, ritaJSON(`,"realm_access":{"roles":["reader"]}`)))),
			status: 200, saw: ritaSeen},

		// Finding 12: the gateway implements no JWS extension, so a token
		// that makes one critical is refused (RFC 7515 §4.1.11).
		{name: "crit: an unknown critical extension", via: viaMain, raw: req("GET", "/api/x", bearer(s.rs(t, withCrit("crit", []string{mustKnow}, mustKnow, true), reader))),
			status: 401, reason: "unsupported_crit", saw: nothing},
		{name: "crit: b64 (RFC 7797) made critical", via: viaMain, raw: req("GET", "/api/x", bearer(s.rs(t, withCrit("crit", []string{"b64"}, "b64", true), reader))),
			status: 401, reason: "unsupported_crit", saw: nothing},
		{name: "crit: an empty crit list", via: viaMain, raw: req("GET", "/api/x", bearer(s.rs(t, withCrit("crit", []string{}), reader))),
			status: 401, reason: "unsupported_crit", saw: nothing},

		// Finding 16: RFC 7662 makes iss optional in introspection answers.
		{name: "introspection: control, an answer with the issuer's iss", via: viaSSO, action: sso.send("", req("GET", "/sso/x", bearer(sso.serviceToken(t, sso.op)))),
			status: 200, saw: saw{uri: "/sso/x", auth: service("sso")}},
		{name: "introspection: an answer without iss from the issuer's own endpoint", via: viaSSO, action: sso.send("", req("GET", "/bare/x", bearer(sso.serviceToken(t, sso.bare)))),
			status: 200, saw: saw{uri: "/bare/x", auth: service("bare")}},
		{name: "introspection: an answer naming another issuer", via: viaSSO, action: sso.send("wrong_issuer", req("GET", "/cross/x", bearer(sso.serviceToken(t, sso.op)))),
			status: 401, saw: nothing},
	}
	runAttacks(t, s, tests)
}

// service is the identity of the OPs' service client's token on a route.
func service(strategy string) map[string]string {
	return map[string]string{"X-Auth-Subject": oidctest.ServiceClientID, "X-Auth-Client-Id": oidctest.ServiceClientID,
		"X-Auth-Roles": oidctest.ServiceRole, "X-Auth-Scopes": "data:read", "X-Auth-Strategy": strategy}
}

// assertionClaims are the claims of an X-Auth-Token already verified.
func assertionClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("X-Auth-Token is not a JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// failureCounted sends tok to path on the main gateway and checks that the
// refusal was logged as bad_identity_value and counted as an auth failure.
func failureCounted(path, tok string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, s *atkSuite) (*Response, error) {
		labels := promLabels("reason", "bad_identity_value")
		before, _ := scrapeMetrics(t, s.main)
		id := "tok-" + randomSecret(t)[:12]
		resp, err := s.send(viaMain, req("GET", path, bearer(s.keep(tok)), "X-Request-Id: "+id))
		if err != nil {
			return nil, err
		}
		ev := s.main.Event(t, id)
		if ev["reason"] != "bad_identity_value" || ev["outcome"] != "invalid" {
			t.Errorf("auth event outcome/reason = %v/%v, want invalid/bad_identity_value", ev["outcome"], ev["reason"])
		}
		after, _ := scrapeMetrics(t, s.main)
		if d := after.value("authgateway_auth_failures_total", labels) - before.value("authgateway_auth_failures_total", labels); d != 1 {
			t.Errorf("authgateway_auth_failures_total{reason=bad_identity_value} grew by %v, want 1", d)
		}
		return resp, nil
	}
}

// ssoGateway is a gateway of atkSSOConfig and its two providers.
type ssoGateway struct {
	*Gateway
	op, bare *oidctest.Provider
	refusals int // login refusals for email_unverified logged so far
}

func startSSOGateway(t *testing.T, s *atkSuite) *ssoGateway {
	t.Helper()
	users := append(oidctest.DefaultUsers(),
		oidctest.User{ID: unverified, Username: unverified, Password: userPassword, Email: "uma@example.com", EmailUnverified: true},
		oidctest.User{ID: saysFalse, Username: saysFalse, Password: userPassword, Email: "ursula@example.com",
			EmailUnverified: true, EmailVerifiedClaim: false})
	g := &ssoGateway{
		op:   oidctest.Start(t, oidctest.Options{Users: users}),
		bare: oidctest.Start(t, oidctest.Options{IntrospectionWithoutIssuer: true}),
	}
	g.op.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret,
		Introspect: true, RedirectURIs: []string{ssoCallback}})
	cfg := strings.NewReplacer(
		"SSO_ISSUER", g.op.Issuer, "SSO_INTROSPECTION", g.op.IntrospectionURL,
		"BARE_ISSUER", g.bare.Issuer, "BARE_JWKS", g.bare.JWKSURL, "UPSTREAM", s.up.URL,
	).Replace(atkSSOConfig)
	g.Gateway = startGateway(t, cfg, map[string]string{"ACCESS_SECRET": string(s.hsSecret), "SSO_SECRET": oidctest.GatewayClientSecret})
	return g
}

// send is a row action: raw to this gateway; with reason set, the request
// carries an id and the gateway must log that reason for it.
func (g *ssoGateway) send(reason, raw string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, _ *atkSuite) (*Response, error) {
		id := "tok-" + randomSecret(t)[:12]
		line, rest, _ := strings.Cut(raw, "\r\n")
		resp, err := doRaw(g.Addr, line+"\r\nX-Request-Id: "+id+"\r\n"+rest)
		if err == nil && reason != "" {
			if got := g.Event(t, id)["reason"]; got != reason {
				t.Errorf("auth event reason = %v, want %q", got, reason)
			}
		}
		return resp, err
	}
}

// serviceToken is an opaque client-credentials token of p's service client.
func (g *ssoGateway) serviceToken(t *testing.T, p *oidctest.Provider) string {
	return p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read")
}

// userToken is user's opaque access token from the sso provider, as the
// gateway client (scopes openid email).
func (g *ssoGateway) userToken(t *testing.T, user string) string {
	t.Helper()
	code, _, verifier := g.op.Login(t, oidctest.GatewayClientID, ssoCallback, user, userPassword, "openid", "email")
	cfg := oauth2.Config{ClientID: oidctest.GatewayClientID, ClientSecret: oidctest.GatewayClientSecret, RedirectURL: ssoCallback,
		Endpoint: oauth2.Endpoint{AuthURL: g.op.AuthURL, TokenURL: g.op.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok.AccessToken
}

// login runs the browser login through the real binary for user: /auth/login,
// the provider's password form, /auth/callback with the state cookie. It
// answers the callback's response.
func (g *ssoGateway) login(t *testing.T, user, password string) *Response {
	t.Helper()
	start := g.Do(t, req("GET", "/auth/login?rd=/sso/x", "Accept: text/html"))
	var state *http.Cookie
	for _, c := range (&http.Response{Header: start.Header}).Cookies() {
		if c.Name == "__Host-authgw_login" {
			state = c
		}
	}
	if start.Status != http.StatusFound || state == nil {
		t.Fatalf("/auth/login: status %d, state cookie %v; want 302 and the cookie", start.Status, state)
	}
	cb := g.op.Authorize(t, start.Header.Get("Location"), ssoCallback, user, password)
	u, err := url.Parse(cb)
	if err != nil || !strings.HasPrefix(cb, ssoCallback+"?") {
		t.Fatalf("the provider sent the browser to %q, want the callback", cb)
	}
	return g.Do(t, req("GET", u.RequestURI(), "Accept: text/html", "Cookie: "+state.Name+"="+state.Value))
}

// sessionCookies are the session cookies a response sets.
func sessionCookies(resp *Response) []string {
	var out []string
	for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
		if (c.Name == "__Host-authgw_access" || c.Name == "__Host-authgw_refresh") && c.Value != "" {
			out = append(out, c.Name)
		}
	}
	return out
}

// loginRefused: user's login ends at the callback with 403, no session, and
// the reason email_unverified in the log.
func (g *ssoGateway) loginRefused(user string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, _ *atkSuite) (*Response, error) {
		resp := g.login(t, user, userPassword)
		if resp.Status != http.StatusForbidden || len(sessionCookies(resp)) > 0 {
			return nil, fmt.Errorf("callback: status %d, session cookies %v; want 403 and none (body %q)", resp.Status, sessionCookies(resp), truncate(resp.Body))
		}
		// Log lines are written out every 100 ms.
		if _, err := poll.Wait(5*time.Second, func() error {
			if strings.Count(g.Stdout(), `"reason":"email_unverified"`) <= g.refusals {
				return errors.New("no new login refusal with reason email_unverified in the log")
			}
			return nil
		}); err != nil {
			return nil, err
		}
		g.refusals++
		return nil, nil
	}
}

// loginWithoutEmail: user's login succeeds, and the session it opens has no
// email (/auth/session shows the subject and no email).
func (g *ssoGateway) loginWithoutEmail(user string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, _ *atkSuite) (*Response, error) {
		resp := g.login(t, user, userPassword)
		var access *http.Cookie
		for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
			if c.Name == "__Host-authgw_access" && c.Value != "" {
				access = c
			}
		}
		if resp.Status != http.StatusOK || access == nil {
			return nil, fmt.Errorf("callback: status %d, session cookies %v; want 200 and a session (body %q)", resp.Status, sessionCookies(resp), truncate(resp.Body))
		}
		sess := g.Do(t, req("GET", "/auth/session", "Cookie: "+access.Name+"="+access.Value))
		var m map[string]any
		if err := json.Unmarshal([]byte(sess.Body), &m); err != nil || sess.Status != http.StatusOK {
			return nil, fmt.Errorf("/auth/session: status %d, body %q", sess.Status, truncate(sess.Body))
		}
		if m["sub"] != user || m["email"] != nil {
			return nil, fmt.Errorf("/auth/session = %v; want sub %q and no email", m, user)
		}
		return nil, nil
	}
}

// loginSucceeds: user's login sets both session cookies.
func (g *ssoGateway) loginSucceeds(user, password string) func(*testing.T, *atkSuite) (*Response, error) {
	return func(t *testing.T, _ *atkSuite) (*Response, error) {
		resp := g.login(t, user, password)
		if resp.Status != http.StatusOK || len(sessionCookies(resp)) != 2 {
			return nil, fmt.Errorf("callback: status %d, session cookies %v; want 200 and both (body %q)", resp.Status, sessionCookies(resp), truncate(resp.Body))
		}
		return nil, nil
	}
}
