package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoginAuditJoinsTheAccessLog: the audit line of a login endpoint
// carries the request id of the request's auth event — the one the gateway
// accepted or generated and answered with, never a client's raw
// X-Request-Id it refused — and the client IP the gateway resolved: a
// forged X-Forwarded-For from an untrusted peer is not the address.
func TestLoginAuditJoinsTheAccessLog(t *testing.T) {
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	y := `server: {listen: "127.0.0.1:0", admin_listen: ""}
tokens:
  issuer: i
  audience: a
  signing_keys: [{kid: k, algorithm: HS256, secret: ` + strings.Repeat("k", 40) + `}]
strategies:
  jwt: {type: jwt, issuer: i, audience: a, algorithms: [HS256], keys: tokens, cookie: __Host-authgw_access}
  sso:
    type: oauth2
    issuer_url: http://127.0.0.1:1
    authorization_url: http://127.0.0.1:1/authorize
    token_url: http://127.0.0.1:1/token
    jwks_url: http://127.0.0.1:1/jwks
    client_id: gateway
    client_secret: ` + strings.Repeat("s", 40) + `
    redirect_url: http://gateway.test/auth/callback
    login: true
routes:
  - {name: api, path: /api, upstream: "http://127.0.0.1:1", strategies: [jwt, sso]}
audit:
  output: ` + auditPath + `
`
	var log bytes.Buffer
	app := appFromFile(t, filepath.Join(dir, "c.yaml"), y, WithEventLog(&log))

	for _, tc := range []struct{ name, requestID string }{
		{"a refused request id", "forged id <script>"},
		{"an accepted request id", "client-id-42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log.Reset()
			if err := os.Truncate(auditPath, 0); err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", "http://gateway.test/auth/logout", nil)
			r.RemoteAddr = "198.51.100.7:4711"
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			r.Header.Set("X-Request-Id", tc.requestID)
			r.Header.Set("X-Forwarded-For", "203.0.113.66")
			w := httptest.NewRecorder()
			app.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("logout: %d %s", w.Code, w.Body)
			}
			var access struct {
				RequestID string `json:"request_id"`
				ClientIP  string `json:"client_ip"`
			}
			if err := json.Unmarshal(log.Bytes(), &access); err != nil {
				t.Fatalf("auth event %q: %v", log.String(), err)
			}
			b, err := os.ReadFile(auditPath)
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				Event     string `json:"event"`
				RequestID string `json:"request_id"`
				ClientIP  string `json:"client_ip"`
				Path      string `json:"path"`
			}
			if err := json.Unmarshal(b, &ev); err != nil || ev.Event != "logout" {
				t.Fatalf("audit log %q: %v", b, err)
			}
			if ev.RequestID != w.Header().Get("X-Request-Id") || ev.RequestID != access.RequestID {
				t.Errorf("audit request_id %q; the answer's %q, the auth event's %q", ev.RequestID, w.Header().Get("X-Request-Id"), access.RequestID)
			}
			if tc.requestID == "client-id-42" && ev.RequestID != tc.requestID {
				t.Errorf("audit request_id %q, want the accepted %q", ev.RequestID, tc.requestID)
			}
			if ev.ClientIP != "198.51.100.7" || ev.ClientIP != access.ClientIP {
				t.Errorf("audit client_ip %q, auth event's %q; want the peer 198.51.100.7", ev.ClientIP, access.ClientIP)
			}
			if ev.Path != "/auth/logout" {
				t.Errorf("audit path %q", ev.Path)
			}
		})
	}
}
