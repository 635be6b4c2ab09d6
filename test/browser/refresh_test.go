package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// signIn navigates to page, which sends the browser to the provider's
// login form, and signs alice in there; it returns once the browser is back
// on page.
func signIn(t *testing.T, ctx context.Context, op *oidctest.Provider, page string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("navigating to %s: %v", page, err)
	}
	waitLocation(t, ctx, "redirect to the provider's login form", func(l string) bool {
		return strings.HasPrefix(l, op.Issuer+"/login/username")
	})
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), oidctest.UserName),
		chromedp.SendKeys(chromedp.CSS("#password"), oidctest.UserPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	); err != nil {
		t.Fatalf("submitting the login form: %v", err)
	}
	waitLocation(t, ctx, "back on the original page", func(l string) bool { return l == page })
}

// pollAPI runs a script in the page that calls the protected API every half
// second for d (a legacy app's polling, knowing nothing of /auth/refresh)
// and answers the status of each call; a redirect (to login) shows as 0.
func pollAPI(ctx context.Context, tag string, d time.Duration) ([]int, error) {
	js := fmt.Sprintf(`(async () => {
  const out = [];
  const end = Date.now() + %d;
  for (let i = 0; Date.now() < end; i++) {
    const r = await fetch("/app/api/%s/" + i, {credentials: "same-origin", redirect: "manual"});
    out.push(r.status);
    await new Promise(res => setTimeout(res, 500));
  }
  return out;
})()`, d.Milliseconds(), tag)
	return chromedp.Run(ctx, chromedp.Evaluate[[]int](js, chromedp.EvalAwaitPromise))
}

// TestBrowserTransparentRefresh: with 3 s access tokens, a page whose script
// calls a protected API every half second for three access lifetimes sees
// 200 every time, never a login redirect, and the upstream sees alice on
// every call; the same with two tabs polling at once.
func TestBrowserTransparentRefresh(t *testing.T) {
	ctx := newBrowser(t)
	op := oidctest.Start(t, oidctest.Options{Host: "127.0.0.1"})
	rec := &recorder{}
	up := httptest.NewServer(rec)
	t.Cleanup(up.Close)
	port := freePort(t)
	gwURL := "http://localhost:" + strconv.Itoa(port)
	op.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret,
		RedirectURIs: []string{gwURL + "/auth/callback"}})
	const accessTTL = 3 * time.Second
	cfg := fmt.Sprintf(`
server:
  listen: "127.0.0.1:%d"
  admin_listen: ""
tokens:
  issuer: gw.test
  audience: app.test
  access_ttl: %s
  refresh_ttl: 1h
  signing_keys:
    - {kid: k1, algorithm: HS256, secret: "browser-test-signing-secret-0123456789abcdef"}
sessions:
  refresh_before: 1s
  reuse_grace: 10s
strategies:
  jwt: {type: jwt, issuer: gw.test, audience: app.test, algorithms: [HS256], keys: tokens}
  sso:
    type: oauth2
    issuer_url: %q
    client_id: %q
    client_secret: %q
    redirect_url: %q
    login: true
routes:
  - {name: app, path: /app, upstream: %q, strategies: [jwt, sso]}
`, port, accessTTL, op.Issuer, oidctest.GatewayClientID, oidctest.GatewayClientSecret, gwURL+"/auth/callback", up.URL)
	logs := startGateway(t, cfg, "127.0.0.1:"+strconv.Itoa(port))
	defer func() {
		if t.Failed() {
			t.Logf("gateway output:\n%s", logs)
		}
	}()
	signIn(t, ctx, op, gwURL+"/app/page")

	wantAllServed := func(tag string, statuses []int) {
		t.Helper()
		if len(statuses) < int(3*accessTTL/(500*time.Millisecond))/2 {
			t.Errorf("%s: only %d calls in three access lifetimes", tag, len(statuses))
		}
		for i, s := range statuses {
			if s != http.StatusOK {
				t.Errorf("%s: call %d of %d answered %d, want 200 (all: %v)", tag, i, len(statuses), s, statuses)
				break
			}
		}
		seen := 0
		rec.mu.Lock()
		for _, h := range rec.got {
			if h.Get("X-Auth-Subject") == oidctest.UserID {
				seen++
			}
		}
		rec.mu.Unlock()
		if seen < len(statuses) {
			t.Errorf("%s: the upstream saw alice %d times, want at least %d", tag, seen, len(statuses))
		}
	}

	statuses, err := pollAPI(ctx, "one", 3*accessTTL+time.Second)
	if err != nil {
		t.Fatalf("polling from one tab: %v", err)
	}
	wantAllServed("one tab", statuses)

	// Two tabs of the same browser share the cookies and poll at once.
	tab2, cancel := chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Do(tab2, chromedp.Navigate(gwURL+"/app/page")); err != nil {
		t.Fatalf("second tab: %v", err)
	}
	rec.mu.Lock()
	rec.got = nil
	rec.mu.Unlock()
	var wg sync.WaitGroup
	results := make([][]int, 2)
	errs := make([]error, 2)
	for i, tab := range []context.Context{ctx, tab2} {
		wg.Go(func() { results[i], errs[i] = pollAPI(tab, "tab"+strconv.Itoa(i+1), 3*accessTTL+time.Second) })
	}
	wg.Wait()
	total := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("tab %d: %v", i+1, errs[i])
		}
		total += len(results[i])
		wantAllServed(fmt.Sprintf("tab %d of two", i+1), results[i])
	}
	t.Logf("two tabs: %d calls, all answered", total)
}
