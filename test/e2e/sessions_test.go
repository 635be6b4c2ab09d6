package e2e

// Browser sessions that legacy apps never notice (issue 17): transparent
// refresh inside any request, concurrent rotation within reuse_grace, on two
// replicas sharing one Redis, against the real zitadel OP.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

const (
	accessCookieName  = "__Host-authgw_access"
	refreshCookieName = "__Host-authgw_refresh"
	// sessionsGrace is the reuse_grace of sessionsConfig.
	sessionsGrace = 4 * time.Second
)

// sessionsConfig: gateway sessions of 3 s access tokens (renewed within
// their last second) on Redis, the login at issuer, a route reading the
// session cookie (/app, any method), one that does not (/keys, api keys).
func sessionsConfig(redisURL, upstream, issuer, extra string) string {
	return fmt.Sprintf(`server:
  trusted_proxies: ["127.0.0.1/32"]
redis:
  url: %q
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  access_ttl: 3s
  signing_keys:
    - kid: hs-1
      algorithm: HS256
      secret: ${ACCESS_SECRET}
sessions:
  refresh_before: 1s
  reuse_grace: %s
%sstrategies:
  userJwt: {type: jwt, issuer: e2e.issuer, audience: e2e.audience, algorithms: [HS256], keys: tokens}
  keys: {type: api_key, header: X-API-Key, prefixes: [pk_live], store: redis}
  sso:
    type: oauth2
    issuer_url: %s
    client_id: gateway
    client_secret: ${SSO_SECRET}
    redirect_url: http://gateway.test/auth/callback
    login: true
routes:
  - {name: app, path: /app, upstream: %[5]s, strategies: [userJwt]}
  - {name: keys, path: /keys, upstream: %[5]s, strategies: [keys]}
  - {name: web, path: /web, upstream: %[5]s, strategies: [userJwt, sso]}
rate_limits:
  auth_failures: {limit: 1000, period: 1m}
`, redisURL, sessionsGrace, extra, issuer, upstream)
}

// sessionsSuite is two replicas of sessionsConfig on one Redis, their
// provider and their upstream.
type sessionsSuite struct {
	a, b  *Gateway
	op    *oidctest.Provider
	up    *Upstream
	redis *redistest.Server
}

func startSessions(t *testing.T, extra string) *sessionsSuite {
	t.Helper()
	srv := redistest.Start(t)
	s := &sessionsSuite{op: oidctest.Start(t, oidctest.Options{}), up: newUpstream(t, 0), redis: srv}
	s.op.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret,
		RedirectURIs: []string{ssoCallback}, PostLogoutRedirectURIs: []string{"http://gateway.test/"}})
	env := map[string]string{"ACCESS_SECRET": randomSecret(t), "SSO_SECRET": oidctest.GatewayClientSecret}
	cfg := sessionsConfig(srv.URL(), s.up.URL, s.op.Issuer, extra)
	s.a, s.b = startGateway(t, cfg, env), startGateway(t, cfg, env)
	return s
}

// keepAlive answers a check that the session of the refresh token in
// *refresh still works (renewing it at B); it stores the newest refresh
// token there, for the caller and the next check.
func (s *sessionsSuite) keepAlive(t *testing.T, refresh *string) func(what string) {
	return func(what string) {
		t.Helper()
		r := s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+*refresh)))
		if r.Status != http.StatusOK {
			t.Fatalf("%s: alice's session ended (status %d)", what, r.Status)
		}
		if next := setCookie(r, refreshCookieName); next != "" {
			*refresh = next
		}
	}
}

// login signs alice in at A; it answers her access and refresh tokens.
func (s *sessionsSuite) login(t *testing.T) (access, refresh string) {
	t.Helper()
	r := (&ssoGateway{Gateway: s.a, op: s.op}).login(t, oidctest.UserName, oidctest.UserPassword)
	access, refresh = setCookie(r, accessCookieName), setCookie(r, refreshCookieName)
	if r.Status != http.StatusOK || access == "" || refresh == "" {
		t.Fatalf("login: status %d, cookies %v", r.Status, sessionCookies(r))
	}
	return access, refresh
}

// cookieHeader is the Cookie header of the given name=value pairs.
func cookieHeader(pairs ...string) string { return "Cookie: " + strings.Join(pairs, "; ") }

// wantRenewed checks that r was served (status want) with a rotated session:
// both session cookies set again, __Host-, HttpOnly, Secure,
// SameSite=Strict, Path=/. It answers the new refresh token.
func wantRenewed(t *testing.T, what string, r *Response, want int) (access, refresh string) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d (%s)", what, r.Status, want, truncate(r.Body))
	}
	for _, line := range r.Header.Values("Set-Cookie") {
		for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(line, attr) {
				t.Errorf("%s: Set-Cookie %q lacks %s", what, strings.SplitN(line, "=", 2)[0], attr)
			}
		}
		if strings.Contains(line, "Domain=") {
			t.Errorf("%s: a session cookie names a Domain", what)
		}
	}
	access, refresh = setCookie(r, accessCookieName), setCookie(r, refreshCookieName)
	if access == "" || refresh == "" {
		t.Fatalf("%s: session cookies set %v, want both", what, sessionCookies(r))
	}
	return access, refresh
}

// wantUpstreamSaw checks the upstream's last request: alice's identity from
// the session, and no gateway cookie.
func (s *sessionsSuite) wantUpstreamSaw(t *testing.T, what string) {
	t.Helper()
	seen := s.up.Requests()
	if len(seen) == 0 {
		t.Fatalf("%s: the upstream saw nothing", what)
	}
	last := seen[len(seen)-1]
	if got := last.Header.Get("X-Auth-Subject"); got != oidctest.UserID {
		t.Errorf("%s: upstream X-Auth-Subject = %q, want %q", what, got, oidctest.UserID)
	}
	if c := last.Header.Get("Cookie"); strings.Contains(c, "__Host-authgw_") {
		t.Errorf("%s: upstream got the gateway's cookies", what)
	}
}

func TestTransparentRefresh(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "")
	access, refresh := s.login(t)

	// A fetch() whose access cookie expired (the browser dropped it): served,
	// any method, the session rotated inside it.
	r := s.a.Do(t, req("POST", "/app/save", cookieHeader(refreshCookieName+"="+refresh),
		"Origin: http://gateway.test", "Sec-Fetch-Site: same-origin", "Content-Length: 0"))
	access1, refresh1 := wantRenewed(t, "POST with only the refresh cookie", r, http.StatusOK)
	s.wantUpstreamSaw(t, "POST with only the refresh cookie")
	if access1 == access || refresh1 == refresh {
		t.Fatal("the session was not rotated")
	}

	// A navigation: served, not sent to login.
	r = s.b.Do(t, req("GET", "/app/page", cookieHeader(refreshCookieName+"="+refresh1), "Accept: text/html", "Sec-Fetch-Mode: navigate"))
	_, refresh2 := wantRenewed(t, "navigation with only the refresh cookie, at B", r, http.StatusOK)
	s.wantUpstreamSaw(t, "navigation at B")

	// A fresh access cookie is not renewed.
	access3, refresh3 := wantRenewed(t, "refresh at B", s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh2))), http.StatusOK)
	if r := s.a.Do(t, req("GET", "/app/x", cookieHeader(accessCookieName+"="+access3, refreshCookieName+"="+refresh3))); r.Status != http.StatusOK || len(sessionCookies(r)) != 0 {
		t.Fatalf("fresh access cookie: status %d, cookies set %v; want 200 and none", r.Status, sessionCookies(r))
	}
	// Expired: renewed, though the browser still sent it.
	time.Sleep(3 * time.Second)
	r = s.a.Do(t, req("DELETE", "/app/x", cookieHeader(accessCookieName+"="+access3, refreshCookieName+"="+refresh3)))
	_, refresh4 := wantRenewed(t, "DELETE with an expired access cookie", r, http.StatusOK)
	s.wantUpstreamSaw(t, "DELETE with an expired access cookie")

	// A route that does not read the session does not rotate it.
	if r := s.a.Do(t, req("GET", "/keys/x", cookieHeader(refreshCookieName+"="+refresh4))); r.Status != http.StatusUnauthorized || len(sessionCookies(r)) != 0 {
		t.Fatalf("api-key route: status %d, cookies set %v; want 401 and none", r.Status, sessionCookies(r))
	}
	// Neither does a bearer token.
	if r := s.a.Do(t, req("GET", "/app/x", bearer(access3), cookieHeader(refreshCookieName+"="+refresh4))); len(sessionCookies(r)) != 0 {
		t.Fatalf("bearer request: cookies set %v; want none", sessionCookies(r))
	}
	// Nor a cross-origin unsafe request (another site of the same site,
	// whose requests carry the Strict cookies): refused before any rotation.
	for _, hdr := range []string{"Sec-Fetch-Site: same-site", "Origin: http://evil.gateway.test"} {
		r := s.a.Do(t, req("POST", "/app/x", cookieHeader(refreshCookieName+"="+refresh4), hdr, "Content-Length: 0"))
		if r.Status == http.StatusOK || len(sessionCookies(r)) != 0 {
			t.Fatalf("cross-origin POST (%s): status %d, cookies set %v; want a refusal and none", hdr, r.Status, sessionCookies(r))
		}
	}
	// A dry run (explain) of such a request works (it never renews: only the
	// client door does, and its Redis client is read-only;
	// TestDryRunsWriteNothing watches it write nothing).
	if res := s.a.CLI(t, "explain", "-config", s.a.ConfigPath, "GET", "http://gateway.test/app/x", "-H", cookieHeader(refreshCookieName+"="+refresh4)); res.Code != 0 && res.Code != 1 {
		t.Fatalf("explain: exit %d, stderr %q", res.Code, res.Stderr)
	}
	// A forged refresh cookie on a route counts as a failed authentication
	// of its client, like one posted to /auth/refresh.
	forged := refresh4[:len(refresh4)-6] + "AAAAAA"
	for range 3 {
		r := s.a.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+forged), from("10.9.9.9")))
		if r.Status != http.StatusUnauthorized || setCookie(r, accessCookieName) != "" {
			t.Fatalf("forged refresh cookie: status %d; want 401 and no session", r.Status)
		}
	}
	if got, err := newRedisClient(t, s.redis).Get(context.Background(), failureKey("10.9.9.9")).Int(); err != nil || got != 3 {
		t.Fatalf("auth failures of the forging client = %d (%v), want 3", got, err)
	}
	// The refresh token those attempts carried is still the current one.
	wantRenewed(t, "after the refused attempts", s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh4))), http.StatusOK)
}

// TestParallelRequestsAtExpiry: 20 requests at once with one expired access
// cookie, at two replicas, are all served with the same new session, which
// lives on; the rotated token reused after the grace ends the session.
func TestParallelRequestsAtExpiry(t *testing.T) {
	t.Parallel()
	t.Run("fixed identity", func(t *testing.T) { t.Parallel(); parallelRequestsAtExpiry(t, "") })
	// With update_on_refresh the provider is asked once for the token.
	t.Run("update_on_refresh", func(t *testing.T) { t.Parallel(); parallelRequestsAtExpiry(t, "  update_on_refresh: true\n") })
}

func parallelRequestsAtExpiry(t *testing.T, extra string) {
	s := startSessions(t, extra)
	_, refresh := s.login(t)
	s.up.Reset()

	const n = 20
	resps := make([]*Response, n)
	errs := make([]error, n)
	runConcurrently(n, func(i int) {
		g := s.a
		if i%2 == 1 {
			g = s.b
		}
		resps[i], errs[i] = doRaw(g.Addr, req("GET", fmt.Sprintf("/app/api/%d", i), cookieHeader(refreshCookieName+"="+refresh)))
	})
	var next string
	for i, r := range resps {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		_, got := wantRenewed(t, fmt.Sprintf("parallel request %d", i), r, http.StatusOK)
		if next == "" {
			next = got
		} else if got != next {
			t.Fatalf("request %d got another refresh token than request 0: two sessions", i)
		}
	}
	seen := s.up.Requests()
	if len(seen) != n {
		t.Fatalf("upstream saw %d requests, want %d", len(seen), n)
	}
	for _, r := range seen {
		if r.Header.Get("X-Auth-Subject") != oidctest.UserID {
			t.Fatalf("upstream saw %s without the identity", r.RequestURI)
		}
	}
	// One rotation, 19 grace hits, counted by the replicas.
	events := func(event string) float64 {
		total := 0.0
		for _, g := range []*Gateway{s.a, s.b} {
			fams, _ := scrapeMetrics(t, g)
			total += fams.value("authgateway_session_events_total", map[string]string{"event": event})
		}
		return total
	}
	if r, g := events("refresh"), events("grace"); r != 1 || g != n-1 {
		t.Errorf("session events: refresh %v, grace %v; want 1 and %d", r, g, n-1)
	}
	// The session lives on, at either replica.
	_, latest := wantRenewed(t, "the common successor", s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+next))), http.StatusOK)

	// The first token presented again after the grace: reuse, the session
	// ends on both replicas.
	time.Sleep(sessionsGrace + 500*time.Millisecond)
	r := s.a.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh)))
	if r.Status != http.StatusUnauthorized || setCookie(r, refreshCookieName) != "" {
		t.Fatalf("reuse after the grace: status %d, cookies %v; want 401 and cleared", r.Status, sessionCookies(r))
	}
	// (Its access tokens have expired by now; the family is what ends.)
	for _, g := range []*Gateway{s.b, s.a} {
		if r := g.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+latest))); r.Status != http.StatusUnauthorized || len(sessionCookies(r)) != 0 {
			t.Fatalf("latest refresh token after the reuse: status %d, cookies %v; want 401 and none", r.Status, sessionCookies(r))
		}
	}
}

// TestTransparentRefreshOff: with transparent_refresh: false the request
// is refused as before (401 to fetch) and nothing rotates.
func TestTransparentRefreshOff(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "  transparent_refresh: false\n")
	_, refresh := s.login(t)
	if r := s.a.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh))); r.Status != http.StatusUnauthorized || len(sessionCookies(r)) != 0 {
		t.Fatalf("status %d, cookies %v; want 401 and none", r.Status, sessionCookies(r))
	}
}

// TestSessionsCLI: `sessions list` shows a subject's sessions without a
// token; `sessions revoke` ends them on both replicas within a second.
func TestSessionsCLI(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "")
	a1, r1 := s.login(t)
	a2, r2 := s.login(t)

	list := s.a.CLI(t, "sessions", "list", "-config", s.a.ConfigPath, "-sub", oidctest.UserID)
	if list.Code != 0 || strings.Count(list.Stdout, "active") != 2 {
		t.Fatalf("sessions list: exit %d, stdout %q, stderr %q; want two active sessions", list.Code, list.Stdout, list.Stderr)
	}
	for _, tok := range []string{a1, r1, a2, r2} {
		for _, part := range strings.Split(tok, ".") {
			if len(part) > 8 && strings.Contains(list.Stdout+list.Stderr, part) {
				t.Fatal("sessions list shows a token")
			}
		}
	}
	rev := s.b.CLI(t, "sessions", "revoke", "-sub", oidctest.UserID, "-config", s.b.ConfigPath)
	if rev.Code != 0 || !strings.Contains(rev.Stdout, "revoked 2 session(s)") {
		t.Fatalf("sessions revoke: exit %d, stdout %q, stderr %q", rev.Code, rev.Stdout, rev.Stderr)
	}
	ss := &sharedState{a: s.a, b: s.b, reps: []replicaGW{{"A", s.a}, {"B", s.b}}}
	for _, acc := range []string{a1, a2} {
		ss.refusedWithinASecond(t, "access cookie of a revoked subject", req("GET", "/app/x", cookieHeader(accessCookieName+"="+acc)))
	}
	for _, rt := range []string{r1, r2} {
		if r := s.a.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+rt))); r.Status != http.StatusUnauthorized {
			t.Fatalf("refresh cookie of a revoked subject: status %d, want 401", r.Status)
		}
	}
	if bad := s.a.CLI(t, "sessions", "revoke"); bad.Code != 2 {
		t.Fatalf("sessions revoke without -sub: exit %d, want 2", bad.Code)
	}
}

// TestSessionsDashboardRevoke: the admin dashboard's "revoke every session
// of a subject" (issue 21) goes through the same session store as the CLI:
// a form post from the dashboard page at replica A ends the subject's
// sessions at both replicas; a post without the page's CSRF token ends
// nothing.
func TestSessionsDashboardRevoke(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "")
	access, refresh := s.login(t)
	admin := "http://" + s.a.AdminAddr

	resp, err := http.Get(admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	m := regexp.MustCompile(`action="/sessions/revoke"(?s:.*?)name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the dashboard (status %d) offers no session revocation form:\n%s", resp.StatusCode, truncate(b))
	}
	post := func(form url.Values) (int, string) {
		t.Helper()
		r, _ := http.NewRequest("POST", admin+"/sessions/revoke", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(url.Values{"subject": {oidctest.UserID}}); code != http.StatusForbidden {
		t.Fatalf("revoke without the CSRF token: %d, want 403", code)
	}
	if r := s.b.Do(t, req("GET", "/app/x", cookieHeader(accessCookieName+"="+access))); r.Status != http.StatusOK {
		t.Fatalf("session after a refused revocation: status %d, want 200", r.Status)
	}
	code, body := post(url.Values{"subject": {oidctest.UserID}, "csrf": {m[1]}})
	if code != http.StatusOK || !strings.Contains(body, `"revoked":1`) {
		t.Fatalf("revoke from the dashboard: %d %s, want 200 and one session revoked", code, body)
	}
	ss := &sharedState{a: s.a, b: s.b, reps: []replicaGW{{"A", s.a}, {"B", s.b}}}
	ss.refusedWithinASecond(t, "access cookie after the dashboard's revocation", req("GET", "/app/x", cookieHeader(accessCookieName+"="+access)))
	if r := s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh))); r.Status != http.StatusUnauthorized {
		t.Fatalf("refresh cookie after the dashboard's revocation: status %d, want 401", r.Status)
	}
}

// TestProviderLogout: with provider_logout, /auth/logout ends the gateway
// session on every replica and sends the browser to the provider's
// end_session_endpoint with id_token_hint, post_logout_redirect_uri and
// state, which the provider accepts and answers by sending the browser
// back; the next login shows the provider's form. A logout link followed
// from another site ends nothing.
func TestProviderLogout(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "  provider_logout: true\n  post_logout_redirect: /\n")
	access, refresh := s.login(t)
	cookies := cookieHeader(accessCookieName+"="+access, refreshCookieName+"="+refresh)

	// From another site (a link, an image, a form's GET): a confirmation
	// page, and the session lives on.
	for _, site := range []string{"cross-site", "same-site", ""} {
		hdrs := []string{cookies, "Accept: text/html", "Sec-Fetch-Mode: navigate"}
		if site != "" {
			hdrs = append(hdrs, "Sec-Fetch-Site: "+site)
		}
		r := s.a.Do(t, req("GET", "/auth/logout", hdrs...))
		if r.Status != http.StatusOK || r.Header.Get("Location") != "" || len(r.Header.Values("Set-Cookie")) != 0 || !strings.Contains(string(r.Body), `method="post"`) {
			t.Fatalf("logout GET from %q: status %d, Location %q, Set-Cookie %v; want the confirmation page and nothing ended",
				site, r.Status, r.Header.Get("Location"), r.Header.Values("Set-Cookie"))
		}
	}
	if r := s.b.Do(t, req("GET", "/app/x", cookies)); r.Status != http.StatusOK {
		t.Fatalf("session after the cross-site logout links: status %d, want 200", r.Status)
	}

	// The user's own "Log out" link.
	r := s.a.Do(t, req("GET", "/auth/logout", cookies, "Accept: text/html", "Sec-Fetch-Mode: navigate", "Sec-Fetch-Site: same-origin"))
	loc, err := url.Parse(r.Header.Get("Location"))
	if r.Status != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), s.op.EndSessionURL+"?") {
		t.Fatalf("logout: status %d, Location %q; want 303 to %s", r.Status, r.Header.Get("Location"), s.op.EndSessionURL)
	}
	q := loc.Query()
	if q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") != "http://gateway.test/" || len(q.Get("state")) < 32 {
		t.Fatalf("end-session parameters: hint %t, post_logout_redirect_uri %q, state %q", q.Get("id_token_hint") != "", q.Get("post_logout_redirect_uri"), q.Get("state"))
	}
	ss := &sharedState{a: s.a, b: s.b, reps: []replicaGW{{"A", s.a}, {"B", s.b}}}
	ss.refusedWithinASecond(t, "access cookie after logout", req("GET", "/app/x", cookieHeader(accessCookieName+"="+access)))
	if r := s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh))); r.Status != http.StatusUnauthorized {
		t.Fatalf("refresh cookie after logout: status %d, want 401", r.Status)
	}

	// The provider takes the hint and sends the browser back with the state.
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode/100 != 3 || back == nil || !strings.HasPrefix(back.String(), "http://gateway.test/") || back.Query().Get("state") != q.Get("state") {
		t.Fatalf("provider's end_session: status %d, Location %q; want a redirect to http://gateway.test/ with our state", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A new login goes through the provider's form.
	start := s.a.Do(t, req("GET", "/auth/login?rd=/app", "Accept: text/html"))
	if start.Status != http.StatusFound {
		t.Fatalf("/auth/login: status %d", start.Status)
	}
	form, err := client.Get(start.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	form.Body.Close()
	if l := form.Header.Get("Location"); !strings.Contains(l, "/login/username") {
		t.Fatalf("new login: the provider answered %d to %q; want its login form", form.StatusCode, l)
	}

	// fetch() gets JSON naming where to go.
	access, refresh = s.login(t)
	r = s.b.Do(t, req("POST", "/auth/logout", cookieHeader(accessCookieName+"="+access, refreshCookieName+"="+refresh),
		"Origin: http://gateway.test", "Content-Length: 0"))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"provider_logout_url":"`+s.op.EndSessionURL) {
		t.Fatalf("fetch logout: status %d, body %s; want provider_logout_url", r.Status, truncate(r.Body))
	}
}

// readmeNginxLogin is the README's nginx login recipe: the lines for
// `location /` and those for the server block.
func readmeNginxLogin(t *testing.T) (inLocation, inServer string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := func(marker string) string {
		_, rest, ok := strings.Cut(string(b), marker+"\n```nginx\n")
		code, _, closed := strings.Cut(rest, "```")
		if !ok || !closed {
			t.Fatalf("README: no nginx block after %q", marker)
		}
		return code
	}
	return block("<!-- nginx-login: location / -->"), block("<!-- nginx-login: server -->")
}

// TestNginxLogin: behind a real nginx with the README's recipe, a browser
// without a session is sent to the gateway's login (not a 500), fetch()
// keeps the 401 with its challenge, the login completes through nginx and
// the app then sees the identity; /auth/verify is not reachable from
// outside.
func TestNginxLogin(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "")
	_, refresh := s.login(t)
	app := newUpstream(t, 0)
	inLocation, inServer := readmeNginxLogin(t)
	nginx := startNginxEdited(t, s.a.Addr, strings.TrimPrefix(app.URL, "http://"), func(site string) string {
		const anchor = "        auth_request /_authgateway_verify;\n"
		const end = "    location = /_authgateway_verify {"
		if strings.Count(site, anchor) != 1 || strings.Count(site, end) != 1 {
			t.Fatal("deploy/nginx/authgateway.conf changed: cannot place the login recipe")
		}
		site = strings.Replace(site, anchor, anchor+inLocation, 1)
		return strings.Replace(site, end, inServer+"\n"+end, 1)
	})

	r := rawRequest(t, nginx, req("GET", "/web/page", "Accept: text/html,application/xhtml+xml", "Sec-Fetch-Mode: navigate"))
	if r.Status != http.StatusFound || !strings.HasSuffix(r.Header.Get("Location"), "/auth/login?rd=/web/page") {
		t.Fatalf("navigation without a session: status %d, Location %q; want 302 to /auth/login?rd=/web/page", r.Status, r.Header.Get("Location"))
	}
	r = rawRequest(t, nginx, req("GET", "/web/api", "Accept: application/json"))
	if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("fetch without a session: status %d, WWW-Authenticate %q; want 401 Bearer", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	if r := rawRequest(t, nginx, req("GET", "/web/api", "Accept: application/json", cookieHeader(refreshCookieName+"="+refresh))); r.Status != http.StatusUnauthorized || len(r.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("behind nginx with only a refresh cookie: status %d, Set-Cookie %v; want 401 and no rotation (auth_request cannot pass new cookies on)", r.Status, r.Header.Values("Set-Cookie"))
	}
	// That refresh token was not rotated: the gateway in front renews it.
	wantRenewed(t, "refresh cookie after the nginx request", s.a.Do(t, req("GET", "/web/api", cookieHeader(refreshCookieName+"="+refresh))), http.StatusOK)
	if r := rawRequest(t, nginx, req("GET", "/auth/verify", "X-Original-URI: /web/x", "X-Original-Method: GET")); r.Status != http.StatusNotFound {
		t.Fatalf("/auth/verify from outside: status %d, want 404", r.Status)
	}
	app.WantNothing(t)

	// The login, every step through nginx.
	start := rawRequest(t, nginx, req("GET", "/auth/login?rd=/web/page", "Accept: text/html"))
	state := setCookie(start, "__Host-authgw_login")
	if start.Status != http.StatusFound || state == "" {
		t.Fatalf("/auth/login through nginx: status %d", start.Status)
	}
	cb, err := url.Parse(s.op.Authorize(t, start.Header.Get("Location"), ssoCallback, oidctest.UserName, oidctest.UserPassword))
	if err != nil {
		t.Fatal(err)
	}
	done := rawRequest(t, nginx, req("GET", cb.RequestURI(), "Accept: text/html", cookieHeader("__Host-authgw_login="+state)))
	access := setCookie(done, accessCookieName)
	if done.Status != http.StatusOK || access == "" {
		t.Fatalf("callback through nginx: status %d, cookies %v", done.Status, sessionCookies(done))
	}
	r = rawRequest(t, nginx, req("GET", "/web/page", "Accept: text/html", cookieHeader(accessCookieName+"="+access)))
	if r.Status != http.StatusOK || app.One(t).Header.Get("X-Auth-Subject") != oidctest.UserID {
		t.Fatalf("page with the session through nginx: status %d; want 200 and alice at the app", r.Status)
	}
}

// TestUpdateOnRefresh: with update_on_refresh, roles changed at the
// provider reach the upstream at the next rotation, and a user disabled at
// the provider loses the session at the next rotation, on both replicas.
func TestUpdateOnRefresh(t *testing.T) {
	t.Parallel()
	s := startSessions(t, "  update_on_refresh: true\n")
	access, refresh := s.login(t)
	rolesSeen := func(what string, r *Response) string {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 (%s)", what, r.Status, truncate(r.Body))
		}
		seen := s.up.Requests()
		return seen[len(seen)-1].Header.Get("X-Auth-Roles")
	}
	if got := rolesSeen("after login", s.a.Do(t, req("GET", "/app/x", cookieHeader(accessCookieName+"="+access)))); got != oidctest.UserRole {
		t.Fatalf("roles after login = %q, want %q", got, oidctest.UserRole)
	}
	s.op.SetUserRoles(t, oidctest.UserID, []string{"editor", "viewer"})
	// Until the access token rotates, the roles of the login stay.
	if got := rolesSeen("before rotation", s.b.Do(t, req("GET", "/app/x", cookieHeader(accessCookieName+"="+access)))); got != oidctest.UserRole {
		t.Fatalf("roles before rotation = %q, want %q", got, oidctest.UserRole)
	}
	r := s.b.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh)))
	_, refresh = wantRenewed(t, "rotation after the role change", r, http.StatusOK)
	if got := rolesSeen("rotation after the role change", r); got != "editor,viewer" {
		t.Fatalf("roles after rotation = %q, want editor,viewer", got)
	}
	// The next rotation asks the provider again, with its rotated token.
	r = s.a.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh)))
	access, refresh = wantRenewed(t, "second rotation", r, http.StatusOK)
	if got := rolesSeen("second rotation", r); got != "editor,viewer" {
		t.Fatalf("roles after the second rotation = %q, want editor,viewer", got)
	}

	s.op.DisableUser(t, oidctest.UserID)
	r = s.a.Do(t, req("GET", "/app/x", cookieHeader(refreshCookieName+"="+refresh)))
	if r.Status != http.StatusUnauthorized || setCookie(r, accessCookieName) != "" {
		t.Fatalf("rotation after the user was disabled: status %d, cookies %v; want 401 and none", r.Status, sessionCookies(r))
	}
	ss := &sharedState{a: s.a, b: s.b, reps: []replicaGW{{"A", s.a}, {"B", s.b}}}
	ss.refusedWithinASecond(t, "access cookie of a user disabled at the provider", req("GET", "/app/x", cookieHeader(accessCookieName+"="+access)))
}
