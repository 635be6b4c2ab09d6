package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

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
			app := jwtApp(b, `  - {name: api, path: /api, upstream: "`+up.URL+`", strategies: [jwt]}
  - {name: pub, path: /, upstream: "`+up.URL+`", public: true}
`)
			tok, _, _, _ := app.Issuer().Access(tokens.AccessClaims{Subject: "alice", Roles: []string{"admin"}})
			target := "/pub/x"
			if tc.name == "jwt" {
				target = "/api/x"
			}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", target, nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				app.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
