package proxy

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/deadaddr"
)

// deadRedis is a client for an address where nothing listens.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: deadaddr.New(t), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestStoreOutageIsNot429: when the rate-limit store cannot answer, a limit
// with the deny policy refuses with 503 and a short Retry-After (an outage:
// nobody knows whether the client is over its limit), never with the 429 of
// a lockout; with allow the request is judged as usual.
func TestStoreOutageIsNot429(t *testing.T) {
	rc := deadRedis(t)
	limiter := func(name string, p ratelimit.Policy) *ratelimit.Limiter {
		l, err := ratelimit.NewRedis(rc, ratelimit.Options{Name: name, Limit: 100, Period: time.Hour, OnStoreError: p})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	up, u := newSeenUpstream(t)
	chain := []strategies.Named{{Name: "tok", Strategy: headerToken{}}}
	newGateway := func(failures ratelimit.Policy) *Gateway {
		table, err := NewTable([]*Route{
			{Name: "deny", Prefix: "/deny", Upstream: u, Chain: chain, Limit: limiter("route:deny", ratelimit.DenyOnError)},
			{Name: "allow", Prefix: "/allow", Upstream: u, Chain: chain, Limit: limiter("route:allow", ratelimit.AllowOnError)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return New(table, Options{AuthFailures: limiter("auth_failures", failures)})
	}
	deny, allow := newGateway(ratelimit.DenyOnError), newGateway(ratelimit.AllowOnError)
	valid := map[string]string{"Authorization": "Token bob:reader"}
	tests := []struct {
		name string
		g    *Gateway
		path string
		hdr  map[string]string
		want int
		body string
	}{
		{"auth_failures deny: valid credential", deny, "/allow/x", valid, 503, "authentication temporarily unavailable"},
		{"auth_failures deny: no credential", deny, "/allow/x", nil, 503, "authentication temporarily unavailable"},
		{"auth_failures allow: valid credential", allow, "/allow/x", valid, 200, ""},
		{"auth_failures allow: invalid credential", allow, "/allow/x", map[string]string{"Authorization": "Token bad"}, 401, "unauthorized"},
		{"auth_failures allow, quota deny", allow, "/deny/x", valid, 503, "rate limit temporarily unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := up.count()
			w := serve(tc.g, "GET", tc.path, tc.hdr)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tc.want, w.Body)
			}
			if tc.want == 200 {
				return
			}
			if up.count() != n {
				t.Errorf("a refused request reached the upstream")
			}
			if got, want := w.Body.String(), `{"error":"`+tc.body+`"}`+"\n"; got != want {
				t.Errorf("body %q, want %q", got, want)
			}
			if tc.want == 503 {
				if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 5 {
					t.Errorf("Retry-After = %q, want 1..5 seconds", w.Header().Get("Retry-After"))
				}
			}
		})
	}
}
