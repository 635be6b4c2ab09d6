package routing

import (
	"fmt"
	"testing"
)

// BenchmarkMatch matches paths of the same depth against tables of growing
// size: the cost should not grow with the number of routes.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			tb := NewTable[int]()
			if err := tb.Add("/", -1); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if err := tb.Add(fmt.Sprintf("/svc%d/v%d/items", i/10, i%10), i); err != nil {
					b.Fatal(err)
				}
			}
			paths := make([]string, 64)
			for k := range paths {
				i := (k * 7919) % n
				paths[k] = fmt.Sprintf("/svc%d/v%d/items/%d/details", i/10, i%10, k)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, _, ok := tb.Match(paths[i&63]); !ok {
					b.Fatal("no match")
				}
			}
		})
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
