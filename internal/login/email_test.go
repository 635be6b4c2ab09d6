package login_test

import (
	"net/http"
	"testing"

	"github.com/authgateway/authgateway/internal/login"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// TestUnverifiedEmail logs users in at the real zitadel OP whose email is
// not verified: zitadel says nothing (it never writes email_verified: false),
// Keycloak says false, Cognito "false". By default a stated-unverified
// email's login is refused and a silent one signs in without an email; with
// AllowUnverifiedEmail both sign in, and an email the provider says is
// unverified is not in the session (nor forwarded), one it says nothing
// about is.
func TestUnverifiedEmail(t *testing.T) {
	const pw = "user-password"
	users := append(oidctest.DefaultUsers(),
		oidctest.User{ID: "uma", Username: "uma", Password: pw, Email: "uma@example.com", EmailUnverified: true},
		oidctest.User{ID: "ursula", Username: "ursula", Password: pw, Email: "ursula@example.com", EmailUnverified: true, EmailVerifiedClaim: false},
		oidctest.User{ID: "cora", Username: "cora", Password: pw, Email: "cora@example.com", EmailUnverified: true, EmailVerifiedClaim: "false"},
	)
	op := oidctest.Start(t, oidctest.Options{Users: users})
	for _, tc := range []struct {
		user      string
		allow     bool
		wantLogin bool
		wantEmail string
	}{
		{oidctest.UserName, false, true, oidctest.UserEmail},
		{"uma", false, true, ""},
		{"ursula", false, false, ""},
		{"cora", false, false, ""},
		{oidctest.UserName, true, true, oidctest.UserEmail},
		{"uma", true, true, "uma@example.com"},
		{"ursula", true, true, ""},
		{"cora", true, true, ""},
	} {
		name := tc.user
		if tc.allow {
			name += "/allow_unverified_email"
		}
		t.Run(name, func(t *testing.T) {
			password := pw
			if tc.user == oidctest.UserName {
				password = oidctest.UserPassword
			}
			e := &env{op: op, clk: &clock{}, up: startUpstream(t), user: tc.user, password: password, allowUnverifiedEmail: tc.allow}
			gw := e.startGateway(t)
			b := newBrowser(t)
			cb, _ := e.authorize(t, b, gw, "/app/page")
			resp := b.navigate(t, cb)
			if !tc.wantLogin {
				if resp.StatusCode != http.StatusForbidden || findSetCookie(resp.Response, login.DefaultAccessCookie) != nil ||
					findSetCookie(resp.Response, login.DefaultRefreshCookie) != nil {
					t.Fatalf("callback: %d; want 403 and no session\n%s", resp.StatusCode, resp.Body)
				}
				if resp = b.navigate(t, gw.URL+"/app/page"); resp.StatusCode != http.StatusFound {
					t.Fatalf("page after the refused login: %d; want 302 to login", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("callback: %d; want 200\n%s", resp.StatusCode, resp.Body)
			}
			m := jsonBody(t, b.apiGet(t, gw.URL+"/auth/session", ""))
			if got, _ := m["email"].(string); m["sub"] != tc.user && m["sub"] != oidctest.UserID || got != tc.wantEmail {
				t.Fatalf("/auth/session = %v; want email %q", m, tc.wantEmail)
			}
			if resp = b.navigate(t, gw.URL+"/app/page"); resp.StatusCode != http.StatusOK {
				t.Fatalf("page: %d", resp.StatusCode)
			}
			if got := e.up.last(t).Get("X-Auth-Email"); got != tc.wantEmail {
				t.Fatalf("upstream X-Auth-Email = %q; want %q", got, tc.wantEmail)
			}
		})
	}
}
