package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/proxy"
)

const testToken = "0123456789abcdef0123456789abcdef"

func do(t *testing.T, h http.Handler, method, target string, body url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestAccess attacks the admin handler's guards: the token, the cookie,
// CSRF, the origin check and, without a token, a rebound Host name.
func TestAccess(t *testing.T) {
	probes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	withTok := New(Options{Token: testToken, Probes: probes})
	noTok := New(Options{Probes: probes})
	csrf := withTok.csrf
	cookie := CookieName + "=" + withTok.cookie
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin", "Cookie": cookie}
	tests := []struct {
		name   string
		h      *Handler
		method string
		target string
		body   url.Values
		hdr    map[string]string
		want   int
	}{
		{"no token: login page", withTok, "GET", "/", nil, nil, 401},
		{"wrong bearer", withTok, "GET", "/", nil, map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 32)}, 401},
		{"bearer", withTok, "GET", "/", nil, map[string]string{"Authorization": "Bearer " + testToken}, 200},
		{"cookie", withTok, "GET", "/", nil, map[string]string{"Cookie": cookie}, 200},
		{"forged cookie", withTok, "GET", "/", nil, map[string]string{"Cookie": CookieName + "=" + testToken}, 401},
		{"probes open", withTok, "GET", "/metrics", nil, nil, 200},
		{"readyz open", withTok, "GET", "/readyz", nil, nil, 200},
		{"change without token", withTok, "POST", "/keys/create", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "same-origin"}, 401},
		{"change without csrf", withTok, "POST", "/keys/create", url.Values{"name": {"x"}}, sameOrigin, 403},
		{"change with wrong csrf", withTok, "POST", "/keys/create", url.Values{"csrf": {strings.Repeat("a", 64)}}, sameOrigin, 403},
		{"change cross-site", withTok, "POST", "/keys/create", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site", "Cookie": cookie}, 403},
		{"change same-site other origin", withTok, "POST", "/keys/create", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "same-site", "Cookie": cookie}, 403},
		{"change same-origin with csrf", withTok, "POST", "/keys/create", url.Values{"csrf": {csrf}}, sameOrigin, 400}, // reaches the handler: no strategy
		{"change by bearer API", withTok, "POST", "/keys/create", url.Values{}, map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "cross-site"}, 400},
		{"login cross-site", withTok, "POST", "/login", url.Values{"token": {testToken}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"no token: loopback host", noTok, "GET", "/", nil, map[string]string{"Host": "127.0.0.1:9090"}, 200},
		{"no token: localhost", noTok, "GET", "/", nil, map[string]string{"Host": "localhost:9090"}, 200},
		{"no token: rebound name", noTok, "GET", "/", nil, map[string]string{"Host": "evil.example:9090"}, 421},
		{"no token: probes any host", noTok, "GET", "/healthz", nil, map[string]string{"Host": "gw.internal:9090"}, 200},
		{"no token: change needs csrf", noTok, "POST", "/keys/create", url.Values{}, map[string]string{"Host": "127.0.0.1:9090", "Sec-Fetch-Site": "same-origin"}, 403},
		// Without an admin token a Bearer header proves nothing: it must not
		// skip the origin and CSRF checks.
		{"no token: bearer skips nothing", noTok, "POST", "/keys/create", url.Values{}, map[string]string{"Host": "127.0.0.1:9090", "Authorization": "Bearer x", "Sec-Fetch-Site": "cross-site"}, 403},
		{"no token: ipv6 loopback", noTok, "GET", "/", nil, map[string]string{"Host": "[::1]:9090"}, 200},
		{"no token: loopback-looking name", noTok, "GET", "/", nil, map[string]string{"Host": "127.0.0.1.nip.io"}, 421},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, tc.h, tc.method, tc.target, tc.body, tc.hdr)
			if w.Code != tc.want {
				t.Errorf("%s %s: status %d, want %d (%s)", tc.method, tc.target, w.Code, tc.want, w.Body.String())
			}
		})
	}
}

func TestLoginCookie(t *testing.T) {
	h := New(Options{Token: testToken})
	w := do(t, h, "POST", "/login", url.Values{"token": {testToken}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", w.Code)
	}
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Name != CookieName || !c[0].Secure || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode || c[0].Path != "/" {
		t.Fatalf("cookie = %+v, want a __Host- Secure HttpOnly SameSite=Strict cookie on /", c)
	}
	if strings.Contains(c[0].Value, testToken) {
		t.Errorf("the cookie holds the token")
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

func TestStats(t *testing.T) {
	s := NewStats()
	now := time.Now()
	for i := range 5 {
		ev := &proxy.Event{Route: "r", Start: now, Status: 200, Outcome: proxy.OutcomeAllowed}
		if i%2 == 0 {
			ev.Status, ev.Outcome, ev.Reason = 401, proxy.OutcomeInvalid, "expired"
		}
		s.Observe(ev)
	}
	// An upstream's own failure is not a denial.
	s.Observe(&proxy.Event{Route: "r", Start: now, Status: 502, Outcome: proxy.OutcomeAllowed, Reason: "upstream_unavailable"})
	tr := s.Traffic(now)
	if len(tr) != 1 || tr[0].Total[buckets-1] != 6 || tr[0].Denied[buckets-1] != 3 {
		t.Fatalf("traffic = %+v, want 6 requests and 3 denials this minute", tr)
	}
	if got := s.Traffic(now.Add(Window)); got[0].Total[buckets-1] != 0 {
		t.Errorf("a minute %v later still shows %d requests", Window, got[0].Total[buckets-1])
	}
	for i := range 2 * recentDenials {
		s.Observe(&proxy.Event{Route: "r", Start: now.Add(time.Duration(i) * time.Millisecond), Status: 403, Outcome: proxy.OutcomeForbidden, Reason: "missing_role"})
	}
	rec := s.Recent()
	if len(rec) != recentDenials || !rec[0].Time.After(rec[1].Time) {
		t.Errorf("recent = %d denials (newest first: %v), want %d newest first", len(rec), len(rec) > 1 && rec[0].Time.After(rec[1].Time), recentDenials)
	}
}
