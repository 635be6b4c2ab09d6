package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const secret32 = "0123456789abcdef0123456789abcdef"

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const validYAML = `server:
  listen: ":8080"
  trusted_proxies: ["10.0.0.0/8", "192.168.1.1"]
tokens:
  issuer: api.example.com
  audience: example.com
  signing_keys:
    - {kid: k1, algorithm: HS256, secret: ${ACCESS_SECRET}}
strategies:
  jwt:
    type: jwt
    issuer: api.example.com
    audience: example.com
    algorithms: [HS256]
    keys: tokens
routes:
  - name: admin
    path: /api/admin/
    upstream: http://127.0.0.1:9000
    strategies: [jwt]
    roles: [admin]
  - name: site
    path: /
    upstream: http://127.0.0.1:9001
    public: true
    rate_limit: {limit: ${LIMIT:-5}, period: 1d}
`

func TestParseValid(t *testing.T) {
	cfg, err := Parse("gw.yaml", []byte(validYAML), env(map[string]string{"ACCESS_SECRET": secret32}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := cfg.Tokens.SigningKeys[0].Secret; got != secret32 {
		t.Errorf("secret not expanded: got len %d", len(got))
	}
	if got := cfg.Routes[0].CanonicalPath; got != "/api/admin" {
		t.Errorf("canonical path = %q, want /api/admin", got)
	}
	if got := cfg.Routes[1].RateLimit; got.Limit != 5 || got.Period.D() != 24*time.Hour || got.By != "ip" {
		t.Errorf("rate limit = %+v, want limit 5 period 24h by ip", got)
	}
	if got := cfg.Server.AdminListen; got != "127.0.0.1:9090" {
		t.Errorf("admin_listen default = %q", got)
	}
	if got := len(cfg.Server.TrustedPrefixes()); got != 2 {
		t.Errorf("trusted prefixes = %d, want 2", got)
	}
	if af := cfg.RateLimits.AuthFailures; af.Limit != 10 || af.Period.D() != time.Minute || af.OnRedisError != "deny" {
		t.Errorf("auth_failures defaults = %+v", af)
	}
	if cfg.Strategies["jwt"].Leeway.D() != 30*time.Second || !slices.Equal(cfg.Strategies["jwt"].RolesClaim, ClaimNames{"roles"}) {
		t.Errorf("jwt defaults not applied: %+v", cfg.Strategies["jwt"])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // each must appear in the error, in order of lines
	}{
		{"unknown top-level key", "servr: {}\nroutes: []\n", nil,
			[]string{`gw.yaml:1: servr: unknown key (did you mean "server"?)`}},
		{"syntax error", "routes: [\n  - a: b\n  c\n", nil, []string{"gw.yaml:"}},
		{"type error", "server:\n  max_header_bytes: lots\n", nil, []string{`gw.yaml:2: server.max_header_bytes: want a whole number, got "lots"`}},
		{"bad duration", "tokens:\n  access_ttl: 15 minutes\n", nil, []string{"gw.yaml:2:", "invalid duration"}},
		{"many problems at once", `tokens:
  access_ttl: 1h
  signing_keys:
    - {kid: k1, algorithm: HS256, secret: short}
strategies:
  jwt: {type: jwt, issuer: a, audience: b, algorithms: [HS256], keys: tokens}
  weird: {type: saml}
routes:
  - path: /api
    upstream: http://x
    strategies: [jwtt]
  - path: /api/
    upstream: ftp://x
    strategies: [jwt]
  - path: /pub
    public: true
  - path: /nothing
    upstream: http://y
`, nil, []string{
			"gw.yaml:2: tokens.access_ttl: 1h0m0s is longer than 15m",
			"gw.yaml:4: tokens.signing_keys[0].secret: HMAC secret is 5 bytes; at least 32 are required",
			`gw.yaml:7: strategies.weird.type: unknown strategy type "saml"`,
			`gw.yaml:11: routes[0].strategies[0]: unknown strategy "jwtt" (did you mean "jwt"?)`,
			`gw.yaml:12: routes[1].path: duplicate path "/api/" (also routes[0])`,
			`gw.yaml:13: routes[1].upstream: "ftp://x" is not an absolute http(s) URL`,
			"gw.yaml:15: routes[2].upstream: required",
			"gw.yaml:17: routes[3].strategies: a route needs strategies, or public: true",
		}},
		{"unset secret env", `tokens:
  signing_keys: [{kid: k1, algorithm: HS256, secret: "${NOPE}"}]
routes: [{path: /, upstream: "http://x", public: true}]
`, nil, []string{"gw.yaml:2: tokens.signing_keys[0].secret: required for HS256"}},
		{"route path tricks", `routes:
  - {path: /a/../b, upstream: "http://x", public: true}
  - {path: "/a;b", upstream: "http://x", public: true}
  - {path: a, upstream: "http://x", public: true}
  - {path: "/a//b", upstream: "http://x", public: true}
`, nil, []string{"gw.yaml:2:", "gw.yaml:3:", "gw.yaml:4:", "gw.yaml:5:"}},
		{"env cannot inject structure", "server:\n  listen: ${L}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
			map[string]string{"L": "x\nadmin_listen: evil"}, nil},
		{"public with strategies", `strategies:
  jwt: {type: jwt, issuer: a, audience: b, algorithms: [RS256], jwks_url: "https://idp/jwks"}
routes: [{path: /, upstream: "http://x", public: true, strategies: [jwt]}]
`, nil, []string{"gw.yaml:3: routes[0].public: a public route takes no strategies"}},
		{"public with allow_if", `routes:
  - path: /
    upstream: "http://x"
    public: true
    allow_if: 'ip_in(request.client_ip, "10.0.0.0/8")'
`, nil, []string{"gw.yaml:5: routes[0].allow_if: a public route has no identity to check"}},
		{"hmac with jwks", `strategies:
  jwt: {type: jwt, issuer: a, audience: b, algorithms: [HS256], jwks_url: "https://idp/jwks"}
routes: [{path: /, upstream: "http://x", strategies: [jwt]}]
`, nil, []string{"gw.yaml:2: strategies.jwt.algorithms: HMAC algorithms cannot be verified"}},
		{"allow_unverified_email without login", `strategies:
  sso: {type: oauth2, issuer_url: "https://idp", client_id: gw, allow_unverified_email: true}
routes: [{path: /, upstream: "http://x", strategies: [sso]}]
`, nil, []string{"gw.yaml:2: strategies.sso.allow_unverified_email: only applies with login: true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("gw.yaml", []byte(tt.yaml), env(tt.env))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				if cfg.Server.Listen != "x\nadmin_listen: evil" || cfg.Server.AdminListen != "127.0.0.1:9090" {
					t.Fatalf("environment changed structure: listen=%q admin=%q", cfg.Server.Listen, cfg.Server.AdminListen)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want Errors, got %v", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; got:\n%s", w, msg)
				}
			}
		})
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secret")
	if err := os.WriteFile(f, []byte(secret32+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := `tokens:
  signing_keys: [{kid: k1, algorithm: HS256, secret_file: ` + f + `}]
routes: [{path: /, upstream: "http://x", public: true}]
`
	cfg, err := Parse("gw.yaml", []byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tokens.SigningKeys[0].Secret != secret32 {
		t.Errorf("secret_file not read (trailing newline must be trimmed)")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "2s": 2 * time.Second, "0s": 0} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1s", "1.5d", "ten", "-3d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): want error", in)
		}
	}
}
