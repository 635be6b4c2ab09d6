package strategies

import (
	"slices"
	"testing"
)

func TestClaimPathsUnion(t *testing.T) {
	claims := map[string]any{
		"realm_access": map[string]any{"roles": []any{"admin", "staff"}},
		"groups":       []any{"staff", "ops"},
		"scope":        "a b",
	}
	tests := []struct {
		names []string
		want  []string
	}{
		{nil, []string{}}, // default "roles": absent
		{[]string{"realm_access.roles"}, []string{"admin", "staff"}},
		{[]string{"realm_access.roles", "groups"}, []string{"admin", "staff", "ops"}},
		{[]string{"groups", "missing", "realm_access.roles"}, []string{"staff", "ops", "admin"}},
		{[]string{"missing", "realm_access.missing"}, []string{}},
	}
	for _, tc := range tests {
		got := NewClaimPaths(tc.names, "roles").Strings(claims)
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("roles of %q = %q; want %q", tc.names, got, tc.want)
		}
	}
}
