package e2e

// Attacks found by the review of sessions, login, basic and mtls (the code
// of issues 17 and 19): each row failed against the code before its fix,
// unless marked (control).

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReviewBasicCostCap: an htpasswd line of bcrypt cost 31 (bcrypt's
// maximum: about a day per check) is a config error with file:line, and
// written into the file of a running gateway it fails every Basic
// credential closed at once (503) instead of holding a bcrypt slot for a
// day per request that names its user. Before: validate passed, and the
// request for bob never came back.
func TestReviewBasicCostCap(t *testing.T) {
	up := newUpstream(t, 0)
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	alice := htpasswdLine(t, "alice", "alice-pw", "-cost", "4")
	// A cost-31 hash: alice's with another cost, which parses as bcrypt;
	// nothing here spends the work unless the gateway checks against it.
	_, h, _ := strings.Cut(alice, ":")
	bob := "bob:" + h[:4] + "31" + h[6:]
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(alice + "\n" + bob + "\n")
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(basicConfig(t, file, up.URL, 100000)), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, dir, nil, "validate", "-config", cfg)
	if want := file + `:2: user "bob": bcrypt cost 31 is above 17`; res.Code != 1 || !strings.Contains(res.Stdout+res.Stderr, want) {
		t.Errorf("validate: exit %d\n%s%s\nwant exit 1 and %q", res.Code, res.Stdout, res.Stderr, want)
	}

	write(alice + "\n")
	g := startGateway(t, basicConfig(t, file, up.URL, 100000), nil)
	if r := g.Do(t, req("GET", "/api/x", basicAuth("alice", "alice-pw"))); r.Status != http.StatusOK {
		t.Fatalf("(control) alice before the edit: status %d", r.Status)
	}
	write(alice + "\n" + bob + "\n")
	up.Reset()
	for _, tc := range []struct{ user, pass string }{{"bob", "guess"}, {"mallory", "guess"}, {"alice", "wrong"}} {
		done := make(chan *Response, 1)
		go func() {
			r, err := doRaw(g.Addr, req("GET", "/api/x", basicAuth(tc.user, tc.pass)))
			if err != nil {
				r = &Response{Status: -1, Body: []byte(err.Error())}
			}
			done <- r
		}()
		select {
		case r := <-done:
			if r.Status != http.StatusServiceUnavailable {
				t.Errorf("%s with a cost-31 line in the file: status %d, want 503 (%s)", tc.user, r.Status, truncate(r.Body))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s with a cost-31 line in the file: no answer after 5s", tc.user)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("the upstream saw %d requests", n)
	}
}

// TestReviewBackchannelLogoutToken: logout tokens that OIDC Back-Channel
// Logout 1.0 forbids beyond TestBackchannelLogout's: "nonce": null is a
// nonce member (the spec: MUST NOT be present; it was read as absent), an
// iat ten minutes ahead, a sid longer than any the gateway keeps. Each is
// 400 and alice's session lives on; then the valid token ends it (control).
func TestReviewBackchannelLogoutToken(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "  backchannel_logout: true\n")
	_, refresh := s.login(t)
	alive := s.keepAlive(t, &refresh)
	for _, tc := range []struct {
		name   string
		change map[string]any
	}{
		{"nonce null", map[string]any{"nonce": json.RawMessage("null")}},
		{"nonce empty", map[string]any{"nonce": ""}},
		{"iat ten minutes ahead", map[string]any{"iat": time.Now().Add(10 * time.Minute).Unix()}},
		{"sid of 300 bytes", map[string]any{"sid": strings.Repeat("s", 300), "sub": nil}},
		{"sub not a string", map[string]any{"sub": 42}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := s.op.SignLogoutToken(t, logoutClaims(s.op, tc.change))
			if r := postLogoutToken(t, s.a, tok); r.Status != http.StatusBadRequest {
				t.Errorf("status %d, want 400 (%s)", r.Status, truncate(r.Body))
			}
			alive("after a refused logout token (" + tc.name + ")")
		})
	}
	if r := postLogoutToken(t, s.a, s.op.SignLogoutToken(t, logoutClaims(s.op, nil))); r.Status != http.StatusOK {
		t.Fatalf("(control) valid logout token: status %d", r.Status)
	}
	if r := s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh))); r.Status != http.StatusUnauthorized {
		t.Errorf("(control) refresh cookie after the valid logout token: status %d, want 401", r.Status)
	}
}
