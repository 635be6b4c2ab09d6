package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const errorsConfig = `
server:
  upstream_timeout: 1s
routes:
  - name: down
    path: /down
    upstream: CLOSED
    public: true
  - name: slow
    path: /slow
    upstream: SLOW
    public: true
  - name: getonly
    path: /getonly
    methods: [GET]
    upstream: FAST
    public: true
`

// TestGatewayErrors: the gateway's own answers are JSON with the right status.
func TestGatewayErrors(t *testing.T) {
	t.Parallel()
	slow := newUpstream(t, 10*time.Second) // answers only if the gateway waits
	fast := newUpstream(t, 0)
	cfg := strings.NewReplacer("CLOSED", "http://"+freePort(t), "SLOW", slow.URL, "FAST", fast.URL).Replace(errorsConfig)
	g := startGateway(t, cfg, nil)

	tests := []struct {
		name       string
		raw        string
		wantStatus int
		wantHeader map[string]string
	}{
		{"upstream down", req("GET", "/down/x"), http.StatusBadGateway, nil},
		{"upstream too slow", req("GET", "/slow/x"), http.StatusGatewayTimeout, nil},
		{"no route", req("GET", "/nothing/here"), http.StatusNotFound, nil},
		{"wrong method", req("POST", "/getonly/x"), http.StatusMethodNotAllowed, map[string]string{"Allow": "GET, HEAD"}},
		{"wrong method DELETE", req("DELETE", "/getonly"), http.StatusMethodNotAllowed, map[string]string{"Allow": "GET, HEAD"}},
		{"lower-case method is another method", req("get", "/getonly"), http.StatusMethodNotAllowed, map[string]string{"Allow": "GET, HEAD"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			resp := g.Do(t, tc.raw)
			if resp.Status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", resp.Status, tc.wantStatus, resp.Body)
			}
			resp.ErrorMessage(t)
			for k, want := range tc.wantHeader {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if tc.wantStatus == http.StatusGatewayTimeout && time.Since(start) >= 10*time.Second {
				t.Errorf("504 came after %s: the gateway waited for the upstream instead of upstream_timeout", time.Since(start))
			}
		})
	}
	t.Run("allowed methods pass", func(t *testing.T) {
		t.Parallel()
		for _, m := range []string{"GET", "HEAD"} {
			if resp := g.Do(t, req(m, "/getonly/x")); resp.Status != http.StatusOK {
				t.Errorf("%s /getonly/x: status = %d, want 200", m, resp.Status)
			}
		}
	})
}
