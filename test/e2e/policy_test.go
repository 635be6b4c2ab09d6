package e2e

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// policyConfig has one route per allow_if case; the jwt strategy verifies
// tokens signed with ${ACCESS_SECRET}.
const policyConfig = "\n" + userJWTConfig + `routes:
  - name: tenant
    path: /tenant
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [staff]
    allow_if: 'identity.claims.tenant == "a"'
  - name: negated
    path: /negated
    upstream: UPSTREAM
    strategies: [userJwt]
    allow_if: '!(identity.claims.banned == true)'
  - name: typical
    path: /typical
    upstream: UPSTREAM
    strategies: [userJwt]
    allow_if: 'identity.subject.endsWith("@example.com") || "ops" in identity.roles'
  - name: request
    path: /request
    upstream: UPSTREAM
    strategies: [userJwt]
    allow_if: >-
      ip_in(request.client_ip, "127.0.0.0/8") && request.headers["x-app"] == "web" &&
      request.query.v == "1" && request.method == "GET" && request.path.startsWith("/request/") &&
      now > timestamp("2020-01-01T00:00:00Z")
  - name: office
    path: /office
    upstream: UPSTREAM
    strategies: [userJwt]
    allow_if: 'ip_in(request.client_ip, "10.0.0.0/8")'
`

// claimsToken signs an access token of the test issuer with extra claims.
func claimsToken(t *testing.T, secret, sub string, roles []string, extra ...any) string {
	t.Helper()
	c := with(accessClaims(sub, roles...), extra...)
	return sign(t, jwt.SigningMethodHS256, []byte(secret), header("HS256", "hs-1"), c)
}

// TestPolicyAllowIf drives allow_if through the real binary: what is
// allowed reaches the upstream, what is denied (false, or an evaluation
// error such as a missing claim) is a 403 JSON error logged with the reason
// policy_denied and never forwarded.
func TestPolicyAllowIf(t *testing.T) {
	up := newUpstream(t, 0)
	secret := randomSecret(t)
	g := startGateway(t, strings.ReplaceAll(policyConfig, "UPSTREAM", up.URL), map[string]string{"ACCESS_SECRET": secret})
	tenantA := claimsToken(t, secret, "ann", []string{"staff"}, "tenant", "a")
	tenantB := claimsToken(t, secret, "bob", []string{"staff"}, "tenant", "b")
	noTenant := claimsToken(t, secret, "cid", []string{"staff"})
	banned := claimsToken(t, secret, "dan", []string{"staff"}, "banned", true)
	ops := claimsToken(t, secret, "eve", []string{"ops"})
	mail := claimsToken(t, secret, "fay@example.com", nil)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"claim matches", req("GET", "/tenant/x", bearer(tenantA)), 200},
		{"claim differs", req("GET", "/tenant/x", bearer(tenantB)), 403},
		// Attack: a token without the claim must not pass because the
		// expression cannot be evaluated.
		{"missing claim is denied", req("GET", "/tenant/x", bearer(noTenant)), 403},
		{"missing claim under a negation is denied, not allowed", req("GET", "/negated/x", bearer(noTenant)), 403},
		{"negated claim present", req("GET", "/negated/x", bearer(banned)), 403},
		// Attack: the client's own X-Auth-* and claims-looking headers are
		// not the identity.
		{"client X-Auth-Roles is not a role", req("GET", "/typical/x", bearer(noTenant), "X-Auth-Roles: ops", "X-Auth-Subject: x@example.com"), 403},
		{"role", req("GET", "/typical/x", bearer(ops)), 200},
		{"subject", req("GET", "/typical/x", bearer(mail)), 200},
		{"headers, query, client_ip, method, path, now", req("GET", "/request/x?v=1&v=2", bearer(noTenant), "X-App: web"), 200},
		{"query's first value counts", req("GET", "/request/x?v=2&v=1", bearer(noTenant), "X-App: web"), 403},
		{"header missing", req("GET", "/request/x?v=1", bearer(noTenant)), 403},
		{"method", req("POST", "/request/x?v=1", bearer(noTenant), "X-App: web", "Content-Length: 0"), 403},
		// Attack: X-Forwarded-For from a peer that is not a trusted proxy
		// does not change request.client_ip.
		{"spoofed X-Forwarded-For", req("GET", "/office/x", bearer(ops), "X-Forwarded-For: 10.1.2.3", "X-Real-IP: 10.1.2.3"), 403},
	}
	// Twice: the second time every token comes from the gateway's token
	// cache, which holds claims undecoded until a route reads them.
	for _, round := range []string{"first", "cached"} {
		for i, tc := range tests {
			t.Run(round+"/"+tc.name, func(t *testing.T) {
				up.Reset()
				id := "policy-" + round + "-" + string(rune('a'+i))
				raw := strings.Replace(tc.raw, "Connection: close\r\n", "Connection: close\r\nX-Request-Id: "+id+"\r\n", 1)
				resp := g.Do(t, raw)
				if resp.Status != tc.status {
					t.Fatalf("status %d, want %d (%s)", resp.Status, tc.status, resp.Body)
				}
				ev := g.Event(t, id)
				if tc.status == 200 {
					up.One(t)
					if ev["outcome"] != "allowed" {
						t.Errorf("event %v, want allowed", ev)
					}
					return
				}
				up.WantNothing(t)
				if msg := resp.ErrorMessage(t); msg != "forbidden by policy" {
					t.Errorf("error %q, want %q", msg, "forbidden by policy")
				}
				if ev["reason"] != "policy_denied" || ev["outcome"] != "forbidden" {
					t.Errorf("event outcome=%v reason=%v, want forbidden policy_denied", ev["outcome"], ev["reason"])
				}
			})
		}
	}

	t.Run("explain shows the expression and its result", func(t *testing.T) {
		res := g.CLI(t, "explain", "-config", g.ConfigPath, "GET", "/tenant/x", "-H", "Authorization: Bearer "+noTenant)
		if !strings.Contains(res.Stdout, `allow_if:  identity.claims.tenant == "a" => error: no such key: tenant`) ||
			!strings.Contains(res.Stdout, "reason=policy_denied") {
			t.Errorf("explain printed:\n%s", res.Stdout)
		}
		res = g.CLI(t, "explain", "-config", g.ConfigPath, "GET", "/tenant/x", "-H", "Authorization: Bearer "+tenantA)
		if !strings.Contains(res.Stdout, `=> true`) {
			t.Errorf("explain printed:\n%s", res.Stdout)
		}
	})
}

// TestPolicyValidate: a type error, an unknown variable and a bad CIDR
// literal are config errors at the line of their allow_if, all reported at
// once, and the gateway does not start on them.
func TestPolicyValidate(t *testing.T) {
	cfg := "\n" + userJWTConfig + `routes:
  - name: a
    path: /a
    upstream: http://127.0.0.1:1
    strategies: [userJwt]
    allow_if: 'identity.email + 1 == 2'
  - name: b
    path: /b
    upstream: http://127.0.0.1:1
    strategies: [userJwt]
    allow_if: 'user.admin'
  - name: c
    path: /c
    upstream: http://127.0.0.1:1
    strategies: [userJwt]
    allow_if: 'ip_in(request.client_ip, "10.0.0.1/8")'
`
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	writeAtomic(t, path, cfg)
	res := runCLI(t, dir, map[string]string{"ACCESS_SECRET": randomSecret(t)}, "validate", "-config", path)
	if res.Code == 0 {
		t.Fatalf("validate accepted the config:\n%s", res.Stdout)
	}
	out := res.Stdout + res.Stderr
	for _, want := range []string{
		path + ":" + strconv.Itoa(lineOf(t, cfg, "    allow_if: 'identity.email + 1 == 2'")) + ": routes[0].allow_if: column 16: found no matching overload for '_+_' applied to '(string, int)'",
		path + ":" + strconv.Itoa(lineOf(t, cfg, "    allow_if: 'user.admin'")) + ": routes[1].allow_if: column 1: undeclared reference to 'user'",
		path + ":" + strconv.Itoa(lineOf(t, cfg, `    allow_if: 'ip_in(request.client_ip, "10.0.0.1/8")'`)) + `: routes[2].allow_if: column 26: ip_in: cidr "10.0.0.1/8" has bits set after the prefix length (did you mean 10.0.0.0/8?)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

// TestPolicyReloadUnderLoad changes a route's allow_if while clients
// hammer it with a token both versions allow: the new policy takes effect
// and not one request fails.
func TestPolicyReloadUnderLoad(t *testing.T) {
	up := newUpstream(t, 0)
	secret := randomSecret(t)
	v1 := reloadHead + `    allow_if: '"reader" in identity.roles'
`
	v2 := reloadHead + `    allow_if: '"reader" in identity.roles && identity.subject != "mallory"'
`
	g := startGateway(t, strings.ReplaceAll(v1, "UPSTREAM", up.URL), map[string]string{"ACCESS_SECRET": secret})
	alice := g.Token(t, "-sub", "alice", "-roles", "reader")
	mallory := g.Token(t, "-sub", "mallory", "-roles", "reader")
	h := startHammer(4, "http://"+g.Addr+"/api/steady/ping", alice)
	defer h.cancel()
	wantStatusNow(t, g, "/api/steady/x", mallory, http.StatusOK)
	time.Sleep(200 * time.Millisecond)
	writeAtomic(t, g.ConfigPath, reloadVersion(v2, g, up))
	pollUntil(t, "the new policy denies mallory", statusCond(g, "/api/steady/x", mallory, http.StatusForbidden))
	wantStatusNow(t, g, "/api/steady/x", alice, http.StatusOK)
	time.Sleep(200 * time.Millisecond)
	h.stop(t)
}
