package login_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/login"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/jwt"
	"github.com/authgateway/authgateway/internal/testutil/clocktest"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/tokens"
)

const signingSecret = "login-test-signing-secret-0123456789abcdef"

// clock is a settable time source for the gateway side (the provider runs
// on real time).
type clock = clocktest.Offset

// upstream records the identity headers and cookies it received.
type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []http.Header
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.got = append(u.got, r.Header.Clone())
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>page "+r.URL.Path+"</body></html>")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) last(t *testing.T) http.Header {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.got) == 0 {
		t.Fatal("upstream got no request")
	}
	return u.got[len(u.got)-1]
}

// env is one identity provider and what gateways share.
type env struct {
	op    *oidctest.Provider
	clk   *clock
	redis string // redis URL; "" = memory
	up    *upstream
	gws   []*gateway
	// user and password log in at the provider; default alice.
	user, password string
	// allowUnverifiedEmail and providerLogout are the gateways' login
	// options of those names.
	allowUnverifiedEmail, providerLogout bool
}

func newEnv(t *testing.T, redisURL string) *env {
	return &env{op: oidctest.Start(t, oidctest.Options{}), clk: &clock{}, redis: redisURL, up: startUpstream(t)}
}

// gateway is the gateway's pipeline (route table, jwt strategy reading the
// session cookie, login endpoints) over real TLS, as a replica.
type gateway struct {
	URL string // https://127.0.0.1:PORT
	mgr *session.Manager
}

func (e *env) startGateway(t *testing.T) *gateway {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	gw := &gateway{URL: "https://" + srv.Listener.Addr().String()}
	e.gws = append(e.gws, gw)
	var uris []string
	for _, g := range e.gws {
		uris = append(uris, g.URL+"/auth/callback")
	}
	e.op.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret,
		Introspect: true, RedirectURIs: uris})

	iss, err := tokens.NewIssuer(config.Tokens{
		Issuer: "gw.test", Audience: "app.test",
		AccessTTL: config.Duration(15 * time.Minute), RefreshTTL: config.Duration(24 * time.Hour),
		SigningKeys: []config.SigningKey{{Kid: "k1", Algorithm: "HS256", Secret: signingSecret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	iss.Now = e.clk.Now
	var rc redis.UniversalClient
	if e.redis != "" {
		opt, err := redis.ParseURL(e.redis)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { _ = c.Close() })
		rc = c
	}
	gw.mgr, err = session.New(session.Options{Issuer: iss, Redis: rc, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.mgr.Close)
	h, err := login.New(login.Options{
		Name: "sso", IssuerURL: e.op.Issuer, ClientID: oidctest.GatewayClientID,
		ClientSecret: oidctest.GatewayClientSecret, Scopes: []string{"openid", "email", "profile"},
		RedirectURL: gw.URL + "/auth/callback", AllowedRedirectHosts: []string{"app.example.com"},
		Issuer: iss, Sessions: gw.mgr, StateSecret: []byte(signingSecret), Now: e.clk.Now,
		AllowUnverifiedEmail: e.allowUnverifiedEmail, ProviderLogout: e.providerLogout, RolesClaim: []string{config.DefaultRolesClaim}, EmailClaim: config.DefaultEmailClaim,
	})
	if err != nil {
		t.Fatal(err)
	}
	jwtStrategy, err := jwt.New("jwt", &config.Strategy{
		Type: "jwt", Keys: "tokens", Algorithms: []string{"HS256"}, Issuer: "gw.test", Audience: "app.test",
		Leeway: config.Duration(30 * time.Second), Cookie: login.DefaultAccessCookie,
	}, strategies.Deps{
		Tokens:      &strategies.GatewayTokens{Keys: iss.Keys, Issuer: "gw.test", AccessTTL: 15 * time.Minute},
		Revocations: gw.mgr, Now: e.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	upURL, _ := url.Parse(e.up.srv.URL)
	table, err := proxy.NewTable([]*proxy.Route{{
		Name: "app", Prefix: "/app", Upstream: upURL, Login: "/auth/login",
		Chain: []strategies.Named{{Name: "jwt", Strategy: jwtStrategy}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = proxy.New(table, proxy.Options{Endpoints: h.Endpoints()})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return gw
}

// browser is an HTTP client with a cookie jar that follows no redirect, so
// every step of the flow is visible. httptest's TLS servers share one
// certificate, and cookies are per host (not port): one browser talks to
// every replica with the same cookies, as it would through a load balancer.
type browser struct {
	c   *http.Client
	jar *cookiejar.Jar
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := httptest.NewTLSServer(http.NotFoundHandler())
	tlsCfg := tr.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tr.Close()
	return &browser{jar: jar, c: &http.Client{
		Jar:       jar,
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

type response struct {
	*http.Response
	Body string
}

func (b *browser) do(t *testing.T, method, target string, header http.Header) *response {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return &response{Response: resp, Body: string(body)}
}

// navigate is a top-level GET as a browser sends it.
func (b *browser) navigate(t *testing.T, target string) *response {
	t.Helper()
	return b.do(t, http.MethodGet, target, http.Header{
		"Accept": {"text/html,application/xhtml+xml"}, "Sec-Fetch-Mode": {"navigate"},
	})
}

// post is a same-origin fetch() POST from a page of gw.
func (b *browser) post(t *testing.T, gw *gateway, path string) *response {
	t.Helper()
	return b.do(t, http.MethodPost, gw.URL+path, http.Header{"Origin": {gw.URL}, "Sec-Fetch-Site": {"same-origin"}})
}

func (b *browser) cookie(t *testing.T, gw *gateway, name string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(gw.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (b *browser) setCookie(gw *gateway, c *http.Cookie) {
	u, _ := url.Parse(gw.URL)
	b.jar.SetCookies(u, []*http.Cookie{c})
}

// authorize goes from /auth/login?rd=... through the provider's login form
// and returns the callback URL the provider sends the browser to (not yet
// visited) and the state the gateway chose.
func (e *env) authorize(t *testing.T, b *browser, gw *gateway, rd string) (callback, state string) {
	t.Helper()
	resp := b.navigate(t, gw.URL+"/auth/login?rd="+url.QueryEscape(rd))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/auth/login: status %d; want 302\n%s", resp.StatusCode, resp.Body)
	}
	authURL, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(authURL.String(), e.op.AuthURL) {
		t.Fatalf("/auth/login redirected to %q; want the provider's %s", resp.Header.Get("Location"), e.op.AuthURL)
	}
	state = authURL.Query().Get("state")
	next := authURL.String()
	for range 10 {
		resp = b.navigate(t, next)
		loc := resp.Header.Get("Location")
		if loc == "" {
			t.Fatalf("provider at %s answered %d without Location", next, resp.StatusCode)
		}
		if strings.HasPrefix(loc, "/") {
			loc = e.op.Issuer + loc
		}
		if strings.HasPrefix(loc, gw.URL+"/auth/callback") {
			return loc, state
		}
		if u, _ := url.Parse(loc); u != nil && u.Query().Get("authRequestID") != "" {
			user, password := oidctest.UserName, oidctest.UserPassword
			if e.user != "" {
				user, password = e.user, e.password
			}
			form := url.Values{"id": {u.Query().Get("authRequestID")},
				"username": {user}, "password": {password}}
			pr, err := b.c.PostForm(e.op.Issuer+"/login/username", form)
			if err != nil {
				t.Fatal(err)
			}
			pr.Body.Close()
			loc = pr.Header.Get("Location")
			if strings.HasPrefix(loc, "/") {
				loc = e.op.Issuer + loc
			}
		}
		next = loc
	}
	t.Fatal("no callback after 10 redirects")
	return "", ""
}

var metaRefresh = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]*)">`)

// continueTarget is where the callback's page sends the browser.
func continueTarget(t *testing.T, resp *response) string {
	t.Helper()
	m := metaRefresh.FindStringSubmatch(resp.Body)
	if m == nil {
		t.Fatalf("callback page has no meta refresh:\n%s", resp.Body)
	}
	return strings.NewReplacer("&amp;", "&", "&#39;", "'", "&#34;", `"`, "&lt;", "<", "&gt;", ">").Replace(m[1])
}

// login runs the whole flow for rd and returns the continue target.
func (e *env) login(t *testing.T, b *browser, gw *gateway, rd string) string {
	t.Helper()
	cb, _ := e.authorize(t, b, gw, rd)
	resp := b.navigate(t, cb)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: status %d; want 200\n%s", resp.StatusCode, resp.Body)
	}
	return continueTarget(t, resp)
}

func jsonBody(t *testing.T, resp *response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, resp.Body)
	}
	return m
}

// apiGet is a non-navigation request (fetch/XHR or a machine).
func (b *browser) apiGet(t *testing.T, target string, bearer string) *response {
	t.Helper()
	h := http.Header{"Accept": {"application/json"}}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return b.do(t, http.MethodGet, target, h)
}
