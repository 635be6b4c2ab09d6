package config

import (
	"slices"
	"strings"
	"testing"
)

func TestRolesClaimOneOrList(t *testing.T) {
	base := `tokens:
  issuer: gw
  audience: app
  signing_keys: [{kid: k1, algorithm: HS256, secret: "0123456789abcdef0123456789abcdef00"}]
routes:
  - {path: /, upstream: "http://127.0.0.1:1", strategies: [j]}
strategies:
  j:
    type: jwt
    issuer: gw
    audience: app
    algorithms: [HS256]
    keys: tokens
`
	tests := []struct {
		line string
		want []string
		err  string
	}{
		{"", []string{"roles"}, ""},
		{"    roles_claim: realm_access.roles\n", []string{"realm_access.roles"}, ""},
		{"    roles_claim: [realm_access.roles, groups]\n", []string{"realm_access.roles", "groups"}, ""},
		{"    roles_claim: {a: b}\n", nil, "claim name"},
		{"    roles_claim: [[a]]\n", nil, "claim names"},
	}
	for _, tc := range tests {
		cfg, err := Parse("t.yaml", []byte(base+tc.line), func(string) (string, bool) { return "", false })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "t.yaml:") {
				t.Errorf("%q: err = %v; want one naming %q at its line", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got := cfg.Strategies["j"].RolesClaim; !slices.Equal(got, tc.want) {
			t.Errorf("%q: roles_claim = %q; want %q", tc.line, got, tc.want)
		}
	}
}
