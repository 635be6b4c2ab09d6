package browser

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// TestBrowserDashboard drives the admin dashboard in real Chromium against
// the real binary: refused without the admin token, routes shown, denials
// appearing (by the page's own refresh) without the bad credential, a
// broken config edit's error with file:line, a key created in the page
// working at the gateway until it is revoked in the page, a cross-origin
// POST refused, usable on a phone, and no request leaving the admin
// origin. AUTHGATEWAY_UPDATE_SCREENSHOT=1 writes docs/dashboard.png.
func TestBrowserDashboard(t *testing.T) {
	ctx := newBrowser(t)
	up := httptest.NewServer(&recorder{})
	t.Cleanup(up.Close)
	// Two instances of a billing app behind one route, with health checks:
	// billing2 is stopped during the test and must show down.
	billing1 := httptest.NewServer(&recorder{})
	t.Cleanup(billing1.Close)
	billing2 := httptest.NewServer(&recorder{})
	t.Cleanup(billing2.Close)

	dir := t.TempDir()
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mainAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := "http://" + adminAddr
	cfg := fmt.Sprintf(`server:
  listen: %q
  admin_listen: %q
  admin_token_file: admin-token
strategies:
  apiKey:
    type: api_key
    header: X-API-Key
    prefixes: [pk_live]
    store: file
    file: keys.yaml
routes:
  - name: orders
    path: /orders
    methods: [GET, POST]
    upstream: %s
    strategies: [apiKey]
    roles: [orders]
  - name: status
    path: /status
    upstream: %s
    public: true
  - name: billing
    path: /billing
    upstreams: [%s, %s]
    health_check: {path: /healthz, interval: 200ms, timeout: 200ms, unhealthy_after: 1, healthy_after: 1}
    public: true
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`, mainAddr, adminAddr, up.URL, up.URL, billing1.URL, billing2.URL)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := startGatewayAt(t, path, mainAddr)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway output:\n%s", out)
		}
	})

	// Every request the admin tab makes, to check none leaves its origin.
	var mu sync.Mutex
	var requested []string
	chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requested = append(requested, e.Request.URL)
			mu.Unlock()
		}
	})
	html := func() string {
		t.Helper()
		h, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		return h
	}
	gw := func(key string) int {
		t.Helper()
		r, _ := http.NewRequest("GET", "http://"+mainAddr+"/orders/1", nil)
		r.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("request to the gateway: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	t.Run("refused without the token", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/"), chromedp.WaitVisible(chromedp.CSS("#token"))); err != nil {
			t.Fatalf("login form: %v", err)
		}
		if h := html(); strings.Contains(h, "/orders") || strings.Contains(h, "API keys") {
			t.Errorf("the login page shows the dashboard")
		}
		for _, p := range []string{"/", "/keys/create"} {
			m := "GET"
			if p != "/" {
				m = "POST"
			}
			r, _ := http.NewRequest(m, admin+p, nil)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s without the token: %d, want 401", m, p, resp.StatusCode)
			}
		}
		// A wrong token is refused too.
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), "wrong-"+token), chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS("#login-error"))); err != nil {
			t.Fatalf("wrong token: %v", err)
		}
		// Probes stay open.
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(admin + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s without the token: %d, want 200", p, resp.StatusCode)
			}
		}
	})

	t.Run("routes shown after login", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS("#routes"))); err != nil {
			t.Fatalf("login: %v", err)
		}
		c := cookies(t, ctx, admin)["__Host-authgateway-admin"]
		if c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || !c.Secure {
			t.Fatalf("admin cookie = %+v, want a Secure HttpOnly SameSite=Strict __Host- cookie", c)
		}
		if strings.Contains(c.Value, token) {
			t.Errorf("the cookie holds the token")
		}
		rows, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#routes tbody")))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"orders", "/orders", "GET POST", "apiKey", "status", "public", up.URL} {
			if !strings.Contains(rows, want) {
				t.Errorf("routes table lacks %q:\n%s", want, rows)
			}
		}
		// A single upstream without health checks says so.
		if !strings.Contains(rows, "health not checked") {
			t.Errorf("routes table does not say upstream health is not checked:\n%s", rows)
		}
	})

	t.Run("a stopped upstream turns down", func(t *testing.T) {
		billingTargets := func() (string, error) {
			if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#routes"))); err != nil {
				return "", err
			}
			return chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#routes tbody tr")].filter(r => r.textContent.includes("/billing")).map(r => r.innerText).join("\n")`))
		}
		poll.Until(t, 15*time.Second, "both billing targets up", func() error {
			row, err := billingTargets()
			if err != nil || strings.Count(row, " up") != 2 || !strings.Contains(row, billing2.URL) {
				return fmt.Errorf("billing row %q (%v)", row, err)
			}
			return nil
		})
		billing2.Close()
		poll.Until(t, 15*time.Second, "billing2 down on the page", func() error {
			row, err := billingTargets()
			if err != nil {
				return err
			}
			for _, line := range strings.Split(row, "\n") {
				if strings.Contains(line, billing2.URL) && strings.Contains(line, "down") {
					if !strings.Contains(row, billing1.URL+" up") {
						return fmt.Errorf("billing1 not shown up: %q", row)
					}
					return nil
				}
			}
			return fmt.Errorf("billing row %q", row)
		})
	})

	bogus := "pk_live_" + strings.Repeat("Z", 43)
	t.Run("denials appear without the credential", func(t *testing.T) {
		for range 3 {
			if code := gw(bogus); code != http.StatusUnauthorized {
				t.Fatalf("bad key: %d, want 401", code)
			}
		}
		// The page refreshes itself: no navigation.
		poll.Until(t, 15*time.Second, "denials on the page", func() error {
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.denial").length`))
			if err != nil || n < 3 {
				return fmt.Errorf("%d denial rows (%v)", n, err)
			}
			return nil
		})
		h := html()
		if strings.Contains(h, bogus) || strings.Contains(h, strings.Repeat("Z", 43)) {
			t.Errorf("the page shows the bad key")
		}
		if strings.Contains(h, token) {
			t.Errorf("the page shows the admin token")
		}
		if !strings.Contains(h, "malformed_key") {
			t.Errorf("the denials do not give the reason malformed_key")
		}
	})

	t.Run("broken YAML edit shows its error", func(t *testing.T) {
		broken := strings.Replace(cfg, "    roles: [orders]\n", "    roles: [orders\n", 1)
		if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 20*time.Second, "reload error on the page", func() error {
			if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/")); err != nil {
				return err
			}
			txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("reload-error")||{}).textContent||""`))
			if err != nil || txt == "" {
				return fmt.Errorf("no reload error shown (%v)", err)
			}
			if !regexp.MustCompile(`gateway\.yaml:\d+`).MatchString(txt) {
				t.Errorf("reload error %q lacks file:line", txt)
			}
			return nil
		})
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 20*time.Second, "reload error gone", func() error {
			if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/")); err != nil {
				return err
			}
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#reload-error").length`))
			if err != nil || n != 0 {
				return fmt.Errorf("still shown (%v)", err)
			}
			return nil
		})
	})

	t.Run("key created in the page works, and stops after revoke", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.SetValue(chromedp.CSS(`#keys-apiKey form.create input[name="name"]`), "dash-bot"),
			chromedp.SetValue(chromedp.CSS(`#keys-apiKey form.create input[name="roles"]`), "orders"),
			chromedp.Submit(chromedp.CSS(`#keys-apiKey form.create input[name="name"]`)),
			chromedp.WaitVisible(chromedp.CSS("#new-key"))); err != nil {
			t.Fatalf("creating a key: %v", err)
		}
		key, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#new-key")))
		if err != nil || !strings.HasPrefix(key, "pk_live_") {
			t.Fatalf("new key = %q (%v)", key, err)
		}
		poll.Until(t, 10*time.Second, "the new key accepted", func() error {
			if code := gw(key); code != http.StatusOK {
				return fmt.Errorf("status %d", code)
			}
			return nil
		})
		// Shown once: a fresh page does not hold it.
		if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/")); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(html(), key) {
			t.Fatalf("the key is shown again")
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr.key button.danger`)), chromedp.WaitVisible(chromedp.CSS("#flash"))); err != nil {
			t.Fatalf("revoking: %v", err)
		}
		if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#flash"))); !strings.Contains(msg, "Revoked key") {
			t.Fatalf("flash after revoke = %q", msg)
		}
		poll.Until(t, 10*time.Second, "the revoked key refused", func() error {
			if code := gw(key); code != http.StatusUnauthorized {
				return fmt.Errorf("status %d", code)
			}
			return nil
		})
	})

	t.Run("usable on a phone", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(admin+"/"),
			chromedp.WaitVisible(chromedp.CSS("#routes"))); err != nil {
			t.Fatal(err)
		}
		over, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil || over {
			t.Errorf("the page scrolls sideways at 390 px (%v)", err)
		}
	})

	t.Run("screenshot at 1280 px", func(t *testing.T) {
		for range 5 {
			gw("") // some 401s for the chart
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(admin+"/"),
			chromedp.WaitVisible(chromedp.CSS("#traffic svg"))); err != nil {
			t.Fatal(err)
		}
		over, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil || over {
			t.Errorf("the page scrolls sideways at 1280 px (%v)", err)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("AUTHGATEWAY_UPDATE_SCREENSHOT") == "1" {
			if err := os.WriteFile(filepath.Join("..", "..", "docs", "dashboard.png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("no request left the admin origin", func(t *testing.T) {
		mu.Lock()
		defer mu.Unlock()
		if len(requested) == 0 {
			t.Fatal("no request recorded")
		}
		for _, u := range requested {
			if !strings.HasPrefix(u, admin+"/") && u != "about:blank" {
				t.Errorf("the admin page requested %s", u)
			}
		}
	})

	t.Run("cross-origin POST refused", func(t *testing.T) {
		// Another origin on the same host (same site: the admin cookie
		// goes along). Its form even carries the page's real CSRF token,
		// so only the origin check stands in the way.
		if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/")); err != nil {
			t.Fatal(err)
		}
		csrf, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('input[name="csrf"]').value`))
		if err != nil || csrf == "" {
			t.Fatalf("reading the CSRF token: %v", err)
		}
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/keys/create">
<input name="csrf" value="%s"><input name="strategy" value="apiKey"><input name="name" value="evil-key"></form>
<script>document.getElementById("f").submit()</script>`, admin, csrf)
		}))
		t.Cleanup(evil.Close)
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		if err := chromedp.Do(tab, chromedp.Navigate(evil.URL)); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 10*time.Second, "the cross-origin POST answered", func() error {
			loc, err := chromedp.Run(tab, chromedp.Location())
			if err != nil || !strings.HasPrefix(loc, admin) {
				return fmt.Errorf("at %q (%v)", loc, err)
			}
			return nil
		})
		body, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
		if !strings.Contains(body, "cross-origin request refused") {
			t.Errorf("cross-origin POST answered %q, want it refused", body)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/")); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(html(), "evil-key") {
			t.Errorf("the cross-origin POST created a key")
		}
	})
}
