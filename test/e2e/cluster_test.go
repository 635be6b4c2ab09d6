package e2e

// Two gateway replicas on a real 3-master Redis Cluster and on a real
// Sentinel setup (master, replica, three sentinels): every piece of shared
// state, a master killed and restarted, a slot migrated while requests run,
// a failover.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// sharedStateConfig is the gateway of these tests: gateway tokens (jwt,
// checked against the logout denylist) and an api_key strategy on Redis on
// /api, the browser login at the provider issuer, per-subject quotas on
// /quota (limit 40), /strict (on_redis_error: deny) and /lenient (allow), a
// public route; the client IP comes from X-Forwarded-For sent by the test (a
// trusted proxy on loopback), so that each check has counters of its own.
func sharedStateConfig(redisURL, keysName, upstream, issuer string) string {
	return fmt.Sprintf(`server:
  trusted_proxies: ["127.0.0.1/32"]
redis:
  url: %q
sessions:
  reuse_grace: 0s  # the checks below present a rotated refresh token again at once: reuse
%s  %s:
    type: api_key
    header: X-API-Key
    prefixes: [pk_live]
    store: redis
  sso:
    type: oauth2
    issuer_url: %[5]s
    client_id: gateway
    client_secret: ${SSO_SECRET}
    redirect_url: http://gateway.test/auth/callback
    login: true
routes:
  - {name: api, path: /api, upstream: %[4]s, strategies: [userJwt, %[3]s]}
  - {name: quota, path: /quota, upstream: %[4]s, strategies: [userJwt], rate_limit: {limit: 40, period: 1m, by: subject}}
  - {name: strict, path: /strict, upstream: %[4]s, strategies: [userJwt], rate_limit: {limit: 100000, period: 1m, by: subject, on_redis_error: deny}}
  - {name: lenient, path: /lenient, upstream: %[4]s, strategies: [userJwt], rate_limit: {limit: 100000, period: 1m, by: subject, on_redis_error: allow}}
  - {name: public, path: /public, upstream: %[4]s, public: true}
rate_limits:
  auth_failures: {limit: 10, period: 1m}
`, redisURL, userJWTConfig, keysName, upstream, issuer)
}

// from is the X-Forwarded-For header naming ip as the client.
func from(ip string) string { return "X-Forwarded-For: " + ip }

// quotaKey is the Redis key of route's counter for subject (of userJwt).
func quotaKey(route, subject string) string {
	return "authgateway:ratelimit:route:" + route + ":sub:userJwt:" + subject
}

// failureKey is the Redis key of the auth-failure counter of a client IP.
func failureKey(ip string) string { return "authgateway:ratelimit:auth_failures:" + ip }

// newUniversalClient is a client on url as the gateway builds it, for
// reading what the gateways stored.
func newUniversalClient(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	rc, err := redisconn.New(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// sharedState is two gateway replicas of sharedStateConfig on one Redis
// deployment, with the provider of their login.
type sharedState struct {
	a, b *Gateway
	reps []replicaGW
	rc   redis.UniversalClient // on the same Redis, as the gateways build it
	env  map[string]string
	op   *oidctest.Provider
}

func startSharedState(t *testing.T, redisURL, keysName string) *sharedState {
	t.Helper()
	s := &sharedState{rc: newUniversalClient(t, redisURL), op: oidctest.Start(t, oidctest.Options{})}
	s.op.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret, RedirectURIs: []string{ssoCallback}})
	s.env = map[string]string{"ACCESS_SECRET": randomSecret(t), "SSO_SECRET": oidctest.GatewayClientSecret}
	cfg := sharedStateConfig(redisURL, keysName, newUpstream(t, 0).URL, s.op.Issuer)
	s.a, s.b = startGateway(t, cfg, s.env), startGateway(t, cfg, s.env)
	s.reps = []replicaGW{{"A", s.a}, {"B", s.b}}
	return s
}

// failureLimitShared: 5 failures on each replica at once from client trip
// the limit of 10 on both, for a valid token too; the counter is exactly 10.
func (s *sharedState) failureLimitShared(t *testing.T, client string) {
	t.Helper()
	valid := s.a.Token(t, "-sub", "rita")
	failures := make([]string, 10)
	for i := range failures {
		if i%2 == 0 {
			failures[i] = bearer(tamper(valid))
		} else {
			failures[i] = "X-API-Key: " + randomKeyLike(t, "pk_live")
		}
	}
	codes := make([]int, len(failures))
	runConcurrently(len(codes), func(i int) {
		codes[i] = statusOf(s.reps[i%2].g.Addr, req("GET", "/api/x", failures[i], from(client)))
	})
	for i, code := range codes {
		if code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401 (all: %v)", i+1, code, codes)
		}
	}
	for _, r := range s.reps {
		wantLimited(t, "11th request, valid token, replica "+r.name, r.g.Do(t, req("GET", "/api/x", bearer(valid), from(client))), 61)
	}
	if n, err := s.rc.Get(context.Background(), failureKey(client)).Result(); err != nil || n != "10" {
		t.Errorf("failure counter of %s = %q, %v; want \"10\"", client, n, err)
	}
	if code := statusOf(s.b.Addr, req("GET", "/public/x", from(client))); code != http.StatusOK {
		t.Errorf("public route while limited: status %d, want 200", code)
	}
}

// quotaShared: 100 requests of one subject at once over both replicas
// against the limit of 40: exactly 40 served.
func (s *sharedState) quotaShared(t *testing.T, subject, client string) {
	t.Helper()
	tok := s.a.Token(t, "-sub", subject)
	codes := make([]int, 100)
	runConcurrently(len(codes), func(i int) {
		codes[i] = statusOf(s.reps[i%2].g.Addr, req("GET", "/quota/x", bearer(tok), from(client)))
	})
	wantQuota(t, codes, 40)
}

// keyRevokedEverywhere: a key made with the CLI works on both replicas; its
// revocation is refused on both within a second.
func (s *sharedState) keyRevokedEverywhere(t *testing.T, client string) {
	t.Helper()
	key := createKey(t, s.a.ConfigPath, s.env, "-name", "shared-svc")
	raw := req("GET", "/api/x", key.header(), from(client))
	for _, r := range s.reps {
		waitStatus(t, "new key on replica "+r.name, r.g, raw, http.StatusOK, 3*time.Second)
	}
	s.revokedWithinASecond(t, key, raw)
}

// revokedWithinASecond revokes key with the CLI and checks that both
// replicas refuse raw within a second.
func (s *sharedState) revokedWithinASecond(t *testing.T, key apiKey, raw string) {
	t.Helper()
	keysCLI(t, s.a.ConfigPath, s.env, "revoke", key.ID)
	took := measureRefusal(t, s.reps, raw, 3*time.Second)
	for _, r := range s.reps {
		if d, ok := took[r.name]; !ok || d >= time.Second {
			t.Errorf("replica %s refused the revoked key after %v (refused: %v), want < 1s", r.name, d, ok)
		}
	}
	t.Logf("revocation seen by A after %v, by B after %v", took["A"], took["B"])
}

// sessionsShared: a browser login at A is a session on B too; a refresh
// token rotated at A and presented again at B revokes the session on both
// (its newest access token refused everywhere within a second); a logout
// at A is refused at B within a second.
func (s *sharedState) sessionsShared(t *testing.T, client string) {
	t.Helper()
	sso := &ssoGateway{Gateway: s.a, op: s.op}
	login := func() (access, refresh string) {
		r := sso.login(t, oidctest.UserName, oidctest.UserPassword)
		access, refresh = setCookie(r, "__Host-authgw_access"), setCookie(r, "__Host-authgw_refresh")
		if r.Status != http.StatusOK || access == "" || refresh == "" {
			t.Fatalf("login at A: status %d, cookies %v", r.Status, sessionCookies(r))
		}
		return access, refresh
	}
	use := func(access string) string {
		return req("GET", "/api/x", "Cookie: __Host-authgw_access="+access, from(client))
	}
	post := func(path string, cookies ...string) string {
		return req("POST", path, "Origin: http://gateway.test", "Content-Length: 0", "Cookie: "+strings.Join(cookies, "; "), from(client))
	}

	access, refresh := login()
	if code := statusOf(s.b.Addr, use(access)); code != http.StatusOK {
		t.Fatalf("session of a login at A, used at B: status %d, want 200", code)
	}
	rotated := s.a.Do(t, post("/auth/refresh", "__Host-authgw_refresh="+refresh))
	access2 := setCookie(rotated, "__Host-authgw_access")
	if rotated.Status != http.StatusOK || access2 == "" {
		t.Fatalf("refresh at A: status %d (%s)", rotated.Status, truncate(rotated.Body))
	}
	if r := s.b.Do(t, post("/auth/refresh", "__Host-authgw_refresh="+refresh)); r.Status != http.StatusUnauthorized {
		t.Fatalf("the rotated refresh token again, at B: status %d, want 401", r.Status)
	}
	s.refusedWithinASecond(t, "access token of a session revoked for refresh reuse", use(access2))

	access, refresh = login()
	if r := s.a.Do(t, post("/auth/logout", "__Host-authgw_access="+access, "__Host-authgw_refresh="+refresh)); r.Status != http.StatusOK {
		t.Fatalf("logout at A: status %d (%s)", r.Status, truncate(r.Body))
	}
	s.refusedWithinASecond(t, "access token after logout at A", use(access))
	if r := s.b.Do(t, post("/auth/refresh", "__Host-authgw_refresh="+refresh)); r.Status != http.StatusUnauthorized {
		t.Errorf("refresh token after logout at A, at B: status %d, want 401", r.Status)
	}
}

// refusedWithinASecond checks that both replicas answer raw with 401 within
// a second.
func (s *sharedState) refusedWithinASecond(t *testing.T, what, raw string) {
	t.Helper()
	took := measureRefusal(t, s.reps, raw, 3*time.Second)
	for _, r := range s.reps {
		if d, ok := took[r.name]; !ok || d >= time.Second {
			t.Errorf("%s: replica %s refused it after %v (refused: %v), want < 1s", what, r.name, d, ok)
		}
	}
}

// setCookie is the value of the cookie name a response sets, or "".
func setCookie(r *Response, name string) string {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestRedisCluster runs two gateway replicas on a real 3-master Redis
// Cluster. The subtests share the cluster and run in order: the last ones
// move slots and kill a master.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	ctx := context.Background()
	// The api_key strategy's name sets its keys' slot: pick one among the
	// first slots of the first master, which the reshard below moves.
	const moving = 512
	lo, hi := c.FirstSlots(c.Nodes[0], moving)
	keysName := ""
	for i := 0; keysName == ""; i++ {
		if s := c.Slot(apikey.RedisNamespace(fmt.Sprintf("keys%d", i))); s >= lo && s <= hi {
			keysName = fmt.Sprintf("keys%d", i)
		}
	}
	s := startSharedState(t, c.URL(), keysName)
	a := s.a
	ipSeq := 0
	// ip is a client address of its own whose failure counter lives on a
	// master that ok accepts.
	ip := func(ok func(*redistest.Server) bool) string {
		for {
			ipSeq++
			addr := fmt.Sprintf("198.51.%d.%d", ipSeq/250, ipSeq%250+1)
			if ok(c.NodeFor(failureKey(addr))) {
				return addr
			}
		}
	}
	anyNode := func(*redistest.Server) bool { return true }

	// A replica that just started skips Redis for clients without failures
	// at once: its scan of every master found no counter, so there is no
	// minute of exact checks (the scan did not run on a cluster before).
	t.Run("no window of exact checks after start", func(t *testing.T) {
		mons := make([]*redisMonitor, len(c.Nodes))
		admins := make([]*redis.Client, len(c.Nodes))
		for i, n := range c.Nodes {
			mons[i], admins[i] = startMonitor(t, n), newRedisClient(t, n)
		}
		tok := a.Token(t, "-sub", "clean")
		client := ip(anyNode)
		poll.Until(t, 10*time.Second, "valid requests of a clean client cost no Redis command", func() error {
			for i := range mons {
				mons[i].Drain(t, admins[i])
			}
			for _, r := range s.reps {
				for range 5 {
					if code := statusOf(r.g.Addr, req("GET", "/api/x", bearer(tok), from(client))); code != http.StatusOK {
						return fmt.Errorf("replica %s: status %d", r.name, code)
					}
				}
			}
			for i := range mons {
				// Any command on a counter; the watch's own probes
				// (PUBLISH, on a channel named after its channel) are none.
				for _, l := range linesWith(mons[i].Drain(t, admins[i]), "authgateway:ratelimit:auth_failures:") {
					if !strings.Contains(l, `"publish"`) {
						return fmt.Errorf("master %s saw an auth-failure check: %s", c.Nodes[i].Addr(), l)
					}
				}
			}
			return nil
		})
	})
	t.Run("auth-failure limit shared exactly", func(t *testing.T) { s.failureLimitShared(t, ip(anyNode)) })
	t.Run("route quota exact across replicas under concurrency", func(t *testing.T) { s.quotaShared(t, "burst", ip(anyNode)) })
	t.Run("api key revoked on both replicas within a second", func(t *testing.T) { s.keyRevokedEverywhere(t, ip(anyNode)) })
	t.Run("logout and refresh reuse seen by both replicas", func(t *testing.T) { s.sessionsShared(t, ip(anyNode)) })
	t.Run("readyz ready", func(t *testing.T) {
		for _, r := range s.reps {
			if st := readyz(t, r.g); st.code != http.StatusOK || st.Status != "ready" {
				t.Errorf("replica %s /readyz = %d %+v, want 200 ready", r.name, st.code, st)
			}
		}
	})

	// The first 512 slots of the first master move to the second with
	// redis-cli --cluster reshard while both replicas serve: the api_key
	// namespace (keys and invalidation channel) and a quota counter move
	// with them. Nothing fails (go-redis follows MOVED and ASK), the quota
	// stays exact, keys made during the move work on both replicas, and a
	// revocation after it still reaches both.
	t.Run("slot migrated while requests run", func(t *testing.T) {
		from0, to := c.Nodes[0], c.Nodes[1]
		subject := ""
		for i := 0; subject == ""; i++ {
			if s := c.Slot(quotaKey("quota", fmt.Sprintf("mover%d", i))); s >= lo && s <= hi {
				subject = fmt.Sprintf("mover%d", i)
			}
		}
		tok := a.Token(t, "-sub", subject)
		client := ip(func(n *redistest.Server) bool { return n != from0 })
		done := make(chan struct{})
		var (
			mu      sync.Mutex
			codes   []int
			keyErrs []string
			made    []apiKey
		)
		var wg sync.WaitGroup
		var sent atomic.Int64
		for i := range 4 {
			wg.Go(func() {
				g := s.reps[i%2].g
				for {
					select {
					case <-done:
						if sent.Load() >= 60 {
							return
						}
					default:
					}
					code := statusOf(g.Addr, req("GET", "/quota/x", bearer(tok), from(client)))
					sent.Add(1)
					mu.Lock()
					codes = append(codes, code)
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		wg.Go(func() {
			// Keys made during the move, each looked up (not cached) on both.
			for {
				select {
				case <-done:
					return
				default:
				}
				res := runCLI(t, a.Dir, s.env, "keys", "create", "-name", "mover", "-config", a.ConfigPath)
				m := createdLine.FindStringSubmatch(res.Stdout)
				lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
				if res.Code != 0 || m == nil || !keyFormat.MatchString(lines[len(lines)-1]) {
					mu.Lock()
					keyErrs = append(keyErrs, fmt.Sprintf("keys create during the move: exit %d: %s", res.Code, res.Stderr))
					mu.Unlock()
					continue
				}
				k := apiKey{ID: m[1], Key: lines[len(lines)-1]}
				for _, r := range s.reps {
					if code := statusOf(r.g.Addr, req("GET", "/api/x", k.header(), from(client))); code != http.StatusOK {
						mu.Lock()
						keyErrs = append(keyErrs, fmt.Sprintf("key made during the move: replica %s status %d", r.name, code))
						mu.Unlock()
					}
				}
				mu.Lock()
				made = append(made, k)
				mu.Unlock()
			}
		})
		start := time.Now()
		c.Reshard(from0, to, moving)
		moved := time.Since(start)
		close(done)
		wg.Wait()
		t.Logf("reshard of %d slots took %v; %d quota requests and %d keys made meanwhile", moving, moved, len(codes), len(made))
		if n := c.NodeFor(apikey.RedisNamespace(keysName)); n != to {
			t.Fatalf("the api key namespace is on %s after the reshard, want %s", n.Addr(), to.Addr())
		}
		if n := c.NodeFor(quotaKey("quota", subject)); n != to {
			t.Fatalf("the quota counter is on %s after the reshard, want %s", n.Addr(), to.Addr())
		}
		for _, e := range keyErrs {
			t.Error(e)
		}
		wantQuota(t, codes, 40)
		// Every request counted once, none lost or counted twice by a
		// redirected retry.
		if n, err := s.rc.Get(ctx, quotaKey("quota", subject)).Int(); err != nil || n != len(codes) {
			t.Errorf("quota counter after the move = %d, %v; want %d, one per request", n, err, len(codes))
		}
		if len(made) == 0 {
			t.Fatal("no key was made during the move")
		}
		k := made[len(made)-1]
		s.revokedWithinASecond(t, k, req("GET", "/api/x", k.header(), from(client)))
	})

	// The master holding the api keys is killed: what lives there fails
	// closed on both replicas exactly as with a single Redis down (a key not
	// cached: 503; a quota with on_redis_error deny: 503, allow: served),
	// what lives elsewhere is served (sessions too: gateway tokens are
	// served after the denylist's grace period), nothing panics, /readyz
	// says degraded and names the api keys; the master comes back with its
	// data and service recovers by itself.
	t.Run("master killed and restarted", func(t *testing.T) {
		dead := c.NodeFor(apikey.RedisNamespace(keysName))
		if dead == c.NodeFor(session.DenyChannel) {
			t.Fatal("the api keys and the sessions share a master: the test cannot tell them apart")
		}
		key := createKey(t, a.ConfigPath, s.env, "-name", "survivor")
		client := ip(func(n *redistest.Server) bool { return n != dead })
		var onDead, onLive string
		for i := 0; onDead == "" || onLive == ""; i++ {
			sub := fmt.Sprintf("user%d", i)
			strict, lenient := c.NodeFor(quotaKey("strict", sub)), c.NodeFor(quotaKey("lenient", sub))
			switch {
			case strict == dead && lenient == dead && onDead == "":
				onDead = sub
			case strict != dead && lenient != dead && onLive == "":
				onLive = sub
			}
		}
		deadTok, liveTok := a.Token(t, "-sub", onDead), a.Token(t, "-sub", onLive)
		keyRaw := req("GET", "/api/x", key.header(), from(client))
		type check struct {
			what string
			raw  string
			want int
		}
		checks := []check{
			{"api key not cached, its master down", keyRaw, http.StatusServiceUnavailable},
			{"quota on the dead master, on_redis_error deny", req("GET", "/strict/x", bearer(deadTok), from(client)), http.StatusServiceUnavailable},
			{"quota on the dead master, on_redis_error allow", req("GET", "/lenient/x", bearer(deadTok), from(client)), http.StatusOK},
			{"quota on a live master, on_redis_error deny", req("GET", "/strict/x", bearer(liveTok), from(client)), http.StatusOK},
			{"gateway token, no quota", req("GET", "/api/x", bearer(liveTok), from(client)), http.StatusOK},
			{"public route", req("GET", "/public/x", from(client)), http.StatusOK},
		}
		run := func(checks []check) {
			t.Helper()
			for _, r := range s.reps {
				for _, tc := range checks {
					if code := statusOf(r.g.Addr, tc.raw); code != tc.want {
						t.Errorf("replica %s, %s: status %d, want %d", r.name, tc.what, code, tc.want)
					}
				}
			}
		}

		dead.Stop()
		t.Cleanup(func() {
			if !dead.Running() {
				dead.Restart()
			}
		})
		killed := time.Now()
		run(checks)
		for _, r := range s.reps {
			wantAlive(t, "replica "+r.name, r.g)
			st := readyz(t, r.g)
			if st.code != http.StatusOK || st.Status != "degraded" || !strings.Contains(st.Detail, dead.Addr()) ||
				!strings.Contains(st.Detail, "api keys of "+keysName) || strings.Contains(st.Detail, "sessions") {
				t.Errorf("replica %s /readyz with a master down = %d %+v; want 200 degraded naming %s and the api keys, not the sessions", r.name, st.code, st, dead.Addr())
			}
		}
		// Past the denylist's grace period (5s): a master without session
		// state down must not make the replicas' denylists stale.
		time.Sleep(time.Until(killed.Add(6 * time.Second)))
		run(checks[3:5])

		dead.Restart()
		c.WaitHealthy()
		for _, r := range s.reps {
			waitStatus(t, "api key after its master came back, replica "+r.name, r.g, keyRaw, http.StatusOK, 10*time.Second)
			poll.True(t, 10*time.Second, "replica "+r.name+" /readyz ready again", func() bool {
				st := readyz(t, r.g)
				return st.code == http.StatusOK && st.Status == "ready"
			})
			wantAlive(t, "replica "+r.name, r.g)
		}
		s.revokedWithinASecond(t, key, keyRaw)
	})
}

// wantQuota checks the statuses of requests against one quota of limit:
// exactly limit were served, every other one got 429, nothing else.
func wantQuota(t *testing.T, codes []int, limit int) {
	t.Helper()
	served := 0
	for _, code := range codes {
		switch code {
		case http.StatusOK:
			served++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a quota request got %d, want 200 or 429", code)
		}
	}
	if served != limit {
		t.Errorf("%d of %d requests served, want exactly %d", served, len(codes), limit)
	}
}

// readyzBody is /readyz's answer with its status code.
type readyzBody struct {
	code   int
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func readyz(t *testing.T, g *Gateway) readyzBody {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + g.AdminAddr + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var st readyzBody
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding /readyz: %v", err)
	}
	st.code = resp.StatusCode
	return st
}

// waitSubscribedOnMaster waits until both replicas' three subscriptions
// (api key evictions, session revocations, auth-failure notices) are on
// the master (Sentinel: the client follows the master).
func (s *sharedState) waitSubscribedOnMaster(t *testing.T) {
	t.Helper()
	for _, ch := range []string{apikey.RedisNamespace("apiKey") + "events", session.DenyChannel, "authgateway:ratelimit:auth_failures:events"} {
		took := poll.True(t, 15*time.Second, "both replicas subscribed to "+ch+" on the master", func() bool {
			return s.rc.PubSubNumSub(context.Background(), ch).Val()[ch] == 2
		})
		t.Logf("both replicas subscribed to %s on the master after %v", ch, took)
	}
}

// TestRedisSentinel runs two gateway replicas on a Sentinel-managed Redis
// (a master, its replica, three sentinels), URL redis+sentinel://. Every
// piece of shared state works as on one Redis, and keeps working through a
// failover an operator asks for and one after the master died (the
// replicas fail closed meanwhile), subscriptions included.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	sen := redistest.StartSentinel(t)
	s := startSharedState(t, sen.URL(), "apiKey")
	n := 0
	ip := func() string { n++; return fmt.Sprintf("203.0.113.%d", n) }

	t.Run("auth-failure limit shared exactly", func(t *testing.T) { s.failureLimitShared(t, ip()) })
	t.Run("route quota exact across replicas under concurrency", func(t *testing.T) { s.quotaShared(t, "burst", ip()) })
	t.Run("api key revoked on both replicas within a second", func(t *testing.T) { s.keyRevokedEverywhere(t, ip()) })
	t.Run("logout and refresh reuse seen by both replicas", func(t *testing.T) { s.sessionsShared(t, ip()) })

	// A failover an operator asks for (SENTINEL FAILOVER, before
	// maintenance): the replicas follow the new master by themselves.
	t.Run("failover asked by an operator", func(t *testing.T) {
		client := ip()
		strict := req("GET", "/strict/x", bearer(s.a.Token(t, "-sub", "switch")), from(client))
		promoted := sen.Failover()
		t.Logf("sentinels promoted %s", promoted.Addr())
		for _, r := range s.reps {
			waitStatus(t, "quota after the failover, replica "+r.name, r.g, strict, http.StatusOK, 10*time.Second)
			wantAlive(t, "replica "+r.name, r.g)
		}
		// go-redis leaves subscriptions on the demoted master, which hears
		// nothing the new one publishes: the gateway must move them itself.
		s.waitSubscribedOnMaster(t)
		s.keyRevokedEverywhere(t, client)
		s.sessionsShared(t, ip())
		s.failureLimitShared(t, ip())
	})

	// The master dies: the replicas fail closed until the sentinels
	// promote the replica, then carry on by themselves.
	t.Run("failover after the master died", func(t *testing.T) {
		// The demoted master of the failover before must be a replica in
		// sync first, or what the new one stored dies with it.
		sen.WaitReady()
		client := ip()
		key := createKey(t, s.a.ConfigPath, s.env, "-name", "before-failover")
		keyRaw := req("GET", "/api/x", key.header(), from(client))
		strict := req("GET", "/strict/x", bearer(s.a.Token(t, "-sub", "failover")), from(client))
		old := sen.Master()
		old.Stop()
		// Until a replica is promoted: fail closed, as with one Redis down.
		for _, r := range s.reps {
			if code := statusOf(r.g.Addr, strict); code != http.StatusServiceUnavailable {
				t.Errorf("replica %s, quota with on_redis_error deny, master down: status %d, want 503", r.name, code)
			}
			if code := statusOf(r.g.Addr, req("GET", "/public/x", from(client))); code != http.StatusOK {
				t.Errorf("replica %s, public route, master down: status %d, want 200", r.name, code)
			}
		}
		start := time.Now()
		promoted := sen.WaitFailover(old)
		t.Logf("sentinels promoted %s %v after the checks", promoted.Addr(), time.Since(start))
		for _, r := range s.reps {
			waitStatus(t, "quota after the failover, replica "+r.name, r.g, strict, http.StatusOK, 10*time.Second)
			waitStatus(t, "api key made before the failover, replica "+r.name, r.g, keyRaw, http.StatusOK, 10*time.Second)
			poll.True(t, 10*time.Second, "replica "+r.name+" /readyz ready again", func() bool {
				st := readyz(t, r.g)
				return st.code == http.StatusOK && st.Status == "ready"
			})
			wantAlive(t, "replica "+r.name, r.g)
		}
		s.waitSubscribedOnMaster(t)
		s.revokedWithinASecond(t, key, keyRaw)
		s.sessionsShared(t, ip())
		s.failureLimitShared(t, ip())
	})
}
