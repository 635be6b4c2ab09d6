package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
)

// sessionCookie is a test strategy: the cookie "session=<subject>"
// authenticates, marked as coming from a cookie; otherwise headerToken.
type sessionCookie struct{ headerToken }

func (s sessionCookie) Authenticate(ctx context.Context, r *http.Request) (*strategies.Identity, error) {
	if c, err := r.Cookie("session"); err == nil {
		return &strategies.Identity{Subject: c.Value, FromCookie: true}, nil
	}
	return s.headerToken.Authenticate(ctx, r)
}

// TestCrossOriginSessionRequests: a request authenticated by a cookie with
// an unsafe method is refused when a browser says it comes from another
// origin (SameSite=Strict lets a sibling subdomain send it), unless the
// route's CORS policy names that origin; safe methods, bearer credentials
// and non-browser requests are unaffected, and a refusal is not an auth
// failure.
func TestCrossOriginSessionRequests(t *testing.T) {
	up, u := newSeenUpstream(t)
	chain := []strategies.Named{{Name: "session", Strategy: sessionCookie{}}}
	table, err := NewTable([]*Route{
		{Name: "app", Prefix: "/app", Upstream: u, Chain: chain,
			CORS: NewCORSPolicy([]string{"https://app.example.com"}, []string{"POST"}, nil, nil, true, time.Minute)},
		{Name: "anyorigin", Prefix: "/any", Upstream: u, Chain: chain,
			CORS: NewCORSPolicy([]string{"*"}, []string{"POST"}, nil, nil, false, time.Minute)},
		{Name: "api", Prefix: "/api", Upstream: u, Chain: chain},
	})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.NewMemory(ratelimit.Options{Name: "auth_failures", Limit: 1, Period: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var last Event
	g := New(table, Options{AuthFailures: lim, Observer: func(ev *Event) { last = *ev }})

	// serve's requests have Host example.com.
	const cookie, evil = "session=alice", "https://evil.example.com"
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		want               int
	}{
		{"POST from a sibling subdomain", "POST", "/api/x", map[string]string{"Cookie": cookie, "Origin": evil}, 403},
		{"Sec-Fetch-Site: same-site", "POST", "/api/x", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-site"}, 403},
		{"Sec-Fetch-Site: cross-site", "POST", "/api/x", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "cross-site", "Origin": evil}, 403},
		{"same-site claim with our own Origin", "POST", "/api/x", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-site", "Origin": "http://example.com"}, 403},
		{"Origin null", "PUT", "/api/x", map[string]string{"Cookie": cookie, "Origin": "null"}, 403},
		{"DELETE", "DELETE", "/api/x", map[string]string{"Cookie": cookie, "Origin": evil}, 403},
		{"PATCH", "PATCH", "/api/x", map[string]string{"Cookie": cookie, "Origin": evil}, 403},
		{"CORS * does not admit the session", "POST", "/any/x", map[string]string{"Cookie": cookie, "Origin": evil, "Sec-Fetch-Site": "cross-site"}, 403},
		{"CORS names another origin", "POST", "/app/x", map[string]string{"Cookie": cookie, "Origin": evil}, 403},
		// Controls.
		{"control: same origin", "POST", "/api/x", map[string]string{"Cookie": cookie, "Origin": "http://example.com"}, 200},
		{"control: Sec-Fetch-Site: same-origin", "POST", "/api/x", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}, 200},
		{"control: Sec-Fetch-Site: none (typed by the user)", "POST", "/api/x", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "none"}, 200},
		{"control: no browser headers", "POST", "/api/x", map[string]string{"Cookie": cookie}, 200},
		{"control: GET from another origin", "GET", "/api/x", map[string]string{"Cookie": cookie, "Origin": evil, "Sec-Fetch-Site": "cross-site"}, 200},
		{"control: bearer credential from another origin", "POST", "/api/x", map[string]string{"Authorization": "Token bob:reader", "Origin": evil, "Sec-Fetch-Site": "cross-site"}, 200},
		{"control: origin the route's CORS names", "POST", "/app/x", map[string]string{"Cookie": cookie, "Origin": "https://app.example.com", "Sec-Fetch-Site": "cross-site"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := up.count()
			w := serve(g, tc.method, tc.path, tc.hdr)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tc.want, w.Body)
			}
			if tc.want == 200 {
				if up.count() != n+1 {
					t.Errorf("upstream saw %d requests, want 1", up.count()-n)
				}
				return
			}
			if up.count() != n {
				t.Errorf("a refused request reached the upstream")
			}
			if got := w.Body.String(); got != `{"error":"cross-origin request refused"}`+"\n" {
				t.Errorf("body %q", got)
			}
			if last.Outcome != OutcomeForbidden || last.Reason != "cross_origin_refused" {
				t.Errorf("event outcome/reason = %s/%s, want forbidden/cross_origin_refused", last.Outcome, last.Reason)
			}
		})
	}
	// explain decides as the proxy does.
	r := httptest.NewRequest("POST", "/api/x", nil)
	r.RequestURI = "/api/x"
	r.Header.Set("Cookie", cookie)
	r.Header.Set("Origin", evil)
	if ex := g.Explain(r); ex.Status != 403 || ex.Reason != "cross_origin_refused" {
		t.Errorf("explain: %d %s, want 403 cross_origin_refused", ex.Status, ex.Reason)
	}
	// Nine refusals with an auth-failure limit of 1: none counted (another
	// site must not be able to lock its visitors out through their browsers).
	if w := serve(g, "POST", "/api/x", map[string]string{"Authorization": "Token bob:reader"}); w.Code != 200 {
		t.Errorf("after the refusals a valid request got %d, want 200 (refusals counted as failures?)", w.Code)
	}
}

// newSeenUpstream starts a recording upstream (newTestGateway's) and returns
// it with its URL.
func newSeenUpstream(t *testing.T) (*seen, *url.URL) {
	t.Helper()
	g, up := newTestGateway(t, nil)
	return up, g.Table().Routes()[0].Upstream
}
