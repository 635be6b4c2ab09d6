package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/tokens"
)

// TestCacheMetrics: the verified-token cache reports its misses and hits to
// /metrics (the same hook serves introspection, JWKS and API key caches).
func TestCacheMetrics(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	app := jwtApp(t, `  - {name: api, path: /, upstream: "`+up.URL+`", strategies: [jwt]}
`)
	tok, _, _, _ := app.Issuer().Access(tokens.AccessClaims{Subject: "alice"})
	for range 3 {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	w := httptest.NewRecorder()
	app.AdminHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	for _, want := range []string{
		`authgateway_cache_requests_total{cache="jwt_tokens",result="miss"} 1`,
		`authgateway_cache_requests_total{cache="jwt_tokens",result="hit"} 2`,
		`authgateway_requests_total{outcome="allowed",route="api",status="200"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, tok) {
		t.Error("metrics contain the token")
	}
}
