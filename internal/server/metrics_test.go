package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/tokens"
)

// TestCacheMetrics: the verified-token cache reports its misses and hits to
// /metrics (the same hook serves introspection, JWKS and API key caches).
func TestCacheMetrics(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	dir := t.TempDir()
	secret := filepath.Join(dir, "s")
	_ = os.WriteFile(secret, []byte(strings.Repeat("k", 40)), 0o600)
	y := `server: {listen: "127.0.0.1:0", admin_listen: ""}
tokens:
  issuer: i
  audience: a
  signing_keys: [{kid: k, algorithm: HS256, secret_file: ` + secret + `}]
strategies:
  jwt: {type: jwt, issuer: i, audience: a, algorithms: [HS256], keys: tokens}
routes:
  - {name: api, path: /, upstream: "` + up.URL + `", strategies: [jwt]}
`
	cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(y), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	app, err := Build(context.Background(), cfg, NewLogger(cfg.Log, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	tok, _, _, _ := app.Issuer.Access(tokens.AccessClaims{Subject: "alice"})
	for range 3 {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		app.Gateway.ServeHTTP(w, r)
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
