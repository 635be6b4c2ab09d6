package e2e

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// TestAuthFailureLimit: after `limit` invalid credentials from one IP, every
// authenticated route answers 429 (even to a valid token) until the window
// ends; public routes stay reachable. In-memory store, no Redis.
func TestAuthFailureLimit(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, 0)
	cfg := strings.ReplaceAll(standardConfig, "UPSTREAM", up.URL)
	cfg = strings.Replace(cfg, "limit: 100000\n    period: 1m", "limit: 3\n    period: 2s", 1)
	if !strings.Contains(cfg, "period: 2s") {
		t.Fatal("test config: auth_failures block not found")
	}
	g := startGateway(t, cfg, map[string]string{"ACCESS_SECRET": randomSecret(t)})
	valid := g.Token(t, "-sub", "rita", "-roles", "reader")
	bad := valid[:len(valid)-4] + "AAAA"

	// Requests without credentials are not failures.
	for i := 0; i < 4; i++ {
		if r := g.Do(t, req("GET", "/api/x")); r.Status != http.StatusUnauthorized {
			t.Fatalf("no token #%d: status = %d, want 401", i+1, r.Status)
		}
	}
	if r := g.Do(t, req("GET", "/api/x", bearer(valid))); r.Status != http.StatusOK {
		t.Fatalf("valid token after anonymous 401s: status = %d, want 200", r.Status)
	}
	for i := 0; i < 3; i++ {
		if r := g.Do(t, req("GET", "/api/x", bearer(bad))); r.Status != http.StatusUnauthorized {
			t.Fatalf("bad token #%d: status = %d, want 401", i+1, r.Status)
		}
	}

	up.Reset()
	for _, tc := range []struct{ name, raw string }{
		{"valid token", req("GET", "/api/x", bearer(valid), "X-Request-Id: rl-valid")},
		{"valid token on the admin route", req("GET", "/api/admin", bearer(valid))},
		{"valid token, spoofed X-Forwarded-For", req("GET", "/api/x", bearer(valid), "X-Forwarded-For: 198.51.100.7")},
		{"bad token", req("GET", "/api/x", bearer(bad))},
		{"no token", req("GET", "/api/x")},
	} {
		r := g.Do(t, tc.raw)
		if r.Status != http.StatusTooManyRequests {
			t.Errorf("%s: status = %d, want 429", tc.name, r.Status)
			continue
		}
		r.ErrorMessage(t)
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 3 {
			t.Errorf("%s: Retry-After = %q, want 1..3 seconds", tc.name, r.Header.Get("Retry-After"))
		}
	}
	up.WantNothing(t)
	if ev := g.Event(t, "rl-valid"); ev["outcome"] != "rate_limited" || ev["reason"] != "auth_failures" {
		t.Errorf("429 event outcome/reason = %v/%v, want rate_limited/auth_failures", ev["outcome"], ev["reason"])
	}
	if r := g.Do(t, req("GET", "/public/x")); r.Status != http.StatusOK {
		t.Errorf("public route while limited: status = %d, want 200", r.Status)
	}

	// After the window the valid token works again (429 until then).
	poll.Until(t, 10*time.Second, "after the window", func() error {
		switch r := g.Do(t, req("GET", "/api/x", bearer(valid))); r.Status {
		case http.StatusOK:
			return nil
		case http.StatusTooManyRequests:
			return errors.New("still 429")
		default:
			t.Fatalf("after the window: status = %d, want 429 and then 200", r.Status)
			return nil
		}
	})
}
