// Package browser drives the browser login end to end: a real headless
// Chromium, the real authgateway binary, a real OpenID Provider (zitadel's
// example OP, run by the test) and a recording upstream.
//
// The provider runs on 127.0.0.1 and the gateway on localhost: different
// sites, as in production, so the provider's redirect back to the callback is
// a cross-site navigation and the SameSite rules of the session cookies are
// exercised for real. Chromium treats http://localhost as a secure context,
// so Secure and __Host- cookies work without TLS.
//
// The test skips when /usr/bin/chromium is missing, unless
// AUTHGATEWAY_REQUIRE_BROWSER=1. AUTHGATEWAY_BIN, when set, is used instead
// of building ./cmd/authgateway.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authgateway/authgateway/internal/testutil/gwbin"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
)

const chromiumPath = "/usr/bin/chromium"

// binPath is the gateway binary, built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if bin := os.Getenv("AUTHGATEWAY_BIN"); bin != "" {
		binPath = bin
		return m.Run()
	}
	bin, cleanup, err := gwbin.Build(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser:", err)
		return 1
	}
	defer cleanup()
	binPath = bin
	return m.Run()
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer = gwbin.SyncBuffer

// recorder is the upstream: it records the identity headers of each request.
type recorder struct {
	mu  sync.Mutex
	got []http.Header
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.got = append(rec.got, r.Header.Clone())
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><html><head><title>upstream</title></head><body><p id=\"who\">%s</p><p id=\"path\">%s</p></body></html>",
		r.Header.Get("X-Auth-Subject"), r.URL.Path)
}

func (rec *recorder) last() http.Header {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) == 0 {
		return nil
	}
	return rec.got[len(rec.got)-1]
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startGateway runs the binary on cfg until the test ends.
func startGateway(t *testing.T, cfg string, addr string) *syncBuffer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGatewayAt(t, path, addr)
}

// startGatewayAt runs the binary on the config file at path until the
// test ends; addr is its main listener.
func startGatewayAt(t *testing.T, path string, addr string) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(binPath, "serve", "-config", path)
	cmd.Dir = filepath.Dir(path)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	poll.Until(t, 20*time.Second, "gateway answering", func() error {
		select {
		case <-done:
			t.Fatalf("gateway exited during startup:\n%s", out)
		default:
		}
		resp, err := http.Get("http://" + addr + "/auth/session")
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		resp.Body.Close()
		return nil
	})
	return out
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("AUTHGATEWAY_REQUIRE_BROWSER") == "1" {
			t.Fatalf("%s not found and AUTHGATEWAY_REQUIRE_BROWSER=1", chromiumPath)
		}
		t.Skipf("%s not installed; set AUTHGATEWAY_REQUIRE_BROWSER=1 to make this a failure", chromiumPath)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	// Start the browser now, so a broken installation fails here.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// waitLocation polls the page's location until it satisfies ok.
func waitLocation(t *testing.T, ctx context.Context, what string, ok func(string) bool) string {
	t.Helper()
	loc := ""
	poll.Until(t, 20*time.Second, what, func() error {
		l, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			return fmt.Errorf("page last at %q; reading its location: %w", loc, err)
		}
		if loc = l; !ok(loc) {
			return fmt.Errorf("page still at %q", loc)
		}
		return nil
	})
	return loc
}

func cookies(t *testing.T, ctx context.Context, url string) map[string]*network.Cookie {
	t.Helper()
	list, err := chromedp.Run(ctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		return res.Cookies, err
	}))
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range list {
		out[c.Name] = c
	}
	return out
}

// fetchJSON runs fetch() in the page and answers the status and body.
func fetchJSON(t *testing.T, ctx context.Context, method, path string) (int, map[string]any) {
	t.Helper()
	js := fmt.Sprintf(`fetch(%q, {method: %q, credentials: "same-origin"}).then(async r => ({status: r.status, body: await r.text()}))`, path, method)
	res, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s %s: %v", method, path, err)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(res.Body), &m)
	return res.Status, m
}

func TestBrowserLogin(t *testing.T) {
	ctx := newBrowser(t)

	op := oidctest.Start(t, oidctest.Options{Host: "127.0.0.1"})
	rec := &recorder{}
	up := httptest.NewServer(rec)
	t.Cleanup(up.Close)

	port := freePort(t)
	gwURL := "http://localhost:" + strconv.Itoa(port)
	op.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret,
		Introspect: true, RedirectURIs: []string{gwURL + "/auth/callback"}})
	cfg := fmt.Sprintf(`
server:
  listen: "127.0.0.1:%d"
  admin_listen: ""
tokens:
  issuer: gw.test
  audience: app.test
  access_ttl: 15m
  refresh_ttl: 24h
  signing_keys:
    - {kid: k1, algorithm: HS256, secret: "browser-test-signing-secret-0123456789abcdef"}
strategies:
  jwt:
    type: jwt
    issuer: gw.test
    audience: app.test
    algorithms: [HS256]
    keys: tokens
  sso:
    type: oauth2
    issuer_url: %q
    client_id: %q
    client_secret: %q
    scopes: [openid, email, profile]
    redirect_url: %q
    login: true
routes:
  - name: app
    path: /app
    upstream: %q
    strategies: [jwt, sso]
`, port, op.Issuer, oidctest.GatewayClientID, oidctest.GatewayClientSecret, gwURL+"/auth/callback", up.URL)
	logs := startGateway(t, cfg, "127.0.0.1:"+strconv.Itoa(port))
	defer func() {
		if t.Failed() {
			t.Logf("gateway output:\n%s", logs)
		}
	}()

	page := gwURL + "/app/page?x=1"

	// 1. A protected page without a session: the provider's login form.
	// 2. Log in: back on the original page, as alice.
	signIn(t, ctx, op, page)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#who"))); err != nil {
		t.Fatalf("upstream page not shown: %v", err)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#who")))
	if err != nil || who != oidctest.UserID {
		t.Fatalf("page shows subject %q (%v); want %q", who, err, oidctest.UserID)
	}
	h := rec.last()
	for k, want := range map[string]string{"X-Auth-Subject": oidctest.UserID, "X-Auth-Email": oidctest.UserEmail,
		"X-Auth-Roles": oidctest.UserRole, "X-Auth-Strategy": "jwt"} {
		if got := h.Get(k); got != want {
			t.Errorf("upstream %s = %q; want %q", k, got, want)
		}
	}

	// 3. The session cookies as the browser holds them.
	jar := cookies(t, ctx, gwURL+"/")
	for _, name := range []string{"__Host-authgw_access", "__Host-authgw_refresh"} {
		c := jar[name]
		if c == nil {
			t.Fatalf("browser holds no %s cookie (has %v)", name, keys(jar))
		}
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" || c.Domain != "localhost" || c.Session {
			t.Errorf("%s: httpOnly=%v secure=%v sameSite=%q path=%q domain=%q session=%v; want HttpOnly, Secure, Strict, Path=/, host-only, persistent",
				name, c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain, c.Session)
		}
	}
	if _, ok := jar["__Host-authgw_login"]; ok {
		t.Errorf("the single-use login state cookie outlived the callback")
	}
	if js, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || strings.Contains(js, "authgw") {
		t.Errorf("script can read the session cookies: %q (%v)", js, err)
	}

	// 4. The session endpoint and a refresh, from the page.
	status, body := fetchJSON(t, ctx, "GET", "/auth/session")
	if status != http.StatusOK || body["sub"] != oidctest.UserID || body["email"] != oidctest.UserEmail {
		t.Fatalf("/auth/session from the page: %d %v", status, body)
	}
	oldAccess := jar["__Host-authgw_access"].Value
	status, body = fetchJSON(t, ctx, "POST", "/auth/refresh")
	if status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("/auth/refresh from the page: %d %v", status, body)
	}
	if got := cookies(t, ctx, gwURL+"/")["__Host-authgw_access"]; got == nil || got.Value == oldAccess {
		t.Fatalf("refresh did not replace the access cookie")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitLocation(t, ctx, "page with the refreshed session", func(l string) bool { return l == page })

	// 5. Logout from the page; the page then needs a new login.
	status, body = fetchJSON(t, ctx, "POST", "/auth/logout")
	if status != http.StatusOK || body["status"] != "logged_out" {
		t.Fatalf("/auth/logout from the page: %d %v", status, body)
	}
	jar = cookies(t, ctx, gwURL+"/")
	for _, name := range []string{"__Host-authgw_access", "__Host-authgw_refresh"} {
		if _, ok := jar[name]; ok {
			t.Errorf("%s still held after logout", name)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitLocation(t, ctx, "login again after logout", func(l string) bool {
		return strings.HasPrefix(l, op.Issuer+"/login/username")
	})
	// The copy of the logged-out access token is refused too.
	req, _ := http.NewRequest(http.MethodGet, gwURL+"/app/page", nil)
	req.Header.Set("Authorization", "Bearer "+oldAccess)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token of the logged-out session: %d; want 401", resp.StatusCode)
	}
}

func keys(m map[string]*network.Cookie) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
