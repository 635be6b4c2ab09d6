package e2e

import (
	"strings"
	"testing"
)

// TestAuthEventLog: one JSON auth event per request, with the fields an
// operator needs, and never a credential.
func TestAuthEventLog(t *testing.T) {
	t.Parallel()
	g, _, secret := startStandard(t)
	reader := g.Token(t, "-sub", "rita", "-roles", "reader")
	parts := strings.Split(reader, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	type want struct{ route, outcome, reason, subject, strategy, path string }
	tests := []struct {
		id     string
		raw    string
		status int
		want   want
	}{
		{"log-allowed", req("GET", "/api/x?q=1", "X-Request-Id: log-allowed", bearer(reader)), 200,
			want{"api", "allowed", "", "rita", "userJwt", "/api/x"}},
		{"log-invalid", req("GET", "/api/x", "X-Request-Id: log-invalid", bearer(forged)), 401,
			want{"api", "invalid", "bad_signature", "", "", "/api/x"}},
		{"log-none", req("GET", "/api/x", "X-Request-Id: log-none"), 401,
			want{"api", "unauthenticated", "no_credentials", "", "", "/api/x"}},
		{"log-forbidden", req("GET", "/api/admin", "X-Request-Id: log-forbidden", bearer(reader)), 403,
			want{"admin", "forbidden", "missing_role", "rita", "userJwt", "/api/admin"}},
		{"log-public", req("GET", "/public/p", "X-Request-Id: log-public", "X-Forwarded-For: 203.0.113.9"), 200,
			want{"public", "public", "", "", "", "/public/p"}},
		{"log-not-found", req("GET", "/nowhere", "X-Request-Id: log-not-found"), 404,
			want{"", "not_found", "no_route", "", "", "/nowhere"}},
		{"log-bad-path", req("GET", "/api%2Fadmin", "X-Request-Id: log-bad-path", bearer(reader)), 400,
			want{"", "bad_request", "bad_path", "", "", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			resp := g.Do(t, tc.raw)
			if resp.Status != tc.status {
				t.Fatalf("status = %d, want %d", resp.Status, tc.status)
			}
			if got := resp.Header.Get("X-Request-Id"); got != tc.id {
				t.Errorf("X-Request-Id = %q, want the client's %q", got, tc.id)
			}
			ev := g.Event(t, tc.id)
			fields := map[string]string{
				"route": tc.want.route, "outcome": tc.want.outcome, "reason": tc.want.reason,
				"subject": tc.want.subject, "strategy": tc.want.strategy, "path": tc.want.path,
				// No trusted proxies: X-Forwarded-For is never believed.
				"client_ip": "127.0.0.1", "method": "GET",
			}
			for k, want := range fields {
				got, ok := ev[k].(string)
				if !ok || got != want {
					t.Errorf("event %s = %#v, want %q", k, ev[k], want)
				}
			}
			if got, _ := ev["status"].(float64); int(got) != tc.status {
				t.Errorf("event status = %v, want %d", ev["status"], tc.status)
			}
		})
	}
	if got := len(g.authEvents(t)); got != len(tests) {
		t.Errorf("%d auth events for %d requests, want one each", got, len(tests))
	}
	logs := g.Stdout() + g.Stderr()
	for name, s := range map[string]string{
		"valid token": reader, "forged token": forged, "valid signature": parts[2],
		"token payload": parts[1], "signing secret": secret,
	} {
		if strings.Contains(logs, s) {
			t.Errorf("the gateway's output contains the %s", name)
		}
	}
	if strings.Contains(strings.ToLower(logs), "bearer") {
		t.Errorf("the gateway's output mentions a bearer credential")
	}
}
