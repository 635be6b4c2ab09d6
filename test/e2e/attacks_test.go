package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// attack is one row of the attack table.
type attack struct {
	name string
	// via is the setup: which gateway config, and how the client reaches it.
	via string
	// raw is written to the wire as is ("{assertion}" becomes the X-Auth-Token
	// an upstream received in an earlier row).
	raw string
	// action replaces raw when the attack is not one request: a handshake, a
	// slow client, a WebSocket tunnel, reading the audit log.
	action func(*testing.T, *atkSuite) (*Response, error)
	// status is the wanted status; 0 means no HTTP response: the action's
	// error must then contain wantErr (or, with wantErr "", be nil).
	status  int
	wantErr string
	// plain: the refusal comes from net/http or crypto/tls before the
	// gateway runs, so it is not the gateway's JSON error.
	plain bool
	// reason is the auth event's reason the gateway must log (main only).
	reason string
	// resp are response headers: exact value (several joined by ", "), "*"
	// present with any value, "" absent.
	resp map[string]string
	// saw is exactly what the upstreams received.
	saw saw
	// check holds further assertions.
	check func(*testing.T, *atkSuite, *Response, []Seen)
}

// saw is what every upstream of the suite received, together.
type saw struct {
	uri    string            // the one request's RequestURI; "" = nothing at all
	auth   map[string]string // exactly its X-Auth-* headers ("*" = any value)
	header map[string]string // other headers: exact value, "" = absent
	body   *string
	// cutAt > 0: nothing, or one request whose body was cut at no more
	// than cutAt bytes (a streamed body over the limit).
	cutAt int
}

var nothing = saw{}

// Fragments of the configs the config rows refuse.
const (
	atkPublicRoute = "routes:\n  - path: /\n    upstream: http://127.0.0.1:1\n    public: true\n"
	atkHSTokens    = "tokens:\n  signing_keys:\n    - kid: hs-1\n      algorithm: HS256\n      secret: ${ACCESS_SECRET}\n"
)

// ident is the identity headers of a user authenticated by userJwt.
func ident(sub, roles string) map[string]string {
	return map[string]string{"X-Auth-Subject": sub, "X-Auth-Roles": roles, "X-Auth-Strategy": "userJwt"}
}

// TestAttacks is the attack suite: each row is one attack on a running
// gateway — path tricks, header spoofing, JWT forgeries, CORS, TLS, WebSocket,
// slowloris, body limits — with the status it must get and exactly what the
// upstream may see. The last row reads the audit log the suite produced.
func TestAttacks(t *testing.T) {
	t.Parallel()
	s := startAttackSuite(t)
	hs := jwt.SigningMethodHS256
	now := time.Now().Unix()
	// mallory claims the admin role: any forgery that got through would
	// reach the admin route.
	c := accessClaims("mallory", "admin")
	unsigned := func(h, cl map[string]any) string { return s.keep(b64JSON(t, h) + "." + b64JSON(t, cl) + ".") }
	forge := func(m jwt.SigningMethod, key any, h, cl map[string]any) string { return s.keep(sign(t, m, key, h, cl)) }
	rsPEM := publicPEM(t, s.rsa[0])
	kid := func(alg, k string, kv ...any) map[string]any { return with(header(alg, k), kv...) }
	noFetch := func(t *testing.T, s *atkSuite, _ *Response, _ []Seen) {
		if n := s.jku.hits.Load(); n != 0 {
			t.Errorf("the attacker's key server was fetched %d times, want 0", n)
		}
	}
	oversize := s.rs(t, header("RS256", "rs-1"), with(accessClaims("rita", "reader"), "pad", strings.Repeat("x", 9000)))
	preflight := func(origin, method, headers string) string {
		return req("OPTIONS", "/app/items", "Origin: "+origin, "Access-Control-Request-Method: "+method, "Access-Control-Request-Headers: "+headers)
	}
	refusedPreflight := map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": "",
		"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
	noGrant := map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": "", "Vary": "Origin"}
	hsts := map[string]string{"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
	kb := strings.Repeat("a", 1024)
	chunk := fmt.Sprintf("%x\r\n%s\r\n", len(kb), kb)
	tlsCfg := func(minV, maxV uint16, suites ...uint16) func(*atkSuite) *tls.Config {
		return func(s *atkSuite) *tls.Config {
			cfg := s.tlsClient(minV, maxV)
			cfg.CipherSuites = suites
			return cfg
		}
	}

	refresh := req("POST", "/auth/refresh", "Origin: http://gateway.test", "Content-Length: 0",
		"Cookie: __Host-authgw_refresh="+s.keep("forged-"+randomSecret(t)))

	tests := []attack{
		// Path tricks: every spelling of /api/admin is the admin route (403
		// for a reader); spellings that cannot be routed safely are 400.
		{name: "path: dot-dot out of the public route", via: viaMain, raw: req("GET", "/public/../api/admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: encoded dot-dot %2e%2e", via: viaMain, raw: req("GET", "/public/%2e%2e/api/admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: mixed-case encoded dot-dot %2E%2e", via: viaMain, raw: req("GET", "/public/%2E%2e/api/admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: half-encoded dot-dot .%2e", via: viaMain, raw: req("GET", "/api/x/.%2e/admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: single dot segment", via: viaMain, raw: req("GET", "/api/./admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: dot-dot above the root", via: viaMain, raw: req("GET", "/../api/admin", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: encoded slash %2F", via: viaMain, raw: req("GET", "/api%2Fadmin", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: dot-dot and encoded slash ..%2f", via: viaMain, raw: req("GET", "/api/x/..%2fadmin", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: double-encoded slash %252F", via: viaMain, raw: req("GET", "/api%252Fadmin", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: double slash", via: viaMain, raw: req("GET", "/api//admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: leading double slash", via: viaMain, raw: req("GET", "//api/admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: slashes collapsed for the upstream", via: viaMain, raw: req("GET", "/api//admin///x", bearer(s.admin)), status: 200,
			saw: saw{uri: "/api/admin/x", auth: ident("root", "admin")}},
		{name: "path: ; parameter", via: viaMain, raw: req("GET", "/api/admin;role=reader", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: ; in a middle segment", via: viaMain, raw: req("GET", "/api;x/admin", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: encoded ; %3B", via: viaMain, raw: req("GET", "/api/admin%3Bx", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: backslash", via: viaMain, raw: req("GET", "/api\\admin", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: dot-dot backslash", via: viaMain, raw: req("GET", "/public/..\\api/admin", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: encoded backslash %5C", via: viaMain, raw: req("GET", "/api%5Cadmin", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: raw NUL", via: viaMain, raw: req("GET", "/api/admin\x00.json", bearer(s.reader)), status: 400, plain: true, saw: nothing},
		{name: "path: encoded NUL %00", via: viaMain, raw: req("GET", "/api/admin%00", bearer(s.reader)), status: 400, saw: nothing},
		{name: "path: absolute-form target", via: viaMain, raw: req("GET", "http://evil.example/api/admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: absolute-form is routed by its path, never its host", via: viaMain, raw: req("GET", "http://evil.example/api/admin/x?q=1", bearer(s.admin)), status: 200,
			saw: saw{uri: "/api/admin/x?q=1", auth: ident("root", "admin")},
			check: func(t *testing.T, s *atkSuite, _ *Response, got []Seen) {
				if want := strings.TrimPrefix(s.up.URL, "http://"); got[0].Host != want {
					t.Errorf("upstream Host = %q, want the upstream's own %q", got[0].Host, want)
				}
			}},
		{name: "path: absolute-form climbing out of public", via: viaMain, raw: req("GET", "http://evil.example/public/../api/admin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: escaped unreserved %61dmin", via: viaMain, raw: req("GET", "/api/%61dmin", bearer(s.reader)), status: 403, saw: nothing},
		{name: "path: prefix neighbour /api/admin-old is not the admin route", via: viaMain, raw: req("GET", "/api/admin-old", bearer(s.reader)), status: 200,
			saw: saw{uri: "/api/admin-old", auth: ident("rita", "reader")}},
		{name: "path: prefix neighbour /api/administrator", via: viaMain, raw: req("GET", "/api/administrator/x", bearer(s.reader)), status: 200,
			saw: saw{uri: "/api/administrator/x", auth: ident("rita", "reader")}},
		{name: "path: case-changed admin route is refused (attacks_case_test.go)", via: viaMain, raw: req("GET", "/API/admin", bearer(s.reader)), status: 400, reason: "path_case_mismatch", saw: nothing},

		// Header spoofing: the upstream sees only the identity the gateway
		// established, whatever the client sends.
		{name: "headers: X-Auth-* in every case on a public route", via: viaMain, raw: req("GET", "/public/p", "X-Auth-Subject: root", "x-auth-roles: admin",
			"X-AUTH-EMAIL: root@evil.example", "x-AuTh-StRaTeGy: machineKey", "X-Auth-Client-Id: evil", "X-Auth-Token: forged.assertion.x"), status: 200,
			saw: saw{uri: "/public/p", auth: map[string]string{}}},
		{name: "headers: _ spellings on a public route", via: viaMain, raw: req("GET", "/public/p", "X_Auth_Roles: admin", "x_auth_subject: root", "X_AUTH_TOKEN: forged"), status: 200,
			saw: saw{uri: "/public/p", auth: map[string]string{}}},
		{name: "headers: spoofed identity replaced on an authenticated route", via: viaMain, raw: req("GET", "/api/x", bearer(s.reader),
			"X-Auth-Roles: admin", "X_Auth_Roles: admin", "X-Auth-Email: root@evil.example", "X-Auth-Scopes: everything"), status: 200,
			saw: saw{uri: "/api/x", auth: ident("rita", "reader")}},
		{name: "headers: spoofed X-Auth-Roles do not authorize", via: viaMain, raw: req("GET", "/api/admin", bearer(s.reader), "X-Auth-Roles: admin", "X_Auth_Roles: admin"), status: 403, saw: nothing},
		{name: "headers: spoofed identity without a token", via: viaMain, raw: req("GET", "/api/admin", "X-Auth-Subject: root", "X-Auth-Roles: admin", "X-Auth-Strategy: userJwt"), status: 401, saw: nothing},
		{name: "headers: duplicated X-Auth-Subject", via: viaMain, raw: req("GET", "/api/x", bearer(s.reader), "X-Auth-Subject: root", "X-Auth-Subject: admin"), status: 200,
			saw: saw{uri: "/api/x", auth: ident("rita", "reader")}},
		{name: "headers: duplicated Authorization, reader first", via: viaMain, raw: req("GET", "/api/admin", bearer(s.reader), bearer(s.admin)), status: 403, saw: nothing},
		{name: "headers: duplicated Authorization, garbage first", via: viaMain, raw: req("GET", "/api/admin", bearer("garbage"), bearer(s.admin)), status: 401, saw: nothing},
		{name: "headers: Connection: X-Auth-Subject cannot remove injected identity", via: viaMain, raw: req("GET", "/api/x", bearer(s.reader), "Connection: X-Auth-Subject, X-Auth-Roles, X-Auth-Strategy"), status: 200,
			saw: saw{uri: "/api/x", auth: ident("rita", "reader")}},
		{name: "headers: Connection: Authorization with a token", via: viaMain, raw: req("GET", "/api/x", bearer(s.reader), "Connection: Authorization"), status: 200,
			saw: saw{uri: "/api/x", auth: ident("rita", "reader"), header: map[string]string{"Authorization": ""}}},
		{name: "headers: Connection: Authorization without a token", via: viaMain, raw: req("GET", "/api/x", "Connection: Authorization, X-Auth-Subject", "X-Auth-Subject: root"), status: 401, saw: nothing},
		{name: "headers: forged X-Real-IP from an untrusted peer", via: viaMain, raw: req("GET", "/public/p", "X-Real-IP: 203.0.113.9"), status: 200,
			saw: saw{uri: "/public/p", auth: map[string]string{}}, check: onlyRealPeer("X-Real-Ip")},
		{name: "headers: field name with a space before the colon", via: viaMain, raw: req("GET", "/public/p", "X-Auth-Roles : admin"), status: 400, plain: true, saw: nothing},
		{name: "headers: obs-fold continuation line joins the previous header", via: viaMain, raw: req("GET", "/public/p", " X-Auth-Roles: admin"), status: 200,
			saw: saw{uri: "/public/p", auth: map[string]string{}}},
		{name: "headers: two Host headers", via: viaMain, raw: req("GET", "/public/p", "Host: evil.example"), status: 400, plain: true, saw: nothing},
		{name: "smuggling: Content-Length and Transfer-Encoding, a second request in the body", via: viaMain,
			action: pipelined("POST /public/p HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 62\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
				"GET /api/admin HTTP/1.1\r\nHost: gateway.test\r\nX-Auth-Roles: admin\r\nConnection: close\r\n\r\n"),
			status: 401, saw: saw{uri: "/public/p", auth: map[string]string{}, body: new(string)}},
		{name: "smuggling: two different Content-Lengths", via: viaMain, raw: req("POST", "/public/p", "Content-Length: 5", "Content-Length: 6") + "hello!", status: 400, plain: true, saw: nothing},
		{name: "smuggling: obfuscated Transfer-Encoding", via: viaMain, raw: req("POST", "/public/p", "Transfer-Encoding: chunked, identity") + "0\r\n\r\n", status: 501, plain: true, saw: nothing},
		{name: "headers: forged X-Forwarded-For from an untrusted peer", via: viaMain, raw: req("GET", "/public/p", "X-Forwarded-For: 203.0.113.9", "X-Forwarded-For: 10.0.0.1",
			"Forwarded: for=203.0.113.9;proto=https", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example"), status: 200,
			saw: saw{uri: "/public/p", auth: map[string]string{}, header: map[string]string{
				"X-Forwarded-For": "127.0.0.1", "Forwarded": "", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "gateway.test"}}},

		// JWT attacks on the admin route (mallory claims admin). Controls
		// first: both configured algorithms work with their own keys.
		{name: "jwt: control, RS256 by rs-1", via: viaMain, raw: req("GET", "/api/x", bearer(s.reader)), status: 200, saw: saw{uri: "/api/x", auth: ident("rita", "reader")}},
		{name: "jwt: control, HS256 by the real secret", via: viaMain, raw: req("GET", "/api/x", bearer(forge(hs, s.hsSecret, header("HS256", "hs-1"), accessClaims("hana", "reader")))), status: 200,
			saw: saw{uri: "/api/x", auth: ident("hana", "reader")}},
		{name: "jwt: alg none", via: viaMain, raw: req("GET", "/api/admin", bearer(unsigned(map[string]any{"alg": "none", "typ": "JWT", "kid": "rs-1"}, c))), status: 401, reason: "bad_signature", saw: nothing},
		{name: "jwt: alg none without kid", via: viaMain, raw: req("GET", "/api/admin", bearer(unsigned(map[string]any{"alg": "none"}, c))), status: 401, saw: nothing},
		{name: "jwt: HS256 keyed with rs-1's public PEM (HS/RS confusion)", via: viaMain, raw: req("GET", "/api/admin", bearer(forge(hs, rsPEM, header("HS256", "rs-1"), c))), status: 401, reason: "unknown_key", saw: nothing},
		{name: "jwt: HS256 keyed with the public PEM, no kid", via: viaMain, raw: req("GET", "/api/admin", bearer(forge(hs, rsPEM, header("HS256", ""), c))), status: 401, reason: "unknown_key", saw: nothing},
		{name: "jwt: kid path traversal ../../dev/null", via: viaMain, raw: req("GET", "/api/admin", bearer(forge(hs, []byte{}, header("HS256", "../../dev/null"), c))), status: 401, reason: "unknown_key", saw: nothing},
		{name: "jwt: jku to the attacker's JWKS", via: viaMain, raw: req("GET", "/api/admin", bearer(s.evil(t, kid("RS256", "attacker", "jku", s.jku.URL+"/jwks.json"), c))), status: 401, saw: nothing, check: noFetch},
		{name: "jwt: jku with the real kid, attacker's signature", via: viaMain, raw: req("GET", "/api/admin", bearer(s.evil(t, kid("RS256", "rs-1", "jku", s.jku.URL+"/jwks.json"), c))), status: 401, reason: "bad_signature", saw: nothing, check: noFetch},
		{name: "jwt: x5u to the attacker's certificate", via: viaMain, raw: req("GET", "/api/admin", bearer(s.evil(t, kid("RS256", "attacker", "x5u", s.jku.URL+"/attacker.pem"), c))), status: 401, saw: nothing, check: noFetch},
		{name: "jwt: x5c with the attacker's certificate", via: viaMain, raw: req("GET", "/api/admin", bearer(s.evil(t, kid("RS256", "attacker", "x5c", []string{base64.StdEncoding.EncodeToString(s.attackerCertDER)}), c))), status: 401, saw: nothing},
		{name: "jwt: embedded jwk with the attacker's key", via: viaMain, raw: req("GET", "/api/admin", bearer(s.evil(t, kid("RS256", "attacker", "jwk", s.attackerJWK(t)), c))), status: 401, saw: nothing},
		{name: "jwt: embedded jwk, no kid", via: viaMain, raw: req("GET", "/api/admin", bearer(s.evil(t, with(header("RS256", ""), "jwk", s.attackerJWK(t)), c))), status: 401, saw: nothing},
		{name: "jwt: a valid token's jku is ignored, not fetched", via: viaMain, raw: req("GET", "/api/x", bearer(s.rs(t, kid("RS256", "rs-1", "jku", s.jku.URL+"/jwks.json"), accessClaims("rita", "reader")))), status: 200,
			saw: saw{uri: "/api/x", auth: ident("rita", "reader")}, check: noFetch},
		{name: "jwt: RS512 by rs-1 (algorithm pinned per key)", via: viaMain, raw: req("GET", "/api/admin", bearer(forge(jwt.SigningMethodRS512, s.rsa[0], header("RS512", "rs-1"), c))), status: 401, saw: nothing},
		{name: "jwt: missing exp", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "exp", nil)))), status: 401, reason: "missing_claim", saw: nothing},
		{name: "jwt: expired", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "iat", now-900, "nbf", now-900, "exp", now-300)))), status: 401, reason: "expired", saw: nothing},
		{name: "jwt: lifetime over 15 min", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "exp", now+16*60)))), status: 401, reason: "lifetime_too_long", saw: nothing},
		{name: "jwt: future nbf", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "nbf", now+300, "exp", now+600)))), status: 401, reason: "not_yet_valid", saw: nothing},
		{name: "jwt: future iat", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "iat", now+300, "nbf", nil, "exp", now+600)))), status: 401, reason: "not_yet_valid", saw: nothing},
		{name: "jwt: wrong issuer", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "iss", "evil.issuer")))), status: 401, reason: "wrong_issuer", saw: nothing},
		{name: "jwt: wrong audience", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "aud", "other.audience")))), status: 401, reason: "wrong_audience", saw: nothing},
		{name: "jwt: wrong typ", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, kid("RS256", "rs-1", "typ", "secevent+jwt"), c))), status: 401, reason: "wrong_token_type", saw: nothing},
		{name: "jwt: ID token (nonce) as access token", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "type", nil, "nonce", "n-1")))), status: 401, reason: "id_token", saw: nothing},
		{name: "jwt: ID token (at_hash) as access token", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, kid("RS256", "rs-1", "typ", "JWT"), with(c, "type", nil, "at_hash", "x")))), status: 401, reason: "id_token", saw: nothing},
		{name: "jwt: refresh token (type claim)", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, header("RS256", "rs-1"), with(c, "type", "refresh")))), status: 401, reason: "wrong_token_type", saw: nothing},
		{name: "jwt: refresh token (typ refresh+jwt)", via: viaMain, raw: req("GET", "/api/admin", bearer(s.rs(t, kid("RS256", "rs-1", "typ", "refresh+jwt"), with(c, "type", nil)))), status: 401, reason: "wrong_token_type", saw: nothing},
		{name: "jwt: oversize token (> 8 KB)", via: viaMain, raw: req("GET", "/api/x", bearer(oversize)), status: 401, reason: "oversize_token", saw: nothing},
		{name: "jwt: header over max_header_bytes", via: viaMain, raw: req("GET", "/api/x", bearer(s.reader), "X-Pad: "+strings.Repeat("p", 40<<10)), status: 431, plain: true, saw: nothing},

		// identity_token: the upstream gets an assertion it can verify with
		// the gateway's JWKS, and the assertion opens nothing at the gateway.
		{name: "identity_token: upstream gets a JWKS-verifiable X-Auth-Token", via: viaMain, raw: req("GET", "/asserted/me", bearer(s.admin), "X-Auth-Token: client.forged.token"), status: 200,
			saw: saw{uri: "/asserted/me", auth: map[string]string{"X-Auth-Subject": "root", "X-Auth-Roles": "admin", "X-Auth-Strategy": "userJwt", "X-Auth-Token": "*"}},
			check: func(t *testing.T, s *atkSuite, _ *Response, got []Seen) {
				s.assertion = s.keep(got[0].Header.Get("X-Auth-Token"))
				s.verifyAssertion(t, s.assertion, "e2e.audience", "root")
			}},
		{name: "identity_token: assertion replayed as an access token", via: viaMain, raw: req("GET", "/api/admin", "Authorization: Bearer {assertion}"), status: 401, reason: "wrong_token_type", saw: nothing},
		{name: "identity_token: assertion replayed on its own route", via: viaMain, raw: req("GET", "/asserted/me", "Authorization: Bearer {assertion}"), status: 401, reason: "wrong_token_type", saw: nothing},
		{name: "identity_token: assertion sent back as X-Auth-Token", via: viaMain, raw: req("GET", "/asserted/me", "X-Auth-Token: {assertion}"), status: 401, reason: "no_credentials", saw: nothing},

		// API keys: the key authenticates, and never reaches the upstream.
		{name: "api key: valid key", via: viaMain, raw: req("GET", "/machine/jobs", "X-API-Key: "+s.apiKey, "X-Auth-Client-Id: spoofed"), status: 200,
			saw: saw{uri: "/machine/jobs", auth: map[string]string{"X-Auth-Subject": "ci-bot", "X-Auth-Client-Id": s.apiKeyID, "X-Auth-Roles": "reader", "X-Auth-Strategy": "machineKey"},
				header: map[string]string{"X-Api-Key": ""}}},
		{name: "api key: unconfigured prefix", via: viaMain, raw: req("GET", "/machine/jobs", "X-API-Key: pk_live_"+strings.TrimPrefix(s.apiKey, "pk_e2e_")), status: 401, saw: nothing},
		{name: "api key: one character changed", via: viaMain, raw: req("GET", "/machine/jobs", "X-API-Key: "+s.keep(flipLast(s.apiKey))), status: 401, saw: nothing},

		// CORS: exact origins only; refused preflights and foreign origins
		// get no Access-Control-Allow-Origin, and every answer varies on Origin.
		{name: "cors: preflight from the allowed origin", via: viaMain, raw: preflight("https://app.example.com", "POST", "authorization, content-type"), status: 204,
			resp: map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Authorization, Content-Type", "Access-Control-Max-Age": "300",
				"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
			saw: nothing},
		{name: "cors: preflight from a foreign origin", via: viaMain, raw: preflight("https://evil.example", "POST", "authorization"), status: 403, resp: refusedPreflight, saw: nothing},
		{name: "cors: preflight from origin null", via: viaMain, raw: preflight("null", "GET", "authorization"), status: 403, resp: refusedPreflight, saw: nothing},
		{name: "cors: preflight from a suffix match evilapp.example.com", via: viaMain, raw: preflight("https://evilapp.example.com", "GET", "authorization"), status: 403, resp: refusedPreflight, saw: nothing},
		{name: "cors: preflight from app.example.com.evil.com", via: viaMain, raw: preflight("https://app.example.com.evil.com", "GET", "authorization"), status: 403, resp: refusedPreflight, saw: nothing},
		{name: "cors: preflight from the http:// origin", via: viaMain, raw: preflight("http://app.example.com", "GET", "authorization"), status: 403, resp: refusedPreflight, saw: nothing},
		{name: "cors: preflight from the origin with a port", via: viaMain, raw: preflight("https://app.example.com:8443", "GET", "authorization"), status: 403, resp: refusedPreflight, saw: nothing},
		{name: "cors: preflight with a disallowed header", via: viaMain, raw: preflight("https://app.example.com", "POST", "authorization, x-evil"), status: 403, resp: refusedPreflight, saw: nothing},
		{name: "cors: preflight with a disallowed method", via: viaMain, raw: preflight("https://app.example.com", "DELETE", "authorization"), status: 403, resp: refusedPreflight, saw: nothing},
		{name: "cors: request from the allowed origin", via: viaMain, raw: req("GET", "/app/items", bearer(s.reader), "Origin: https://app.example.com"), status: 200,
			resp: map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-Id", "Vary": "Origin"},
			saw: saw{uri: "/app/items", auth: ident("rita", "reader")}},
		{name: "cors: request from a foreign origin gets no grant", via: viaMain, raw: req("GET", "/app/items", bearer(s.reader), "Origin: https://evil.example"), status: 200, resp: noGrant,
			saw: saw{uri: "/app/items", auth: ident("rita", "reader")}},
		{name: "cors: request from origin null gets no grant", via: viaMain, raw: req("GET", "/app/items", bearer(s.reader), "Origin: null"), status: 200, resp: noGrant,
			saw: saw{uri: "/app/items", auth: ident("rita", "reader")}},
		{name: "cors: request from a suffix-match origin gets no grant", via: viaMain, raw: req("GET", "/app/items", bearer(s.reader), "Origin: https://app.example.com.evil.com"), status: 200, resp: noGrant,
			saw: saw{uri: "/app/items", auth: ident("rita", "reader")}},
		{name: "cors: 401 to a foreign origin gets no grant", via: viaMain, raw: req("GET", "/app/items", "Origin: https://evilapp.example.com"), status: 401, resp: noGrant, saw: nothing},

		// WebSocket upgrades are authenticated like any request.
		{name: "websocket: upgrade without credentials", via: viaMain, action: wsUpgrade(), status: 401, saw: nothing},
		{name: "websocket: upgrade with a forged token", via: viaMain, action: wsUpgrade(bearer(unsigned(map[string]any{"alg": "none"}, accessClaims("rita", "reader")))), status: 401, saw: nothing},
		{name: "websocket: upgrade with a valid token", via: viaMain, action: wsUpgrade(bearer(s.reader), "X-Auth-Roles: admin"), status: 101,
			saw: saw{uri: "/ws/chat", auth: ident("rita", "reader"), header: map[string]string{"Upgrade": "websocket", "Authorization": ""}}},

		// Server limits.
		{name: "slowloris: headers byte by byte, read_header_timeout 1s", via: viaMain, action: slowloris, wantErr: "connection cut", saw: nothing},
		{name: "body: Content-Length over max_body_bytes", via: viaMain, raw: req("POST", "/upload/f", "Content-Length: 2048") + kb + kb, status: 413, saw: nothing},
		{name: "body: Content-Length at max_body_bytes", via: viaMain, raw: req("POST", "/upload/f", "Content-Length: 1024") + kb, status: 200,
			saw: saw{uri: "/upload/f", auth: map[string]string{}, body: &kb}},
		{name: "body: chunked body over max_body_bytes is cut", via: viaMain, raw: req("POST", "/upload/f", "Transfer-Encoding: chunked") + strings.Repeat(chunk, 4) + "0\r\n\r\n", status: 413,
			saw: saw{cutAt: 1024}},

		// TLS.
		{name: "tls: plain HTTP to the TLS port", via: viaTLSPlain, raw: req("GET", "/x"), status: 400, plain: true, saw: nothing},
		{name: "tls: redirect_http answers 308 to https", via: viaTLSRedirect, raw: req("GET", "/a/b?c=1"), status: 308,
			resp: map[string]string{"Location": "https://gateway.test:" + s.tlsPort + "/a/b?c=1", "Strict-Transport-Security": ""}, saw: nothing},
		{name: "tls: redirect_http for POST keeps the method (308)", via: viaTLSRedirect, raw: req("POST", "/form", "Content-Length: 0"), status: 308,
			resp: map[string]string{"Location": "https://gateway.test:" + s.tlsPort + "/form"}, saw: nothing},
		{name: "tls: TLS 1.1 handshake refused", via: viaTLS12, action: tlsHandshake(tlsCfg(tls.VersionTLS10, tls.VersionTLS11)), wantErr: "protocol version", saw: nothing},
		{name: "tls: TLS 1.2 with CBC suites only refused", via: viaTLS12, action: tlsHandshake(tlsCfg(tls.VersionTLS12, tls.VersionTLS12,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256)), wantErr: "handshake failure", saw: nothing},
		{name: "tls: TLS 1.2 request, ECDHE AEAD suite, HSTS", via: viaTLS12, action: tlsRequest(tls.VersionTLS12, req("GET", "/x")), status: 200, resp: hsts,
			saw: saw{uri: "/x", auth: map[string]string{}, header: map[string]string{"X-Forwarded-Proto": "https"}}},
		{name: "tls: TLS 1.3 request, HSTS", via: viaTLS12, action: tlsRequest(tls.VersionTLS13, req("GET", "/y")), status: 200, resp: hsts,
			saw: saw{uri: "/y", auth: map[string]string{}}},
		{name: "tls: the gateway's own errors carry HSTS", via: viaTLS12, raw: req("GET", "/a%2Fb"), status: 400, resp: hsts, saw: nothing},

		// https_only behind a TLS-terminating proxy.
		{name: "https_only: request not from the trusted proxy", via: viaProxyUntrust, raw: req("GET", "/x", "X-Forwarded-Proto: https", "X-Forwarded-For: 127.0.0.2"), status: 403, saw: nothing},
		{name: "https_only: trusted proxy forwarded plain http", via: viaProxyTrusted, raw: req("GET", "/x?y=1", "X-Forwarded-Proto: http"), status: 308,
			resp: map[string]string{"Location": "https://gateway.test/x?y=1"}, saw: nothing},
		{name: "https_only: trusted proxy without X-Forwarded-Proto", via: viaProxyTrusted, raw: req("GET", "/x"), status: 308,
			resp: map[string]string{"Location": "https://gateway.test/x"}, saw: nothing},
		{name: "https_only: trusted proxy forwarded https", via: viaProxyTrusted, raw: req("GET", "/x", "X-Forwarded-Proto: https", "X-Forwarded-For: 203.0.113.7"), status: 200,
			saw: saw{uri: "/x", auth: map[string]string{}, header: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7, 127.0.0.2"}}},

		// The auth-failure limit covers the gateway's /auth/* endpoints:
		// forged refresh cookies count, then every authenticating path is 429.
		{name: "auth endpoints: forged refresh cookie #1", via: viaAuthLimit, raw: refresh, status: 401, saw: nothing},
		{name: "auth endpoints: forged refresh cookie #2", via: viaAuthLimit, raw: refresh, status: 401, saw: nothing},
		{name: "auth endpoints: forged refresh cookie #3", via: viaAuthLimit, raw: refresh, status: 401, saw: nothing},
		{name: "auth endpoints: /auth/refresh over the limit", via: viaAuthLimit, raw: refresh, status: 429, resp: map[string]string{"Retry-After": "*"}, saw: nothing},
		{name: "auth endpoints: /auth/login over the limit", via: viaAuthLimit, raw: req("GET", "/auth/login?rd=/api/x"), status: 429, saw: nothing},
		{name: "auth endpoints: a valid token over the limit", via: viaAuthLimit, raw: req("GET", "/api/x", bearer(forge(hs, s.hsSecret, header("HS256", "hs-1"), accessClaims("hana", "reader")))), status: 429, saw: nothing},
		{name: "auth endpoints: public routes stay reachable", via: viaAuthLimit, raw: req("GET", "/public/p"), status: 200, saw: saw{uri: "/public/p", auth: map[string]string{}}},

		// Secrets rotate without a restart: a new signing key is added, made
		// the signer, and the old one dropped; its tokens then stop working.
		{name: "secrets: signing key rotated by reload, then the old key's token", via: viaRotation, action: rotateSigningKeys, status: 401, saw: nothing},

		// Insecure configurations are refused at start, naming the key.
		{name: "config: https_only without tls", via: viaServe, action: refusedConfig("server:\n  https_only: true\n"+atkPublicRoute, "server.https_only"), saw: nothing},
		{name: "config: behind_tls_proxy without trusted_proxies", via: viaServe, action: refusedConfig("server:\n  https_only: true\n  behind_tls_proxy: true\n"+atkPublicRoute, "server.behind_tls_proxy"), saw: nothing},
		{name: "config: TLS 1.1 as min_version", via: viaServe, action: refusedConfig("server:\n  tls: {cert_file: c.pem, key_file: k.pem, min_version: \"1.1\"}\n"+atkPublicRoute, "server.tls.min_version"), saw: nothing},
		{name: "config: CORS \"*\" with credentials", via: viaServe, action: refusedConfig(atkPublicRoute+"    cors: {allowed_origins: [\"*\"], allow_credentials: true}\n", "routes[0].cors.allowed_origins[0]"), saw: nothing},
		{name: "config: CORS origin pattern", via: viaServe, action: refusedConfig(atkPublicRoute+"    cors: {allowed_origins: [\"https://*.example.com\"]}\n", "routes[0].cors.allowed_origins[0]"), saw: nothing},
		{name: "config: access_ttl over 15 min", via: viaServe, action: refusedConfig(atkHSTokens+"  access_ttl: 1h\n"+atkPublicRoute, "tokens.access_ttl"), saw: nothing},
		{name: "config: identity_token with an HMAC signing key", via: viaServe, action: refusedConfig(atkHSTokens+atkPublicRoute+"    identity_token: true\n", "routes[0].identity_token"), saw: nothing},
		{name: "config: short HMAC secret", via: viaServe, action: refusedConfig("tokens:\n  signing_keys:\n    - {kid: k, algorithm: HS256, secret: too-short}\n"+atkPublicRoute, "tokens.signing_keys[0].secret"), saw: nothing},

		// Last: what the suite left in the audit log.
		{name: "audit: JSON lines with events, never a credential", via: viaMain, action: checkAuditLog, saw: nothing},
	}

	runAttacks(t, s, tests)
}

// runAttacks runs each row on s: status, the gateway's JSON error, response
// headers, the logged reason (main gateway), and exactly what the upstreams
// saw; and for a row that is one request, that explain, asked just before,
// said what the gateway did.
func runAttacks(t *testing.T, s *atkSuite, tests []attack) {
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.resetUpstreams()
			id := "atk-" + strconv.Itoa(i)
			raw := withID(strings.ReplaceAll(tc.raw, "{assertion}", s.assertion), id)
			g, peer, why := s.explainTarget(tc)
			var ex explanation
			if why == "" {
				ex = g.explain(t, raw, peer)
			}
			resp, err := tc.run(t, s, raw)
			if tc.status == 0 {
				switch {
				case resp != nil:
					t.Fatalf("got HTTP %d, want no HTTP response", resp.Status)
				case tc.wantErr == "" && err != nil:
					t.Fatal(err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != tc.status {
					t.Fatalf("status = %d, want %d (body %q)", resp.Status, tc.status, truncate(resp.Body))
				}
				if resp.Status >= 400 && !tc.plain {
					resp.ErrorMessage(t)
				}
				for k, want := range tc.resp {
					got := strings.Join(resp.Header.Values(k), ", ")
					if want == "*" && got != "" || got == want {
						continue
					}
					t.Errorf("response %s = %q, want %q", k, got, want)
				}
				if tc.reason != "" {
					if got := s.main.Event(t, id)["reason"]; got != tc.reason {
						t.Errorf("auth event reason = %v, want %q", got, tc.reason)
					}
				}
				if why == "" {
					explainAgrees(t, g, ex, id, resp)
				} else if tc.action == nil {
					t.Logf("explain not compared: %s", why)
				}
			}
			got := tc.saw.verify(t, s)
			if tc.check != nil && !t.Failed() {
				tc.check(t, s, resp, got)
			}
		})
	}
}

// run performs the row's attack: its action, or raw (the row's request
// with an X-Request-Id).
func (tc attack) run(t *testing.T, s *atkSuite, raw string) (*Response, error) {
	if tc.action != nil {
		return tc.action(t, s)
	}
	return s.send(tc.via, raw)
}

// explainTarget is the gateway a row's one request reaches and the address
// it comes from; or why explain's view of it cannot be compared.
func (s *atkSuite) explainTarget(tc attack) (g *Gateway, peer, why string) {
	switch {
	case tc.action != nil:
		return nil, "", "not one request"
	case tc.plain:
		return nil, "", "refused by net/http or crypto/tls before the gateway's pipeline runs"
	}
	switch tc.via {
	case viaMain:
		return s.main, "127.0.0.1", ""
	case viaTLS12:
		return s.tls, "127.0.0.1", ""
	case viaProxyUntrust:
		return s.proxy, "127.0.0.1", ""
	case viaProxyTrusted:
		return s.proxy, "127.0.0.2", ""
	case viaAuthLimit:
		return s.authLimit, "127.0.0.1", ""
	case viaRotation:
		return s.rot, "127.0.0.1", ""
	case viaTLSRedirect:
		return nil, "", "the redirect_http listener answers every request with a 308 to https; explain explains the main listener"
	}
	return nil, "", "no gateway pipeline behind " + tc.via
}

// verify compares what the upstreams received with the row's want, and
// returns it.
func (w saw) verify(t *testing.T, s *atkSuite) []Seen {
	t.Helper()
	got := s.seen()
	if w.cutAt > 0 {
		// A streamed body reaches the upstream as it arrives; the upstream
		// may log it just after the gateway answered (or never: at most one).
		_, _ = poll.Wait(time.Second, func() error {
			if got = s.seen(); len(got) == 0 {
				return errors.New("nothing at the upstreams")
			}
			return nil
		})
		for _, r := range got {
			t.Logf("upstream received %s %s with %d body bytes", r.Method, r.RequestURI, len(r.Body))
			if len(r.Body) > w.cutAt {
				t.Errorf("upstream received a %d-byte body, want it cut at %d", len(r.Body), w.cutAt)
			}
		}
		if len(got) > 1 {
			t.Errorf("upstreams received %d requests, want at most one", len(got))
		}
		return got
	}
	if w.uri == "" {
		for _, r := range got {
			t.Errorf("upstream received %s %s, want nothing", r.Method, r.RequestURI)
		}
		return got
	}
	if len(got) != 1 {
		var uris []string
		for _, r := range got {
			uris = append(uris, r.Method+" "+r.RequestURI)
		}
		t.Fatalf("upstreams received %q, want exactly %s", uris, w.uri)
	}
	r := got[0]
	if r.RequestURI != w.uri {
		t.Errorf("upstream RequestURI = %q, want %q", r.RequestURI, w.uri)
	}
	gotAuth := authHeaders(r.Header)
	for k, want := range w.auth {
		if g, ok := gotAuth[k]; !ok || (want != "*" && g != want) {
			t.Errorf("upstream %s = %q, want %q", k, g, want)
		}
	}
	for k, g := range gotAuth {
		if _, ok := w.auth[k]; !ok {
			t.Errorf("upstream received %s: %q, want no such header", k, g)
		}
	}
	for k, want := range w.header {
		if g := strings.Join(r.Header.Values(k), ", "); g != want {
			t.Errorf("upstream %s = %q, want %q", k, g, want)
		}
	}
	if w.body != nil && r.Body != *w.body {
		t.Errorf("upstream body is %d bytes, want %d", len(r.Body), len(*w.body))
	}
	return got
}

// flipLast changes the last character of a key, keeping its format.
func flipLast(k string) string {
	last := k[len(k)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return k[:len(k)-1] + string(repl)
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
