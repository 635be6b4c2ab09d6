package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// Attacks on the gateway's edges (security round two, findings 6, 9, 15,
// 17): the shipped nginx recipe, browser sessions posted from a sibling
// subdomain, a Redis outage, and the compose deployment. Each row is one
// attack on the real binary (and real nginx and redis-server), with the
// answer it must get; controls show what must keep working.

// edgeCSRFConfig: the gateway's own tokens, read from the session cookie
// __Host-authgw_access as well as from Authorization; one route with a CORS
// policy naming one origin.
const edgeCSRFConfig = userJWTConfig + `routes:
  - name: api
    path: /api
    upstream: UPSTREAM
    strategies: [userJwt]
  - name: app
    path: /app
    upstream: UPSTREAM
    strategies: [userJwt]
    cors: {allowed_origins: ["https://app.example.com"], allowed_methods: [GET, POST], allow_credentials: true}
rate_limits:
  auth_failures: {limit: 3, period: 1m}
`

// edgeSuite is the running setup of the edge rows.
type edgeSuite struct {
	csrf   *Gateway // session cookies (finding 9)
	csrfUp *Upstream
	reader string // rita's access token on csrf

	nginx       string // nginx's address, on the shipped config (finding 6)
	nginxGW     *Gateway
	app         *Upstream // behind nginx
	nginxReader string

	redis       *redistest.Server // finding 15
	deny, allow *Gateway          // auth_failures on_redis_error deny (default) / allow
	redisUp     *Upstream
	redisReader string
	redisEnv    map[string]string
	marker      string // what the deny gateway had logged before Redis went away
}

func startEdgeSuite(t *testing.T) *edgeSuite {
	t.Helper()
	s := &edgeSuite{}
	s.csrfUp = newUpstream(t, 0)
	s.csrf = startGateway(t, strings.ReplaceAll(edgeCSRFConfig, "UPSTREAM", s.csrfUp.URL), map[string]string{"ACCESS_SECRET": randomSecret(t)})
	s.reader = s.csrf.Token(t, "-sub", "rita", "-roles", "reader")

	s.nginxGW, _ = startForwardAuthGateway(t)
	s.app = newUpstream(t, 0)
	s.nginx = startNginx(t, s.nginxGW.Addr, strings.TrimPrefix(s.app.URL, "http://"))
	s.nginxReader = s.nginxGW.Token(t, "-sub", "alice", "-roles", "reader")

	s.redis = redistest.Start(t)
	s.redisUp = newUpstream(t, 0)
	s.redisEnv = map[string]string{"ACCESS_SECRET": randomSecret(t)}
	cfg := limitConfig{redisURL: s.redis.URL(), authFailures: "{limit: 100000, period: 1m}"}
	s.deny = startGateway(t, cfg.yaml(s.redisUp.URL), s.redisEnv)
	cfg.authFailures = "{limit: 100000, period: 1m, on_redis_error: allow}"
	s.allow = startGateway(t, cfg.yaml(s.redisUp.URL), s.redisEnv)
	s.redisReader = s.deny.Token(t, "-sub", "rita")
	return s
}

// edgeAttack is one row.
type edgeAttack struct {
	name string
	// raw is one request to gw, sent with an X-Request-Id and explained
	// just before; or attack sends the request(s), id being the
	// X-Request-Id to send, so the gateway's auth event can be found.
	raw    string
	attack func(t *testing.T, s *edgeSuite, id string) (*Response, error)
	// status is the wanted status; 0: not an HTTP exchange, the attack's
	// error must be nil.
	status int
	// msg is the gateway's JSON error message (status >= 400).
	msg string
	// resp are response headers: exact value, "*" any value, "" absent.
	resp map[string]string
	// gw and reason: the auth event of the request on gw must have reason.
	// gw is also where raw goes.
	gw     func(*edgeSuite) *Gateway
	reason string
	// up is the upstream that must have received nothing (want == nil) or
	// exactly one request, which check may inspect.
	up    func(*edgeSuite) *Upstream
	check func(t *testing.T, s *edgeSuite, r *Response, got []Seen)
}

// TestAttacksEdge runs the rows in order (the Redis rows stop Redis).
func TestAttacksEdge(t *testing.T) {
	t.Parallel()
	s := startEdgeSuite(t)
	csrf := func(s *edgeSuite) *Gateway { return s.csrf }
	csrfUp := func(s *edgeSuite) *Upstream { return s.csrfUp }
	app := func(s *edgeSuite) *Upstream { return s.app }
	redisUp := func(s *edgeSuite) *Upstream { return s.redisUp }
	deny := func(s *edgeSuite) *Gateway { return s.deny }
	post := func(path string, headers ...string) string {
		return req("POST", path, append(headers, "Content-Length: 0")...)
	}
	cookie := sessionCookie(s.reader)
	forwardedAs := func(sub string) func(*testing.T, *edgeSuite, *Response, []Seen) {
		return func(t *testing.T, _ *edgeSuite, _ *Response, got []Seen) {
			if g := got[0].Header.Get("X-Auth-Subject"); g != sub {
				t.Errorf("upstream X-Auth-Subject = %q, want %q", g, sub)
			}
		}
	}
	retrySoon := map[string]string{"Retry-After": "*"}

	tests := []edgeAttack{
		// 6. nginx forward auth: the client's X-Auth-* copies reached the
		// app, and /auth/verify never returned X-Auth-Token, so an
		// identity_token route behind nginx got only what the client sent.
		{name: "nginx: client X-Auth-Token, -User, -Groups, X-Auth-Request-User on an identity_token route",
			attack: func(t *testing.T, s *edgeSuite, _ string) (*Response, error) {
				return doRaw(s.nginx, req("GET", "/asserted/x", bearer(s.nginxReader), "X-Auth-Token: forged.by.client",
					"X-Auth-User: root", "X-Auth-Groups: admin", "X-Auth-Request-User: root", "x-auth-request-email: root@example.com"))
			},
			status: 200, up: app, check: func(t *testing.T, s *edgeSuite, _ *Response, got []Seen) {
				h := got[0].Header
				for _, name := range []string{"X-Auth-User", "X-Auth-Groups", "X-Auth-Request-User", "X-Auth-Request-Email"} {
					if v := h.Values(name); len(v) > 0 {
						t.Errorf("the app saw the client's %s: %q", name, v)
					}
				}
				if v := h.Values("X-Auth-Token"); len(v) != 1 {
					t.Fatalf("the app saw X-Auth-Token %q, want exactly the gateway's", v)
				}
				verifyAssertion(t, s.nginxGW, h.Get("X-Auth-Token"), "asserted", "alice")
			}},
		{name: "nginx: public route, client X-Auth-Token and X-Auth-Subject",
			attack: func(t *testing.T, s *edgeSuite, _ string) (*Response, error) {
				return doRaw(s.nginx, req("GET", "/public/x", "X-Auth-Token: forged.by.client", "X-Auth-Subject: root"))
			},
			status: 200, up: app, check: func(t *testing.T, _ *edgeSuite, _ *Response, got []Seen) {
				if a := authHeaders(got[0].Header); len(a) > 0 {
					t.Errorf("the app saw %q on a public route, want no X-Auth-* header", a)
				}
			}},

		// 9. A POST carrying only the session cookie, from a sibling
		// subdomain (SameSite=Strict calls it the same site), was forwarded.
		{name: "csrf: POST with only the session cookie from https://evil.example.com",
			raw:    post("/api/transfer", cookie, "Origin: https://evil.example.com"),
			status: 403, msg: "cross-origin request refused", gw: csrf, reason: "cross_origin_refused", up: csrfUp},
		{name: "csrf: the browser says Sec-Fetch-Site: same-site",
			raw:    post("/api/transfer", cookie, "Sec-Fetch-Site: same-site", "Origin: https://evil.example.com"),
			status: 403, msg: "cross-origin request refused", gw: csrf, reason: "cross_origin_refused", up: csrfUp},
		{name: "csrf: a CORS route, an origin it does not name",
			raw:    post("/app/items", cookie, "Sec-Fetch-Site: same-site", "Origin: https://evil.example.com"),
			status: 403, msg: "cross-origin request refused", gw: csrf, reason: "cross_origin_refused", up: csrfUp},
		{name: "csrf: refusals are not auth failures (limit 3, after 3 refusals)",
			raw: post("/api/transfer", bearer(s.reader)), status: 200, gw: csrf, up: csrfUp, check: forwardedAs("rita")},
		{name: "csrf control: same-origin POST",
			raw:    post("/api/transfer", cookie, "Sec-Fetch-Site: same-origin", "Origin: http://gateway.test"),
			status: 200, gw: csrf, up: csrfUp, check: forwardedAs("rita")},
		{name: "csrf control: same origin by Origin alone (no Sec-Fetch-Site)",
			raw:    post("/api/transfer", cookie, "Origin: http://gateway.test"),
			status: 200, gw: csrf, up: csrfUp, check: forwardedAs("rita")},
		{name: "csrf control: the origin the route's CORS names",
			raw:    post("/app/items", cookie, "Sec-Fetch-Site: cross-site", "Origin: https://app.example.com"),
			status: 200, resp: map[string]string{"Access-Control-Allow-Origin": "https://app.example.com"},
			gw: csrf, up: csrfUp, check: forwardedAs("rita")},
		{name: "csrf control: a bearer token from another origin",
			raw:    post("/api/transfer", bearer(s.reader), "Sec-Fetch-Site: cross-site", "Origin: https://evil.example.com"),
			status: 200, gw: csrf, up: csrfUp, check: forwardedAs("rita")},
		{name: "csrf control: GET with the session cookie from another origin",
			raw:    req("GET", "/api/x", cookie, "Sec-Fetch-Site: cross-site"),
			status: 200, gw: csrf, up: csrfUp, check: forwardedAs("rita")},

		// 15. With Redis down a valid token got 429 "too many failed
		// authentication attempts", and the log blamed a deadline.
		{name: "redis down: a valid token, auth_failures on_redis_error deny (default)",
			attack: stopRedisAndAsk, status: 503, msg: "authentication temporarily unavailable",
			resp: retrySoon, gw: deny, reason: "store_unavailable", up: redisUp,
			check: func(t *testing.T, _ *edgeSuite, r *Response, _ []Seen) { wantUnavailable(t, "valid token", r) }},
		{name: "redis down: no credentials either (the limit cannot be checked)",
			raw:    req("GET", "/api/x"),
			status: 503, msg: "authentication temporarily unavailable", resp: retrySoon, gw: deny, reason: "store_unavailable", up: redisUp},
		{name: "redis down: one log line names the outage, not one per request",
			attack: logsOneOutage},
		{name: "redis down control: on_redis_error allow judges the token",
			raw:    req("GET", "/api/x", bearer(s.redisReader)),
			status: 200, gw: func(s *edgeSuite) *Gateway { return s.allow }, up: redisUp, check: forwardedAs("rita")},
		{name: "redis down: a gateway started now warns at start and fails closed",
			attack: startWithRedisDown, status: 503, msg: "authentication temporarily unavailable", up: redisUp},

		// 17. Redis (no password, key hashes and revocations) shared a
		// network with the protected app.
		{name: "compose: the app reaches Redis, Redis answers without a password",
			attack: composeRedisIsolated},
	}

	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, u := range []*Upstream{s.csrfUp, s.app, s.redisUp} {
				u.Reset()
			}
			id := "edge-" + strconv.Itoa(i)
			var resp *Response
			var err error
			var ex explanation
			if tc.raw != "" {
				raw := withID(tc.raw, id)
				ex = tc.gw(s).explain(t, raw, "127.0.0.1")
				resp, err = doRaw(tc.gw(s).Addr, raw)
			} else {
				resp, err = tc.attack(t, s, id)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.status == 0 {
				return
			}
			if resp.Status != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", resp.Status, tc.status, truncate(resp.Body))
			}
			if tc.status >= 400 {
				if got := resp.ErrorMessage(t); got != tc.msg {
					t.Errorf("error = %q, want %q", got, tc.msg)
				}
			}
			for k, want := range tc.resp {
				if got := strings.Join(resp.Header.Values(k), ", "); !(want == "*" && got != "" || got == want) {
					t.Errorf("response %s = %q, want %q", k, got, want)
				}
			}
			if tc.reason != "" {
				if got := tc.gw(s).Event(t, id)["reason"]; got != tc.reason {
					t.Errorf("auth event reason = %v, want %q", got, tc.reason)
				}
			}
			if tc.raw != "" {
				explainAgrees(t, tc.gw(s), ex, id, resp)
			}
			var got []Seen
			if tc.up != nil {
				up := tc.up(s)
				if tc.status >= 400 {
					up.WantNothing(t)
				} else {
					got = []Seen{up.One(t)}
				}
			}
			if tc.check != nil && !t.Failed() {
				tc.check(t, s, resp, got)
			}
		})
	}
}

// stopRedisAndAsk stops Redis under the running gateways, waits until the
// deny gateway has noticed (its auth-failure watch hears of the outage
// through its pub/sub connection, at once but asynchronously; until then a
// client without failures is rightly admitted), and asks it with a valid
// token.
func stopRedisAndAsk(t *testing.T, s *edgeSuite, id string) (*Response, error) {
	s.marker = s.deny.Stdout()
	s.redis.Stop()
	raw := req("GET", "/api/x", bearer(s.redisReader))
	if _, err := poll.Wait(10*time.Second, func() error {
		if statusOf(s.deny.Addr, raw) == http.StatusOK {
			return errors.New("still admitted")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("the deny gateway after Redis went away: %w", err)
	}
	s.redisUp.Reset()
	return doRaw(s.deny.Addr, req("GET", "/api/x", bearer(s.redisReader), "X-Request-Id: "+id))
}

// logsOneOutage sends 20 more requests to the deny gateway and reads what
// it logged since Redis stopped: one line naming the store outage (not a
// lockout), however many requests were refused.
func logsOneOutage(t *testing.T, s *edgeSuite, _ string) (*Response, error) {
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("outage-log-%d", i)
		ids = append(ids, `"request_id":"`+id+`"`)
		if r, err := doRaw(s.deny.Addr, req("GET", "/api/x", bearer(s.redisReader), "X-Request-Id: "+id)); err != nil || r.Status != http.StatusServiceUnavailable {
			return nil, fmt.Errorf("request %d with Redis down: %v %v, want 503", i, r, err)
		}
	}
	// The auth events of those requests are written after their answers,
	// and the log is written out every 100 ms: wait for all of them.
	var logged string
	if _, err := poll.Wait(5*time.Second, func() error {
		logged = strings.TrimPrefix(s.deny.Stdout(), s.marker)
		for _, id := range ids {
			if !slices.ContainsFunc(strings.Split(logged, "\n"), func(line string) bool {
				return strings.Contains(line, `"msg":"auth"`) && strings.Contains(line, id)
			}) {
				return fmt.Errorf("no auth event with %s in the log", id)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var outage []string
	for _, line := range strings.Split(logged, "\n") {
		if strings.Contains(line, `"msg":"rate limit store`) {
			outage = append(outage, line)
		}
		if strings.Contains(line, "too many failed") || strings.Contains(line, `"outcome":"rate_limited"`) {
			return nil, fmt.Errorf("logged as a lockout: %s", line)
		}
	}
	if len(outage) != 1 || !strings.Contains(outage[0], "rate limit store outage: Redis is not answering") {
		return nil, fmt.Errorf("%d rate-limit store lines for 20+ refused requests, want one naming the outage:\n%s",
			len(outage), strings.Join(outage, "\n"))
	}
	t.Logf("the outage line: %s", outage[0])
	return nil, nil
}

// startWithRedisDown starts another gateway on the Redis that is now down:
// it starts (and says Redis does not answer), and refuses as an outage.
func startWithRedisDown(t *testing.T, s *edgeSuite, _ string) (*Response, error) {
	cfg := limitConfig{redisURL: s.redis.URL(), authFailures: "{limit: 100000, period: 1m}"}
	g := startGateway(t, cfg.yaml(s.redisUp.URL), s.redisEnv)
	if _, err := poll.Wait(5*time.Second, func() error {
		if !strings.Contains(g.Stdout(), "redis unreachable at start") {
			return errors.New("no start-up warning that Redis does not answer")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return doRaw(g.Addr, req("GET", "/api/x", bearer(s.redisReader)))
}

// composeRedisIsolated checks docker-compose.yml as docker would run it,
// without docker: the app shares no network with Redis; Redis, started with
// the compose command on the secrets `make compose-secrets` writes, refuses
// a client without the password (anyone who reached it); the compose
// healthcheck passes; and the gateway, on the compose config and secrets,
// is ready and verifies a token.
func composeRedisIsolated(t *testing.T, _ *edgeSuite, _ string) (*Response, error) {
	c := readCompose(t)
	rsvc, gsvc, appSvc := c.Services["redis"], c.Services["gateway"], c.Services["app"]
	for _, n := range appSvc.networks(t) {
		if slices.Contains(rsvc.networks(t), n) {
			return nil, fmt.Errorf("the app and Redis share network %q", n)
		}
	}
	secrets := composeSecrets(t, c)
	args := slices.Clone(rsvc.Command)
	if len(args) == 0 || args[0] != "redis-server" {
		return nil, fmt.Errorf("redis command %q does not run redis-server", args)
	}
	for i, a := range args {
		if name, ok := strings.CutPrefix(a, "/run/secrets/"); ok {
			args[i] = secrets[name]
		}
	}
	rs := redistest.StartWith(t, args[1:]...)
	anon := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1})
	defer anon.Close()
	if err := anon.Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		return nil, fmt.Errorf("a client without the password: PING answered %v, want NOAUTH", err)
	}

	// The healthcheck, as compose runs it ($$ is compose's escaped $), on
	// the test's port and secret files.
	hc := rsvc.Healthcheck.Test
	if len(hc) != 2 || hc[0] != "CMD-SHELL" {
		return nil, fmt.Errorf("redis healthcheck %q, want [CMD-SHELL script]", hc)
	}
	script := strings.ReplaceAll(hc[1], "$$", "$")
	script = strings.ReplaceAll(script, "redis-cli ", "redis-cli -p "+strconv.Itoa(rs.Port)+" ")
	for name, f := range secrets {
		script = strings.ReplaceAll(script, "/run/secrets/"+name, f)
	}
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the compose healthcheck fails on Redis started as compose starts it: %v\n%s", err, out)
	}

	// The gateway on the compose config, with "redis" resolved to the test's
	// server.
	env := composeEnv(t, gsvc, secrets)
	u, err := url.Parse(readFileTrim(t, env["REDIS_URL_FILE"]))
	if err != nil {
		return nil, err
	}
	u.Host = rs.Addr()
	env["REDIS_URL_FILE"] = filepath.Join(t.TempDir(), "redis-url")
	if err := os.WriteFile(env["REDIS_URL_FILE"], []byte(u.String()+"\n"), 0o600); err != nil {
		return nil, err
	}
	_, mountDir := composeGateway(t, c)
	cfg, err := os.ReadFile(filepath.Join(mountDir, "gateway.yaml"))
	if err != nil {
		return nil, err
	}
	g := startGateway(t, string(cfg), env)
	if code := adminStatus(g, "/readyz"); code != http.StatusOK {
		return nil, fmt.Errorf("the compose gateway's /readyz = %d, want 200 (Redis with the password from the secret)", code)
	}
	// Judged (the auth-failure check asks Redis first), and refused for
	// its role: the app (http://app:9000) does not exist here.
	if r, err := doRaw(g.Addr, req("GET", "/api/admin/x", bearer(g.Token(t, "-sub", "alice")))); err != nil || r.Status != http.StatusForbidden {
		return nil, fmt.Errorf("a reader's token on the compose gateway's admin route: %v %v, want 403", r, err)
	}
	return nil, nil
}
