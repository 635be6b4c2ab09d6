package e2e

// OIDC Back-Channel Logout 1.0 at POST /auth/backchannel-logout, on two
// replicas sharing one Redis. zitadel's example OP cannot send logout
// tokens itself: the test signs them with the OP's own signing key (the key
// its JWKS publishes; oidctest.SignLogoutToken), and forges the rest.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutClaims are the claims of a valid logout token for alice from op;
// change answers them with changes (a nil value deletes the claim).
func logoutClaims(op *oidctest.Provider, change map[string]any) map[string]any {
	c := map[string]any{
		"iss": op.Issuer, "aud": oidctest.GatewayClientID, "sub": oidctest.UserID,
		"iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Minute).Unix(),
		"jti":    "jti-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// postLogoutToken posts tok as the provider does.
func postLogoutToken(t *testing.T, g *Gateway, tok string) *Response {
	t.Helper()
	body := url.Values{"logout_token": {tok}}.Encode()
	return g.Do(t, req("POST", "/auth/backchannel-logout", "Content-Type: application/x-www-form-urlencoded",
		"Content-Length: "+strconv.Itoa(len(body)))+body)
}

// unsigned is a logout token with alg none.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "logout+jwt"})
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "  backchannel_logout: true\n")
	other := oidctest.Start(t, oidctest.Options{}) // another provider's key
	_, refresh := s.login(t)
	alive := s.keepAlive(t, &refresh) // alice's session still works (renewing it at B)

	valid := s.op.SignLogoutToken(t, logoutClaims(s.op, nil))
	forged := []struct{ name, token string }{
		{"signed by another provider's key", other.SignLogoutToken(t, logoutClaims(s.op, nil))},
		{"alg none", unsigned(t, logoutClaims(s.op, nil))},
		{"tampered payload", valid[:len(valid)-8] + "AAAAAAAA"},
		{"aud of another client", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"aud": "other-client"}))},
		{"iss of another provider", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"iss": other.Issuer}))},
		{"no events", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"events": nil}))},
		{"events without the back-channel event", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"events": map[string]any{"http://example.com/other": map[string]any{}}}))},
		{"back-channel event not an object", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"events": map[string]any{backchannelEvent: "yes"}}))},
		{"nonce (an ID token is not a logout token)", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"nonce": "n-1"}))},
		{"no jti", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"jti": nil}))},
		{"no sub nor sid", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"sub": nil}))},
		{"no iat", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"iat": nil}))},
		{"iat ten minutes old", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"iat": time.Now().Add(-10 * time.Minute).Unix()}))},
		{"expired", s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}))},
		{"garbage", "not-a-token"},
		{"empty", ""},
	}
	for _, tc := range forged {
		t.Run(tc.name, func(t *testing.T) {
			if r := postLogoutToken(t, s.a, tc.token); r.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400 (%s)", r.Status, truncate(r.Body))
			}
			alive("after a refused logout token (" + tc.name + ")")
		})
	}
	if r := s.a.Do(t, req("GET", "/auth/backchannel-logout")); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", r.Status)
	}
	// A valid token for another provider session ends nothing of alice's.
	if r := postLogoutToken(t, s.b, s.op.SignLogoutToken(t, logoutClaims(s.op, map[string]any{"sid": "another-op-session", "sub": nil}))); r.Status != http.StatusOK {
		t.Fatalf("logout of another provider session: status %d, want 200", r.Status)
	}
	alive("after the logout of another provider session")

	// The valid token: alice's sessions end on both replicas within a second.
	access, _ := wantRenewed(t, "current session", s.a.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh))), http.StatusOK)
	_, refresh = wantRenewed(t, "current session", s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh))), http.StatusOK)
	if r := postLogoutToken(t, s.a, valid); r.Status != http.StatusOK {
		t.Fatalf("valid logout token: status %d, want 200 (%s)", r.Status, truncate(r.Body))
	}
	ss := &sharedState{a: s.a, b: s.b, reps: []replicaGW{{"A", s.a}, {"B", s.b}}}
	ss.refusedWithinASecond(t, "access cookie after back-channel logout", req("GET", "/app/x", cookieHeader(accessCookieName+"="+access)))
	for _, g := range []*Gateway{s.a, s.b} {
		if r := g.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh))); r.Status != http.StatusUnauthorized {
			t.Fatalf("refresh cookie after back-channel logout: status %d, want 401", r.Status)
		}
	}

	// The same token again (at the other replica) is refused and ends
	// nothing: a new login stays.
	_, refresh = s.login(t)
	if r := postLogoutToken(t, s.b, valid); r.Status != http.StatusBadRequest {
		t.Fatalf("replayed jti at the other replica: status %d, want 400", r.Status)
	}
	alive("after a replayed logout token")
}
