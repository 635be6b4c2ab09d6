package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
)

// browserSession is a test strategy: the cookie "session=expired" is an
// expired session (a final answer, as the jwt strategy gives for its own
// tokens), "session=<subject>" authenticates from the cookie; otherwise
// headerToken.
type browserSession struct{ headerToken }

func (s browserSession) Authenticate(ctx context.Context, r *http.Request) (*strategies.Identity, error) {
	if c, err := r.Cookie("session"); err == nil {
		if c.Value == "expired" {
			return nil, &strategies.InvalidError{Reason: "expired", Final: true}
		}
		return &strategies.Identity{Subject: c.Value, FromCookie: true}, nil
	}
	return s.headerToken.Authenticate(ctx, r)
}

// answerHeaders are the headers decide puts on an answer; the others
// (X-Request-Id, Content-Type, ...) are the door's.
var answerHeaders = []string{"Location", "Www-Authenticate", "Allow", "Retry-After", "Vary",
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Access-Control-Expose-Headers",
	"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"}

// TestExplainAgreesWithTheGateway: explain, run just before the gateway
// serves the same request on the same gateway (same failure limiter, same
// quota), gives the gateway's status, outcome, reason and answer headers —
// the 302 for a navigation with an expired session, CORS preflights, the
// auth-failure limit, the quota and the body limit included — and counts
// nothing: the gateway's answers are those of a gateway never explained to.
func TestExplainAgreesWithTheGateway(t *testing.T) {
	up, u := newSeenUpstream(t)
	session := []strategies.Named{{Name: "session", Strategy: browserSession{}}}
	tok := []strategies.Named{{Name: "tok", Strategy: headerToken{}}}
	quota, err := ratelimit.NewMemory(ratelimit.Options{Name: "route:quota", Limit: 2, Period: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	failures, err := ratelimit.NewMemory(ratelimit.Options{Name: "auth_failures", Limit: 3, Period: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	table, err := NewTable([]*Route{
		{Name: "app", Prefix: "/app", Upstream: u, Chain: session, Login: "/auth/login", Methods: []string{"GET", "POST"},
			CORS: NewCORSPolicy([]string{"https://app.example.com"}, []string{"GET", "POST"}, []string{"Authorization"}, []string{"X-Request-Id"}, true, time.Minute)},
		{Name: "quota", Prefix: "/quota", Upstream: u, Chain: tok, Limit: quota},
		{Name: "upload", Prefix: "/upload", Upstream: u, Public: true, MaxBodyBytes: 10},
		{Name: "scoped", Prefix: "/scoped", Upstream: u, Chain: tok, Scopes: []string{"write"}},
		{Name: "api", Prefix: "/api", Upstream: u, Chain: tok},
		{Name: "site", Prefix: "/", Upstream: u, Public: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var last Event
	g := New(table, Options{AuthFailures: failures, Observer: func(ev *Event) { last = *ev }})

	nav := map[string]string{"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
	}
	bob := map[string]string{"Authorization": "Token bob:reader"}
	bad := map[string]string{"Authorization": "Token bad"}
	tests := []struct {
		name, method, target string
		hdr                  map[string]string
		contentLength        int64
		status               int
		reason               string
	}{
		{"navigation without a session goes to login", "GET", "/app/page?x=1", nav, 0, 302, "no_credentials"},
		{"navigation with an expired session goes to login", "GET", "/app/page", with(nav, "Cookie", "session=expired"), 0, 302, "expired"},
		{"API call with an expired session is 401", "GET", "/app/page", map[string]string{"Cookie": "session=expired", "Accept": "application/json"}, 0, 401, "expired"},
		{"CORS preflight from the allowed origin", "OPTIONS", "/app/items", preflight("https://app.example.com"), 0, 204, ""},
		{"CORS preflight from another origin", "OPTIONS", "/app/items", preflight("https://evil.example"), 0, 403, ReasonCORSPreflightRefused},
		{"CORS request from the allowed origin", "GET", "/app/items", map[string]string{"Cookie": "session=alice", "Origin": "https://app.example.com"}, 0, 200, ""},
		{"cross-origin POST with the session cookie", "POST", "/app/items", map[string]string{"Cookie": "session=alice", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 0, 403, ReasonCrossOriginRefused},
		{"method outside the route's", "DELETE", "/app/items", map[string]string{"Cookie": "session=alice"}, 0, 405, ReasonMethod},
		{"TRACE on a route without methods", "TRACE", "/api/x", bob, 0, 405, ReasonMethod},
		{"missing scope", "GET", "/scoped/x", bob, 0, 403, ReasonMissingScope},
		{"quota: first", "GET", "/quota/x", bob, 0, 200, ""},
		{"quota: second", "GET", "/quota/x", bob, 0, 200, ""},
		{"quota: spent", "GET", "/quota/x", bob, 0, 429, ReasonRouteQuota},
		{"body over the limit", "POST", "/upload/f", nil, 20, 413, ReasonBodyTooLarge},
		{"body at the limit", "POST", "/upload/f", nil, 10, 200, ""},
		{"bad path", "GET", "/api%2Fx", bob, 0, 400, ReasonBadPath},
		{"case-changed path", "GET", "/API/x", bob, 0, 400, ReasonPathCaseMismatch},
		// The third failure with the expired session's API call above.
		{"invalid credential 1", "GET", "/api/x", bad, 0, 401, "bad_token"},
		{"invalid credential 2", "GET", "/api/x", bad, 0, 401, "bad_token"},
		{"valid credential over the failure limit", "GET", "/api/x", bob, 0, 429, ReasonAuthFailures},
		{"navigation over the failure limit", "GET", "/app/page", nav, 0, 429, ReasonAuthFailures},
		{"public route over the failure limit", "GET", "/pub", nil, 0, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newReq := func() *http.Request {
				r := httptest.NewRequest(tc.method, tc.target, nil)
				r.RequestURI = tc.target
				for k, v := range tc.hdr {
					r.Header.Set(k, v)
				}
				if tc.contentLength > 0 {
					r = httptest.NewRequest(tc.method, tc.target, strings.NewReader(strings.Repeat("x", int(tc.contentLength))))
					r.RequestURI = tc.target
				}
				return r
			}
			before := up.count()
			ex := g.Explain(newReq())
			if up.count() != before {
				t.Fatal("explain called the upstream")
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, newReq())
			if w.Code != tc.status {
				t.Fatalf("gateway: status %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			if last.Reason != tc.reason {
				t.Errorf("gateway: reason %q, want %q", last.Reason, tc.reason)
			}
			if ex.Status != w.Code || ex.Reason != last.Reason || ex.Outcome != last.Outcome {
				t.Errorf("explain: %d %s %s; the gateway: %d %s %s", ex.Status, ex.Outcome, ex.Reason, w.Code, last.Outcome, last.Reason)
			}
			for _, name := range answerHeaders {
				got := strings.Join(w.Header().Values(name), ", ")
				want := ex.ResponseHeaders[name]
				if name == "Retry-After" || name == "Ratelimit-Reset" {
					// Seconds to the window's end: a second may pass.
					got, want = strings.TrimRight(got, "0123456789"), strings.TrimRight(want, "0123456789")
				}
				if got != want {
					t.Errorf("%s: gateway %q, explain %q", name, got, want)
				}
			}
			if (w.Code == http.StatusOK) != (ex.UpstreamURL != "") {
				t.Errorf("gateway %d, explain's upstream URL %q", w.Code, ex.UpstreamURL)
			}
		})
	}
}
