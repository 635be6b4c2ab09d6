package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// TestApproximateQuotaTwoReplicas: two gateway replicas on one Redis with
// an approximate per-IP quota (limit 20, sync_interval 50ms). What A admits
// reaches B with A's next sync: B then admits only the rest. A burst at
// both within one interval is held to the documented bound: limit + what
// the other replica admits in that interval (here at most the burst sent
// to it), never more than 2 × limit. With Redis stopped, on_redis_error:
// allow keeps limiting by each replica's own count.
func TestApproximateQuotaTwoReplicas(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, 0)
	env := map[string]string{"ACCESS_SECRET": randomSecret(t)}
	cfg := limitConfig{redisURL: rs.URL(), trusted: "127.0.0.1/32", authFailures: "{limit: 100000, period: 1m}", routes: `  - name: approx
    path: /approx
    upstream: UPSTREAM
    public: true
    rate_limit: {limit: 20, period: 1m, by: ip, accuracy: approximate, sync_interval: 50ms}
`}.yaml(up.URL)
	a, b := startGateway(t, cfg, env), startGateway(t, cfg, env)

	// count sends n requests to g as client ip (through the trusted
	// loopback proxy) and answers how many were admitted.
	count := func(g *Gateway, n int, ip string) (ok int) {
		for range n {
			switch r := g.Do(t, req("GET", "/approx/x", "X-Forwarded-For: "+ip)); r.Status {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				wantLimited(t, "over the quota", r, 61) // the window, rounded up
			default:
				t.Fatalf("client %s: status %d, want 200 or 429", ip, r.Status)
			}
		}
		return ok
	}

	// Sequential: A's 12 are synced before B is asked.
	if got := count(a, 12, "198.51.100.1"); got != 12 {
		t.Fatalf("A admitted %d of 12; want 12 (limit 20)", got)
	}
	time.Sleep(300 * time.Millisecond) // several sync intervals
	if got := count(b, 20, "198.51.100.1"); got != 8 {
		t.Errorf("B admitted %d after A's 12 were synced; want 8 (limit 20)", got)
	}
	time.Sleep(300 * time.Millisecond)
	if got := count(a, 5, "198.51.100.1"); got != 0 {
		t.Errorf("A admitted %d once B's were synced; want 0", got)
	}

	// Concurrent bursts at both replicas: at least the limit, at most the
	// limit plus what the other replica admitted before it saw the count.
	const perReplica = 30
	oks := make([]int, 2)
	runConcurrently(2, func(i int) {
		oks[i] = count([]*Gateway{a, b}[i], perReplica, "198.51.100.2")
	})
	total := oks[0] + oks[1]
	if total < 20 || total > 20+min(oks[0], oks[1]) || total > 40 {
		t.Errorf("bursts admitted %d (A %d, B %d); want within [20, 20 + the smaller replica's admissions]", total, oks[0], oks[1])
	}

	// Redis down, on_redis_error: allow (the quota default): each replica
	// still limits by its own count.
	rs.Stop()
	if got := count(a, 25, "198.51.100.3"); got != 20 {
		t.Errorf("A, Redis down: admitted %d of 25; want 20 (its local count against limit 20)", got)
	}
}
