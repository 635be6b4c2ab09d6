package routing

import (
	"fmt"
	"testing"
)

// BenchmarkMatch matches paths of the same depth against tables of growing
// size: the cost should not grow with the number of routes. table=exact is
// a case-sensitive table (server.case_sensitive_upstreams: true); fold also
// checks case: for a lower-case path (the common case: scanned, not copied),
// one with capitals that only the catch-all route matches (a segment is
// folded in a stack buffer to look it up; Matched) and one with capitals in
// the route's part (CaseMismatch).
func BenchmarkMatch(b *testing.B) {
	for _, kind := range []string{"exact", "fold"} {
		for _, spelling := range []string{"lower", "mixed", "mismatch"} {
			if kind == "exact" && spelling == "mismatch" {
				continue
			}
			for _, n := range []int{10, 1000, 10000} {
				b.Run(fmt.Sprintf("table=%s/path=%s/routes=%d", kind, spelling, n), func(b *testing.B) {
					benchMatch(b, kind, spelling, n)
				})
			}
		}
	}
}

func benchMatch(b *testing.B, kind, spelling string, n int) {
	tb, want := NewTable[int](), Matched
	if kind == "fold" {
		tb = NewFoldTable[int]()
	}
	if err := tb.Add("/", -1); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := tb.Add(fmt.Sprintf("/svc%d/v%d/items", i/10, i%10), i); err != nil {
			b.Fatal(err)
		}
	}
	format := "/svc%d/v%d/items/%d/details"
	switch spelling {
	case "mixed":
		format = "/svc%d/V%dX/items/%d/details"
	case "mismatch":
		format, want = "/svc%d/v%d/Items/%d/details", CaseMismatch
	}
	paths := make([]string, 64)
	for k := range paths {
		i := (k * 7919) % n
		paths[k] = fmt.Sprintf(format, i/10, i%10, k)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, res := tb.Match(paths[i&63]); res != want {
			b.Fatalf("Match(%q) = %v, want %v", paths[i&63], res, want)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, target string }{
		{"plain", "/api/v1/data/items/42?limit=10"},
		{"escaped_dotted", "/api/./v1//data/%69tems/x/../caf%c3%a9?limit=10"},
		{"absolute", "http://example.com/api/v1/data/items/42?limit=10"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Normalize(bc.target); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
