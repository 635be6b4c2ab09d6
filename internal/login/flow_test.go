package login_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/login"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

func TestLoginFlow(t *testing.T) {
	e := newEnv(t, "")
	gw := e.startGateway(t)
	b := newBrowser(t)

	// An API request without a session: 401 JSON, no redirect.
	if resp := b.apiGet(t, gw.URL+"/app/page", ""); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("API request without session: %d %s; want 401 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// A browser navigation: 302 to login with the original path and query.
	resp := b.navigate(t, gw.URL+"/app/page?x=1&y=2")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/auth/login?rd="+url.QueryEscape("/app/page?x=1&y=2") {
		t.Fatalf("navigation without session: %d Location %q; want 302 to /auth/login?rd=...", resp.StatusCode, resp.Header.Get("Location"))
	}

	// /auth/login: PKCE S256, state, nonce, and the state cookie.
	resp = b.navigate(t, gw.URL+resp.Header.Get("Location"))
	au, _ := url.Parse(resp.Header.Get("Location"))
	q := au.Query()
	for k, want := range map[string]string{"code_challenge_method": "S256", "response_type": "code",
		"client_id": oidctest.GatewayClientID, "redirect_uri": gw.URL + "/auth/callback"} {
		if q.Get(k) != want {
			t.Errorf("authorization request %s = %q; want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 32 {
			t.Errorf("authorization request %s = %q; want a random value of at least 32 characters", k, q.Get(k))
		}
	}
	if !strings.Contains(q.Get("scope"), "openid") {
		t.Errorf("scope %q lacks openid", q.Get("scope"))
	}
	sc := findSetCookie(resp.Response, login.DefaultStateCookie)
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" ||
		sc.Domain != "" || sc.MaxAge <= 0 || sc.MaxAge > 600 {
		t.Fatalf("state cookie = %+v; want __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, Max-Age <= 600", sc)
	}
	for _, secret := range []string{q.Get("state"), q.Get("nonce")} {
		if strings.Contains(sc.Value, secret) {
			t.Fatalf("state cookie holds the state or nonce in clear")
		}
	}

	// Complete the login: the callback answers 200 with a page that moves on.
	b2 := newBrowser(t)
	cb, _ := e.authorize(t, b2, gw, "/app/page?x=1&y=2")
	resp = b2.navigate(t, cb)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d; want 200 (a 302 would lose the Strict cookies)\n%s", resp.StatusCode, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("callback Content-Type %q", ct)
	}
	if got := continueTarget(t, resp); got != "/app/page?x=1&y=2" {
		t.Fatalf("continue target %q; want the original page", got)
	}
	for _, name := range []string{login.DefaultAccessCookie, login.DefaultRefreshCookie} {
		c := findSetCookie(resp.Response, name)
		if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" || c.MaxAge <= 0 {
			t.Errorf("cookie %s = %+v; want Secure, HttpOnly, SameSite=Strict, Path=/, no Domain", name, c)
		}
	}
	if c := findSetCookie(resp.Response, login.DefaultStateCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("state cookie not cleared by the callback: %+v", c)
	}

	// The original page, with the identity.
	resp = b2.navigate(t, gw.URL+"/app/page?x=1&y=2")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page after login: %d\n%s", resp.StatusCode, resp.Body)
	}
	h := e.up.last(t)
	for k, want := range map[string]string{"X-Auth-Subject": oidctest.UserID, "X-Auth-Email": oidctest.UserEmail,
		"X-Auth-Roles": oidctest.UserRole, "X-Auth-Strategy": "jwt"} {
		if got := h.Get(k); got != want {
			t.Errorf("upstream %s = %q; want %q", k, got, want)
		}
	}
	if strings.Contains(h.Get("Cookie"), login.DefaultAccessCookie) {
		t.Errorf("upstream received the access cookie")
	}

	// /auth/session.
	resp = b2.apiGet(t, gw.URL+"/auth/session", "")
	m := jsonBody(t, resp)
	if resp.StatusCode != http.StatusOK || m["sub"] != oidctest.UserID || m["email"] != oidctest.UserEmail {
		t.Fatalf("/auth/session = %d %v", resp.StatusCode, m)
	}
	if roles, _ := m["roles"].([]any); len(roles) != 1 || roles[0] != oidctest.UserRole {
		t.Fatalf("/auth/session roles = %v", m["roles"])
	}
	if exp, _ := m["exp"].(float64); exp < float64(time.Now().Unix()) {
		t.Fatalf("/auth/session exp = %v", m["exp"])
	}
	resp = b.apiGet(t, gw.URL+"/auth/session", "")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || jsonBody(t, resp)["error"] == nil {
		t.Fatalf("/auth/session without session = %d %q %s; want 401 JSON with WWW-Authenticate", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Body)
	}
}

func findSetCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestCallbackRefusals(t *testing.T) {
	e := newEnv(t, "")
	gw := e.startGateway(t)

	t.Run("state mismatch", func(t *testing.T) {
		b := newBrowser(t)
		cb1, _ := e.authorize(t, b, gw, "/app")
		e.authorize(t, b, gw, "/app") // a second login replaces the state cookie
		resp := b.navigate(t, cb1)
		wantPage(t, resp, http.StatusBadRequest)
		if b.cookie(t, gw, login.DefaultAccessCookie) != nil {
			t.Fatal("session cookie set despite the state mismatch")
		}
	})
	t.Run("state parameter swapped", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("state", strings.Repeat("A", 43))
		u.RawQuery = q.Encode()
		wantPage(t, b.navigate(t, u.String()), http.StatusBadRequest)
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		saved := *b.cookie(t, gw, login.DefaultStateCookie)
		if resp := b.navigate(t, cb); resp.StatusCode != http.StatusOK {
			t.Fatalf("first callback: %d", resp.StatusCode)
		}
		// Replay with the cookie put back: the state was consumed.
		attacker := newBrowser(t)
		saved.Secure, saved.Path = true, "/"
		attacker.setCookie(gw, &saved)
		resp := attacker.navigate(t, cb)
		wantPage(t, resp, http.StatusBadRequest)
		if !strings.Contains(resp.Body, "already used") {
			t.Fatalf("replay page does not say it was used:\n%s", resp.Body)
		}
		if attacker.cookie(t, gw, login.DefaultAccessCookie) != nil {
			t.Fatal("replayed callback opened a session")
		}
	})
	t.Run("missing state cookie", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		wantPage(t, newBrowser(t).navigate(t, cb), http.StatusBadRequest) // another browser: no verifier
		// The rightful browser can still finish: the refusal consumed nothing.
		if resp := b.navigate(t, cb); resp.StatusCode != http.StatusOK {
			t.Fatalf("rightful callback after a cookie-less attempt: %d", resp.StatusCode)
		}
	})
	t.Run("tampered state cookie", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		c := *b.cookie(t, gw, login.DefaultStateCookie)
		v := []byte(c.Value)
		v[len(v)/2] ^= 1
		if v[len(v)/2] == '-' || v[len(v)/2] == '_' {
			v[len(v)/2] = 'A'
		}
		c.Value, c.Secure, c.Path = string(v), true, "/"
		b.setCookie(gw, &c)
		wantPage(t, b.navigate(t, cb), http.StatusBadRequest)
	})
	t.Run("expired state", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		e.clk.Advance(login.StateTTL + time.Minute)
		defer e.clk.Advance(-(login.StateTTL + time.Minute))
		wantPage(t, b.navigate(t, cb), http.StatusBadRequest)
	})
	t.Run("forged code", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("code", "forged-"+q.Get("code"))
		u.RawQuery = q.Encode()
		resp := b.navigate(t, u.String())
		wantPage(t, resp, http.StatusBadGateway)
		if b.cookie(t, gw, login.DefaultAccessCookie) != nil {
			t.Fatal("forged code opened a session")
		}
	})
	// The state cookie rewritten with our own key (as only the gateway can):
	// each check that follows the state check must hold on its own.
	rewrite := func(t *testing.T, b *browser, change func(*login.LoginState)) {
		t.Helper()
		open, seal := login.StateCodec([]byte(signingSecret), login.DefaultStateCookie)
		c := *b.cookie(t, gw, login.DefaultStateCookie)
		st, err := open(c.Value)
		if err != nil {
			t.Fatal(err)
		}
		change(&st)
		if c.Value, err = seal(st); err != nil {
			t.Fatal(err)
		}
		c.Secure, c.Path = true, "/"
		b.setCookie(gw, &c)
	}
	t.Run("nonce mismatch", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		rewrite(t, b, func(s *login.LoginState) { s.Nonce = strings.Repeat("n", 43) })
		wantPage(t, b.navigate(t, cb), http.StatusBadRequest)
		if b.cookie(t, gw, login.DefaultAccessCookie) != nil {
			t.Fatal("ID token with another nonce opened a session")
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		rewrite(t, b, func(s *login.LoginState) { s.Verifier = strings.Repeat("v", 43) })
		wantPage(t, b.navigate(t, cb), http.StatusBadGateway) // the provider refuses the exchange
		if b.cookie(t, gw, login.DefaultAccessCookie) != nil {
			t.Fatal("code exchanged with a wrong verifier")
		}
	})
	t.Run("cookie sealed under another name", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := e.authorize(t, b, gw, "/app")
		open, _ := login.StateCodec([]byte(signingSecret), login.DefaultStateCookie)
		_, sealOther := login.StateCodec([]byte(signingSecret), "__Host-other")
		c := *b.cookie(t, gw, login.DefaultStateCookie)
		st, err := open(c.Value)
		if err != nil {
			t.Fatal(err)
		}
		c.Value, _ = sealOther(st)
		c.Secure, c.Path = true, "/"
		b.setCookie(gw, &c)
		wantPage(t, b.navigate(t, cb), http.StatusBadRequest)
	})
	t.Run("provider error is escaped", func(t *testing.T) {
		b := newBrowser(t)
		resp := b.navigate(t, gw.URL+"/auth/login?rd=/app")
		au, _ := url.Parse(resp.Header.Get("Location"))
		payload := `<script>alert("x")</script><img src=x onerror=alert(1)>`
		q := url.Values{"state": {au.Query().Get("state")}, "error": {"access_denied" + payload},
			"error_description": {payload}}
		resp = b.navigate(t, gw.URL+"/auth/callback?"+q.Encode())
		wantPage(t, resp, http.StatusBadRequest)
		if strings.Contains(resp.Body, "<script") || strings.Contains(resp.Body, "<img") {
			t.Fatalf("provider error reflected unescaped:\n%s", resp.Body)
		}
		if !strings.Contains(resp.Body, "&lt;script&gt;") {
			t.Fatalf("provider error not shown (escaped):\n%s", resp.Body)
		}
	})
	t.Run("POST callback", func(t *testing.T) {
		resp := newBrowser(t).do(t, http.MethodPost, gw.URL+"/auth/callback", nil)
		wantPage(t, resp, http.StatusMethodNotAllowed)
	})
}

func wantPage(t *testing.T, resp *response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d; want %d\n%s", resp.StatusCode, status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q; want an HTML page", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q", csp)
	}
}

func TestOpenRedirectThroughLogin(t *testing.T) {
	e := newEnv(t, "")
	gw := e.startGateway(t)
	payloads := []string{
		"//evil.com",
		"/\\evil.com",
		"\\\\evil.com",
		"https:evil.com",
		"https://evil.com/",
		"/%2F%2Fevil.com",
		"%2F%2Fevil.com",
		"/%5Cevil.com",
		"/ /evil.com",
		"/\t/evil.com",
		"/\r\n/evil.com",
		"javascript:alert(document.domain)",
		"/%252F%252Fevil.com",
		"https://app.example.com@evil.com/",
	}
	b := newBrowser(t)
	for _, rd := range payloads {
		t.Run(rd, func(t *testing.T) {
			if got := e.login(t, b, gw, rd); got != "/" {
				t.Fatalf("rd %q: continue target %q; want /", rd, got)
			}
		})
	}
	// Allowed: a path here, an allow-listed host.
	for rd, want := range map[string]string{
		"/app/x?y=1":                   "/app/x?y=1",
		"https://app.example.com/home": "https://app.example.com/home",
		// Markup in a path is percent-encoded, never reflected.
		`/"><script>alert(1)</script>`: "/%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
	} {
		if got := e.login(t, b, gw, rd); got != want {
			t.Errorf("rd %q: continue target %q; want %q", rd, got, want)
		}
	}
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, "")
	gw := e.startGateway(t)
	b := newBrowser(t)
	e.login(t, b, gw, "/app")
	a1 := b.cookie(t, gw, login.DefaultAccessCookie).Value
	r1 := *b.cookie(t, gw, login.DefaultRefreshCookie)

	resp := b.post(t, gw, "/auth/refresh")
	m := jsonBody(t, resp)
	if resp.StatusCode != http.StatusOK || m["token_type"] != "Bearer" || m["access_token"] == "" {
		t.Fatalf("refresh: %d %v", resp.StatusCode, m)
	}
	a2 := b.cookie(t, gw, login.DefaultAccessCookie).Value
	r2 := b.cookie(t, gw, login.DefaultRefreshCookie).Value
	if a2 == a1 || r2 == r1.Value || m["access_token"] != a2 {
		t.Fatalf("refresh did not rotate both cookies (or JSON token differs from the cookie)")
	}
	if resp := b.navigate(t, gw.URL+"/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("page with the rotated session: %d", resp.StatusCode)
	}

	// The old refresh token comes back (a thief's copy): the family dies.
	thief := newBrowser(t)
	r1.Secure, r1.Path = true, "/"
	thief.setCookie(gw, &r1)
	if resp := thief.post(t, gw, "/auth/refresh"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reused refresh token: %d; want 401", resp.StatusCode)
	}
	if resp := b.post(t, gw, "/auth/refresh"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("user's current refresh token after reuse: %d; want 401", resp.StatusCode)
	}
	for _, tok := range []string{a1, a2} {
		if resp := b.apiGet(t, gw.URL+"/app", tok); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("access token of the revoked family: %d; want 401", resp.StatusCode)
		}
	}
}

func TestExpiredSession(t *testing.T) {
	e := newEnv(t, "")
	gw := e.startGateway(t)
	b := newBrowser(t)
	e.login(t, b, gw, "/app")
	defer func(start time.Time) { e.clk.Advance(-e.clk.Now().Sub(start)) }(e.clk.Now())

	e.clk.Advance(16 * time.Minute) // past access_ttl (+ leeway)
	if resp := b.apiGet(t, gw.URL+"/auth/session", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/auth/session with an expired access token: %d; want 401", resp.StatusCode)
	}
	if resp := b.apiGet(t, gw.URL+"/app", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("route with an expired access token: %d; want 401", resp.StatusCode)
	}
	if resp := b.post(t, gw, "/auth/refresh"); resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh within refresh_ttl: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := b.apiGet(t, gw.URL+"/app", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("route after refresh: %d", resp.StatusCode)
	}

	e.clk.Advance(25 * time.Hour) // past refresh_ttl
	resp := b.post(t, gw, "/auth/refresh")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("refresh after refresh_ttl: %d; want 401", resp.StatusCode)
	}
	if c := findSetCookie(resp.Response, login.DefaultRefreshCookie); c == nil || c.MaxAge >= 0 {
		t.Fatalf("expired refresh did not clear the cookie: %+v", c)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, "")
	gw := e.startGateway(t)
	b := newBrowser(t)
	e.login(t, b, gw, "/app")
	other := strings.Replace(gw.URL, "127.0.0.1", "localhost", 1)
	refused := []struct {
		name   string
		header http.Header
	}{
		{"foreign Origin", http.Header{"Origin": {"https://evil.com"}}},
		{"foreign Origin claiming same-origin fetch", http.Header{"Origin": {"https://evil.com"}, "Sec-Fetch-Site": {"same-origin"}}},
		{"Origin null", http.Header{"Origin": {"null"}}},
		{"same host, http", http.Header{"Origin": {strings.Replace(gw.URL, "https:", "http:", 1)}}},
		{"other host name", http.Header{"Origin": {other}}},
		{"Origin with a path", http.Header{"Origin": {gw.URL + "/"}}},
		{"cross-site fetch", http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"same-site fetch", http.Header{"Sec-Fetch-Site": {"same-site"}}},
		{"neither header", http.Header{}},
	}
	for _, path := range []string{"/auth/refresh", "/auth/logout"} {
		for _, tc := range refused {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				resp := b.do(t, http.MethodPost, gw.URL+path, tc.header)
				if resp.StatusCode != http.StatusForbidden || jsonBody(t, resp)["error"] == nil {
					t.Fatalf("status %d %s; want 403 JSON", resp.StatusCode, resp.Body)
				}
				if len(resp.Cookies()) != 0 {
					t.Fatalf("refused request changed cookies: %v", resp.Cookies())
				}
			})
		}
		t.Run(path+"/GET", func(t *testing.T) {
			resp := b.do(t, http.MethodGet, gw.URL+path, http.Header{"Origin": {gw.URL}})
			if path == "/auth/logout" {
				// A logout link followed from anywhere but this origin (or
				// the address bar): a page asking to confirm, nothing ended.
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.Body), `<form method="post" action="/auth/logout">`) || len(resp.Cookies()) != 0 {
					t.Fatalf("GET logout without Sec-Fetch-Site: %d, cookies %v; want 200 with a confirmation form and no cookie change", resp.StatusCode, resp.Cookies())
				}
				return
			}
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("GET: %d; want 405", resp.StatusCode)
			}
		})
	}
	// The refusals left the session alone.
	if resp := b.navigate(t, gw.URL+"/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("session after refused requests: %d", resp.StatusCode)
	}
	// Accepted: Sec-Fetch-Site: same-origin without Origin, and our Origin.
	if resp := b.do(t, http.MethodPost, gw.URL+"/auth/refresh", http.Header{"Sec-Fetch-Site": {"same-origin"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("same-origin refresh: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := b.do(t, http.MethodPost, gw.URL+"/auth/logout", http.Header{"Origin": {gw.URL}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("same-origin logout: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, "")
	gw := e.startGateway(t)
	b := newBrowser(t)
	e.login(t, b, gw, "/app")
	access := b.cookie(t, gw, login.DefaultAccessCookie).Value

	resp := b.post(t, gw, "/auth/logout")
	if resp.StatusCode != http.StatusOK || jsonBody(t, resp)["status"] != "logged_out" {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Body)
	}
	for _, name := range []string{login.DefaultAccessCookie, login.DefaultRefreshCookie} {
		if b.cookie(t, gw, name) != nil {
			t.Errorf("cookie %s not cleared", name)
		}
	}
	if resp := b.navigate(t, gw.URL+"/app"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/auth/login") {
		t.Fatalf("navigation after logout: %d %q; want 302 to login", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A copy of the access token is dead too.
	if resp := b.apiGet(t, gw.URL+"/app", access); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("logged-out access token: %d; want 401", resp.StatusCode)
	}
	// Logging out without a session is fine (idempotent).
	if resp := newBrowser(t).post(t, gw, "/auth/logout"); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout without session: %d", resp.StatusCode)
	}
	// A form POST (a navigation) is sent on with 303.
	resp = newBrowser(t).do(t, http.MethodPost, gw.URL+"/auth/logout?rd=//evil.com", http.Header{
		"Origin": {gw.URL}, "Sec-Fetch-Mode": {"navigate"}, "Accept": {"text/html"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("form logout: %d %q; want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestIDTokenKeptForProviderLogoutOnly: the provider's ID token is stored
// with the session only when a provider logout will need it as
// id_token_hint; otherwise the store holds no copy of it.
func TestIDTokenKeptForProviderLogoutOnly(t *testing.T) {
	for _, providerLogout := range []bool{false, true} {
		e := newEnv(t, "")
		e.providerLogout = providerLogout
		gw := e.startGateway(t)
		b := newBrowser(t)
		e.login(t, b, gw, "/app")
		access, refresh := b.cookie(t, gw, login.DefaultAccessCookie), b.cookie(t, gw, login.DefaultRefreshCookie)
		if access == nil || refresh == nil {
			t.Fatal("no session cookies after login")
		}
		id, err := gw.mgr.LogoutIdentity(context.Background(), access.Value, refresh.Value)
		if err != nil || id == nil {
			t.Fatalf("provider_logout %t: session identity: %v, %v", providerLogout, id, err)
		}
		if kept := id.IDToken != ""; kept != providerLogout {
			t.Errorf("provider_logout %t: ID token stored with the session: %t", providerLogout, kept)
		}
	}
}

// Two replicas share one Redis: a refresh token reused at one revokes the
// family at both; a logout at one is refused at the other within 1 s.
func TestReplicas(t *testing.T) {
	rs := redistest.Start(t)
	e := newEnv(t, rs.URL())
	gwA, gwB := e.startGateway(t), e.startGateway(t)

	t.Run("refresh reuse revokes the family on both", func(t *testing.T) {
		b := newBrowser(t)
		e.login(t, b, gwA, "/app")
		r1 := *b.cookie(t, gwA, login.DefaultRefreshCookie)
		if resp := b.post(t, gwB, "/auth/refresh"); resp.StatusCode != http.StatusOK { // rotated at B
			t.Fatalf("refresh at B: %d %s", resp.StatusCode, resp.Body)
		}
		a2 := b.cookie(t, gwB, login.DefaultAccessCookie).Value
		for _, gw := range []*gateway{gwA, gwB} {
			if resp := b.apiGet(t, gw.URL+"/app", a2); resp.StatusCode != http.StatusOK {
				t.Fatalf("rotated session at %s: %d", gw.URL, resp.StatusCode)
			}
		}
		thief := newBrowser(t)
		r1.Secure, r1.Path = true, "/"
		thief.setCookie(gwA, &r1)
		if resp := thief.post(t, gwA, "/auth/refresh"); resp.StatusCode != http.StatusUnauthorized { // reused at A
			t.Fatalf("reuse at A: %d; want 401", resp.StatusCode)
		}
		for _, gw := range []*gateway{gwA, gwB} {
			poll.True(t, 5*time.Second, "family's access token refused at "+gw.URL, func() bool {
				return b.apiGet(t, gw.URL+"/app", a2).StatusCode == http.StatusUnauthorized
			})
			if resp := b.post(t, gw, "/auth/refresh"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("user's refresh at %s after reuse: %d; want 401", gw.URL, resp.StatusCode)
			}
		}
	})

	t.Run("logout refused on both within 1s", func(t *testing.T) {
		b := newBrowser(t)
		e.login(t, b, gwA, "/app")
		access := b.cookie(t, gwA, login.DefaultAccessCookie).Value
		if resp := b.apiGet(t, gwB.URL+"/app", access); resp.StatusCode != http.StatusOK {
			t.Fatalf("session at B before logout: %d", resp.StatusCode)
		}
		start := time.Now()
		if resp := b.post(t, gwA, "/auth/logout"); resp.StatusCode != http.StatusOK {
			t.Fatalf("logout at A: %d", resp.StatusCode)
		}
		logoutTook := time.Since(start)
		if resp := b.apiGet(t, gwA.URL+"/app", access); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("A accepts its own logged-out token: %d", resp.StatusCode)
		}
		took := poll.True(t, 5*time.Second, "B refuses the logged-out token", func() bool {
			return b.apiGet(t, gwB.URL+"/app", access).StatusCode == http.StatusUnauthorized
		})
		t.Logf("logout request %s; B refused the token %s after the logout answered", logoutTook, took)
		if took > time.Second {
			t.Errorf("propagation took %s; the requirement is 1s", took)
		}
	})
}
