package main

import "testing"

// TestPrintable: a subject holding a terminal escape, a tab or a newline is
// printed quoted, never raw; a plain one (any script) as it is.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"Jörg Ünal", "Jörg Ünal"},
		{"\x1b[2Jroot", `"\x1b[2Jroot"`},
		{"a\tb", `"a\tb"`},
		{"a\nb", `"a\nb"`},
		{"a\u202eb", `"a\u202eb"`}, // right-to-left override
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
}
