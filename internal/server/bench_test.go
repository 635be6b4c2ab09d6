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

// BenchmarkGatewayJWT is the whole gateway as built from a config (logging
// to a discarding writer, metrics on) serving a JWT route in front of an
// in-process upstream: route match + jwt (cached) + limits + headers + proxy.
func BenchmarkGatewayJWT(b *testing.B) {
	for _, tc := range []struct{ name, extra string }{
		{"public", ""},
		{"jwt", ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
			defer up.Close()
			dir := b.TempDir()
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
  - {name: api, path: /api, upstream: "` + up.URL + `", strategies: [jwt]}
  - {name: pub, path: /, upstream: "` + up.URL + `", public: true}
`
			cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(y), os.LookupEnv)
			if err != nil {
				b.Fatal(err)
			}
			app, err := Build(context.Background(), cfg, NewLogger(cfg.Log, io.Discard))
			if err != nil {
				b.Fatal(err)
			}
			defer app.Close()
			tok, _, _, _ := app.Issuer.Access(tokens.AccessClaims{Subject: "alice", Roles: []string{"admin"}})
			target := "/pub/x"
			if tc.name == "jwt" {
				target = "/api/x"
			}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", target, nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				app.Gateway.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
