package h1

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkRoundTrip is one GET to a net/http upstream on loopback and
// its 2-byte answer read whole: http.Transport (the baseline, with the
// gateway's settings) against this package's connections. The upstream's
// own allocations are in both rows.
func BenchmarkRoundTrip(b *testing.B) {
	up := newHTTPUpstream(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})).url
	h1t := newTransport(b, func(t *http.Transport) {
		t.ReadBufferSize, t.WriteBufferSize = 1<<10, 1<<10
	})
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"http.Transport", h1t.fallback},
		{"h1", h1t},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, up+"/x", nil)
			req.Header.Set("X-Auth-Subject", "alice")
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, resp.Body, buf); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
