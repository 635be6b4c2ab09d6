package headertmpl

import (
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/strategies"
)

// FuzzParse: Parse never panics; a template it accepts renders, for an
// identity and claims holding anything, either nothing (ok false) or a
// value without control characters that is not empty.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"{subject}", "u={email};r={roles}", "{claims.org.id}", "{{x}}", "{", "}", "{claims.}", "a\nb"} {
		f.Add(s, "v\r\nX: 1")
	}
	f.Fuzz(func(t *testing.T, src, val string) {
		tm, err := Parse(src)
		if err != nil {
			return
		}
		if tm.String() != src {
			t.Fatalf("String() = %q, want %q", tm.String(), src)
		}
		id := &strategies.Identity{Subject: val, Email: val, Roles: []string{val, "r"}, Scopes: []string{val}, ClientID: val, Strategy: "s",
			Claims: map[string]any{"org": map[string]any{"id": val}, "a": []any{val, 1.0}, "n": 3.0}}
		out, ok := tm.Append(nil, id)
		if !ok {
			if len(out) != 0 {
				t.Fatalf("not ok, but wrote %q", out)
			}
			return
		}
		if len(out) == 0 || strings.ContainsFunc(string(out), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("Append(%q) = %q", src, out)
		}
	})
}
