package e2e

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// b64JSON is the base64url JSON of v, as in a JWT segment.
func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign assembles a JWT from header and claims exactly as given (no default
// header fields) and signs it with method and key.
func sign(t *testing.T, method jwt.SigningMethod, key any, header, claims map[string]any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, claims)
	sig, err := method.Sign(input, key)
	if err != nil {
		t.Fatalf("signing forged token: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// accessClaims are the claims of a well-formed access token of the test
// issuer; tests change one thing at a time.
func accessClaims(sub string, roles ...string) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": sub,
		"iat": now, "nbf": now, "exp": now + 300,
		"jti": "jti-" + sub, "type": "access",
	}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}

func header(alg, kid string) map[string]any {
	h := map[string]any{"alg": alg, "typ": "at+jwt"}
	if kid != "" {
		h["kid"] = kid
	}
	return h
}

// with returns a copy of m with the changes applied; a nil value deletes.
func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// jwtKeysConfig holds an RS256 signing key, an older RS256 verify-only key
// and an HS256 secret, and a strategy that accepts both RS256 and HS256: the
// setting in which algorithm confusion (HS256 keyed with an RSA public key's
// PEM) would be possible if the key source did not pin each key's algorithm.
const jwtKeysConfig = `
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  access_ttl: 15m
  signing_keys:
    - kid: rs-1
      algorithm: RS256
      private_key_file: PRIVATE_PEM
    - kid: rs-old
      algorithm: RS256
      public_key_file: OLD_PUBLIC_PEM
    - kid: hs-1
      algorithm: HS256
      secret: ${ACCESS_SECRET}
strategies:
  userJwt:
    type: jwt
    issuer: e2e.issuer
    audience: e2e.audience
    algorithms: [RS256, HS256]
    keys: tokens
routes:
  - name: admin
    path: /api/admin
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [admin]
  - name: api
    path: /api
    upstream: UPSTREAM
    strategies: [userJwt]
rate_limits:
  auth_failures:
    limit: 100000
    period: 1m
`

func TestJWTRoute(t *testing.T) {
	t.Parallel()
	keys := testRSAKeys(t)
	dir := t.TempDir()
	oldPub := filepath.Join(dir, "rs-old.pub.pem")
	if err := os.WriteFile(oldPub, publicPEM(t, keys[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t, 0)
	secret := []byte(randomSecret(t))
	cfg := strings.NewReplacer(
		"PRIVATE_PEM", writePrivatePEM(t, dir, "rs-1.pem", keys[0]),
		"OLD_PUBLIC_PEM", oldPub,
		"UPSTREAM", up.URL,
	).Replace(jwtKeysConfig)
	g := startGateway(t, cfg, map[string]string{"ACCESS_SECRET": string(secret)})

	cliReader := g.Token(t, "-sub", "alice", "-roles", "reader")
	evil := keys[2] // a key pair no config knows: the attacker's own
	rs1PEM, oldPEM := publicPEM(t, keys[0]), publicPEM(t, keys[1])
	hs := jwt.SigningMethodHS256
	rs := jwt.SigningMethodRS256
	c := accessClaims("mallory", "reader")
	now := time.Now().Unix()

	// tampered: the CLI token's payload with an admin role, old signature.
	parts := strings.Split(cliReader, ".")
	var payload map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err == nil {
		err = json.Unmarshal(raw, &payload)
	}
	if err != nil {
		t.Fatalf("decoding CLI token payload: %v", err)
	}
	tampered := parts[0] + "." + b64JSON(t, with(payload, "roles", []string{"admin"})) + "." + parts[2]

	unsigned := func(h, cl map[string]any) string { return b64JSON(t, h) + "." + b64JSON(t, cl) + "." }

	tests := []struct {
		name       string
		auth       []string // header lines
		path       string
		wantStatus int
		wantReason string // the auth event's reason
		wantSub    string // for 200: X-Auth-Subject
	}{
		{name: "no token", path: "/api/x", wantStatus: 401, wantReason: "no_credentials"},
		{name: "basic scheme is not ours", auth: []string{"Authorization: Basic YWxpY2U6cHc="}, path: "/api/x", wantStatus: 401, wantReason: "no_credentials"},
		{name: "empty bearer", auth: []string{"Authorization: Bearer "}, path: "/api/x", wantStatus: 401, wantReason: "no_credentials"},
		{name: "CLI token (RS256, rs-1)", auth: []string{bearer(cliReader)}, path: "/api/x", wantStatus: 200, wantSub: "alice"},
		{name: "control: forged with the real HS256 secret", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), c))}, path: "/api/x", wantStatus: 200, wantSub: "mallory"},
		{name: "control: signed by the rotated-out key rs-old", auth: []string{bearer(sign(t, rs, keys[1], header("RS256", "rs-old"), c))}, path: "/api/x", wantStatus: 200, wantSub: "mallory"},
		{name: "garbage", auth: []string{bearer("not-a-jwt")}, path: "/api/x", wantStatus: 401, wantReason: "malformed_token"},
		{name: "expired", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "iat", now-600, "nbf", now-600, "exp", now-120)))}, path: "/api/x", wantStatus: 401, wantReason: "expired"},
		{name: "wrong issuer", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "iss", "evil.issuer")))}, path: "/api/x", wantStatus: 401, wantReason: "wrong_issuer"},
		{name: "wrong audience", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "aud", "other.audience")))}, path: "/api/x", wantStatus: 401, wantReason: "wrong_audience"},
		{name: "alg none", auth: []string{bearer(unsigned(map[string]any{"alg": "none", "typ": "JWT", "kid": "hs-1"}, c))}, path: "/api/x", wantStatus: 401, wantReason: "bad_signature"},
		{name: "alg None", auth: []string{bearer(unsigned(map[string]any{"alg": "None", "kid": "hs-1"}, c))}, path: "/api/x", wantStatus: 401, wantReason: "unknown_key"},
		{name: "HS256 with empty signature", auth: []string{bearer(unsigned(header("HS256", "hs-1"), c))}, path: "/api/x", wantStatus: 401, wantReason: "bad_signature"},
		{name: "HS256 keyed with rs-1 public PEM, kid rs-1", auth: []string{bearer(sign(t, hs, rs1PEM, header("HS256", "rs-1"), c))}, path: "/api/x", wantStatus: 401, wantReason: "unknown_key"},
		{name: "HS256 keyed with rs-old public PEM, kid rs-old", auth: []string{bearer(sign(t, hs, oldPEM, header("HS256", "rs-old"), c))}, path: "/api/x", wantStatus: 401, wantReason: "unknown_key"},
		{name: "HS256 keyed with rs-1 public PEM, no kid", auth: []string{bearer(sign(t, hs, rs1PEM, header("HS256", ""), c))}, path: "/api/x", wantStatus: 401, wantReason: "unknown_key"},
		{name: "RS256 by an attacker key, kid rs-1", auth: []string{bearer(sign(t, rs, evil, header("RS256", "rs-1"), c))}, path: "/api/x", wantStatus: 401, wantReason: "bad_signature"},
		{name: "RS256 with the HMAC key's kid", auth: []string{bearer(sign(t, rs, evil, header("RS256", "hs-1"), c))}, path: "/api/x", wantStatus: 401, wantReason: "unknown_key"},
		{name: "wrong secret", auth: []string{bearer(sign(t, hs, []byte(randomSecret(t)), header("HS256", "hs-1"), c))}, path: "/api/x", wantStatus: 401, wantReason: "bad_signature"},
		{name: "unknown kid", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-2"), c))}, path: "/api/x", wantStatus: 401, wantReason: "unknown_key"},
		{name: "kid path traversal", auth: []string{bearer(sign(t, hs, []byte{}, header("HS256", "../../../../dev/null"), c))}, path: "/api/x", wantStatus: 401, wantReason: "unknown_key"},
		{name: "refresh token: type claim", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "type", "refresh")))}, path: "/api/x", wantStatus: 401, wantReason: "wrong_token_type"},
		{name: "refresh token: typ refresh+jwt header", auth: []string{bearer(sign(t, hs, secret, with(header("HS256", "hs-1"), "typ", "refresh+jwt"), with(c, "type", nil)))}, path: "/api/x", wantStatus: 401, wantReason: "wrong_token_type"},
		{name: "ID token (nonce)", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "type", nil, "nonce", "n-1")))}, path: "/api/x", wantStatus: 401, wantReason: "id_token"},
		{name: "tampered payload (reader made admin)", auth: []string{bearer(tampered)}, path: "/api/admin/x", wantStatus: 401, wantReason: "bad_signature"},
		{name: "lifetime over 15m", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "exp", now+3600)))}, path: "/api/x", wantStatus: 401, wantReason: "lifetime_too_long"},
		{name: "missing exp", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "exp", nil)))}, path: "/api/x", wantStatus: 401, wantReason: "missing_claim"},
		{name: "missing iat", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "iat", nil)))}, path: "/api/x", wantStatus: 401, wantReason: "missing_iat"},
		{name: "missing sub", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "sub", nil)))}, path: "/api/x", wantStatus: 401, wantReason: "missing_sub"},
		{name: "future nbf", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "nbf", now+300, "exp", now+600)))}, path: "/api/x", wantStatus: 401, wantReason: "not_yet_valid"},
		{name: "future iat", auth: []string{bearer(sign(t, hs, secret, header("HS256", "hs-1"), with(c, "iat", now+300, "nbf", nil, "exp", now+600)))}, path: "/api/x", wantStatus: 401, wantReason: "not_yet_valid"},
		{name: "reader on the admin route", auth: []string{bearer(cliReader)}, path: "/api/admin/x", wantStatus: 403, wantReason: "missing_role"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up.Reset()
			id := "jwt-" + strconv.Itoa(i)
			resp := g.Do(t, req("GET", tc.path, append([]string{"X-Request-Id: " + id}, tc.auth...)...))
			if resp.Status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", resp.Status, tc.wantStatus, resp.Body)
			}
			ev := g.Event(t, id)
			if got := ev["reason"]; tc.wantReason != "" && got != tc.wantReason {
				t.Errorf("auth event reason = %q, want %q", got, tc.wantReason)
			}
			switch tc.wantStatus {
			case http.StatusOK:
				s := up.One(t)
				if got := s.Header.Get("X-Auth-Subject"); got != tc.wantSub {
					t.Errorf("upstream X-Auth-Subject = %q, want %q", got, tc.wantSub)
				}
				if got := s.Header.Get("X-Auth-Strategy"); got != "userJwt" {
					t.Errorf("upstream X-Auth-Strategy = %q, want userJwt", got)
				}
				if _, ok := s.Header["Authorization"]; ok {
					t.Errorf("upstream saw Authorization %q, want it dropped", s.Header["Authorization"])
				}
			case http.StatusUnauthorized:
				resp.ErrorMessage(t)
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
				}
				up.WantNothing(t)
			default:
				resp.ErrorMessage(t)
				up.WantNothing(t)
			}
		})
	}
}

// TestIdentityHeaders checks the exact identity headers an upstream gets.
func TestIdentityHeaders(t *testing.T) {
	t.Parallel()
	g, up, _ := startStandard(t)
	tok := g.Token(t, "-sub", "alice", "-email", "alice@example.com", "-roles", "reader,writer")

	resp := g.Do(t, req("GET", "/api/things?x=1", bearer(tok),
		"X-Forwarded-For: 203.0.113.9", "Forwarded: for=203.0.113.9",
		// Spoofed identity in every spelling: the real one must replace it.
		"X-Auth-Subject: root", "X-Auth-Roles: admin", "x-auth-email: root@evil", "X_Auth_Roles: admin",
		"X-Auth-Client-Id: evil", "X-Auth-Scopes: everything", "Cookie: theme=dark"))
	if resp.Status != 200 {
		t.Fatalf("status = %d, want 200 (body %q)", resp.Status, resp.Body)
	}
	s := up.One(t)
	want := map[string]string{
		"X-Auth-Subject":  "alice",
		"X-Auth-Email":    "alice@example.com",
		"X-Auth-Roles":    "reader,writer",
		"X-Auth-Strategy": "userJwt",
	}
	if got := authHeaders(s.Header); !maps.Equal(got, want) {
		t.Errorf("upstream identity headers = %v, want exactly %v", got, want)
	}
	if v, ok := s.Header["Authorization"]; ok {
		t.Errorf("upstream saw Authorization %q, want it dropped", v)
	}
	if s.RequestURI != "/api/things?x=1" {
		t.Errorf("upstream RequestURI = %q, want /api/things?x=1", s.RequestURI)
	}
	if got := s.Header.Get("Cookie"); got != "theme=dark" {
		t.Errorf("upstream Cookie = %q, want theme=dark", got)
	}
	// No trusted proxies: the client's forwarding headers are replaced.
	if got := s.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("upstream X-Forwarded-For = %q, want only the gateway's peer 127.0.0.1", got)
	}
	if got := s.Header.Get("Forwarded"); got != "" {
		t.Errorf("upstream Forwarded = %q, want it removed", got)
	}

	t.Run("token in the session cookie", func(t *testing.T) {
		up.Reset()
		resp := g.Do(t, req("GET", "/api/things", "Cookie: theme=dark; __Host-authgw_access="+tok+"; lang=en"))
		if resp.Status != 200 {
			t.Fatalf("status = %d, want 200 (body %q)", resp.Status, resp.Body)
		}
		s := up.One(t)
		if got := s.Header.Get("X-Auth-Subject"); got != "alice" {
			t.Errorf("X-Auth-Subject = %q, want alice", got)
		}
		if got := s.Header.Get("Cookie"); got != "theme=dark; lang=en" {
			t.Errorf("upstream Cookie = %q, want the access cookie removed and the others kept", got)
		}
	})
}

// TestAdminRoute checks the role rule of the admin route.
func TestAdminRoute(t *testing.T) {
	t.Parallel()
	g, up, _ := startStandard(t)
	reader := g.Token(t, "-sub", "bob", "-roles", "reader")
	admin := g.Token(t, "-sub", "root", "-roles", "reader,admin")

	resp := g.Do(t, req("GET", "/api/admin/users", bearer(reader)))
	if resp.Status != http.StatusForbidden {
		t.Fatalf("reader: status = %d, want 403", resp.Status)
	}
	resp.ErrorMessage(t)
	up.WantNothing(t)

	resp = g.Do(t, req("GET", "/api/admin/users", bearer(admin)))
	if resp.Status != http.StatusOK {
		t.Fatalf("admin: status = %d, want 200 (body %q)", resp.Status, resp.Body)
	}
	s := up.One(t)
	if s.RequestURI != "/api/admin/users" || s.Header.Get("X-Auth-Roles") != "reader,admin" {
		t.Errorf("upstream saw %s with roles %q, want /api/admin/users with reader,admin", s.RequestURI, s.Header.Get("X-Auth-Roles"))
	}
}

// TestIdentityValuesKeepTheirMeaning: the upstream reads X-Auth-Roles as a
// comma-separated list and X-Auth-Scopes as a space-separated one, so a role
// or scope value that itself holds the separator must not reach it: the
// upstream would see a role the gateway never granted. The tokens are signed
// with the real key, standing in for an identity provider that allows such
// names (group names are often user-chosen).
func TestIdentityValuesKeepTheirMeaning(t *testing.T) {
	t.Parallel()
	g, up, secret := startStandard(t)
	tests := []struct {
		name  string
		claim map[string]any
	}{
		{"role holding a comma", map[string]any{"roles": []string{"reader,admin"}}},
		{"role with a leading space after a comma", map[string]any{"roles": []string{"reader", " admin"}}},
		{"scope holding a space", map[string]any{"scp": []string{"read admin:all"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up.Reset()
			c := accessClaims("eve")
			for k, v := range tc.claim {
				c[k] = v
			}
			tok := sign(t, jwt.SigningMethodHS256, []byte(secret), header("HS256", testKid), c)

			// The gateway itself does not treat eve as an admin...
			if resp := g.Do(t, req("GET", "/api/admin", bearer(tok))); resp.Status != http.StatusForbidden {
				t.Fatalf("admin route: status = %d, want 403", resp.Status)
			}
			up.WantNothing(t)
			// ...so the upstream must not be told she is one.
			resp := g.Do(t, req("GET", "/api/x", bearer(tok)))
			if resp.Status != http.StatusOK {
				t.Fatalf("api route: status = %d, want 200 (body %q)", resp.Status, resp.Body)
			}
			s := up.One(t)
			for _, r := range strings.Split(s.Header.Get("X-Auth-Roles"), ",") {
				if strings.TrimSpace(r) == "admin" {
					t.Errorf("upstream X-Auth-Roles = %q: reads as the admin role the gateway refused", s.Header.Get("X-Auth-Roles"))
				}
			}
			for _, sc := range strings.Fields(s.Header.Get("X-Auth-Scopes")) {
				if sc == "admin:all" {
					t.Errorf("upstream X-Auth-Scopes = %q: reads as a scope admin:all the token does not have", s.Header.Get("X-Auth-Scopes"))
				}
			}
		})
	}
}

// TestIdentityValuesWithControlCharacters: a claim holding CR/LF must not
// split into a header of its own at the upstream. Today net/http's Transport
// refuses the header value, so the gateway answers 502; a 401 (the token
// carries an unusable claim) would be the clearer answer, and is accepted.
func TestIdentityValuesWithControlCharacters(t *testing.T) {
	t.Parallel()
	g, up, secret := startStandard(t)
	for _, tc := range []struct {
		name  string
		claim map[string]any
	}{
		{"subject with CRLF", map[string]any{"sub": "eve\r\nX-Auth-Roles: admin"}},
		{"email with LF", map[string]any{"email": "eve@example.com\nX-Auth-Roles: admin"}},
		{"role with CRLF", map[string]any{"roles": []string{"reader\r\nX-Auth-Roles: admin"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up.Reset()
			c := accessClaims("eve")
			for k, v := range tc.claim {
				c[k] = v
			}
			tok := sign(t, jwt.SigningMethodHS256, []byte(secret), header("HS256", testKid), c)
			resp := g.Do(t, req("GET", "/api/x", bearer(tok)))
			if resp.Status != http.StatusBadGateway && resp.Status != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401 or 502", resp.Status)
			}
			resp.ErrorMessage(t)
			up.WantNothing(t)
		})
	}
}
