package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// explanation is what `authgateway explain -json` prints, in the parts the
// agreement checks read.
type explanation struct {
	Status          int               `json:"status"`
	Outcome         string            `json:"outcome"`
	Reason          string            `json:"reason"`
	Decision        string            `json:"decision"`
	UpstreamURL     string            `json:"upstream_url"`
	ResponseHeaders map[string]string `json:"response_headers"`
}

// explain runs `authgateway explain -json` on g's config for the request raw
// (exactly as written to the wire: method, request-target, every header as
// net/http reads them, Host and Content-Length included) coming from peer.
func (g *Gateway) explain(t *testing.T, raw, peer string) explanation {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("reading the request to explain: %v", err)
	}
	args := []string{"explain", "-config", g.ConfigPath, "-json", "-ip", peer, r.Method, r.RequestURI, "-H", "Host: " + r.Host}
	for name, vals := range r.Header {
		for _, v := range vals {
			args = append(args, "-H", name+": "+v)
		}
	}
	if len(r.TransferEncoding) > 0 { // net/http moves it out of the header map
		args = append(args, "-H", "Transfer-Encoding: "+strings.Join(r.TransferEncoding, ", "))
	}
	res := g.CLI(t, args...)
	var ex explanation
	if err := json.Unmarshal([]byte(res.Stdout), &ex); res.Code != 0 || err != nil {
		t.Fatalf("explain: exit %d (%v)\n%s%s", res.Code, err, res.Stdout, res.Stderr)
	}
	return ex
}

// explainAgrees checks that explain, run on a request just before g got it
// with X-Request-Id id, decided as g did when it answered resp: the same
// status, outcome and reason as g's auth event (and Location); for a
// request g forwarded, forwarding with the same outcome; for one of g's
// endpoints, the endpoint. It does not compare an answer that depends on
// what g counted in its own memory (auth failures, route quotas without
// Redis): another process cannot know that, and the row says so in the log.
func explainAgrees(t *testing.T, g *Gateway, ex explanation, id string, resp *Response) {
	t.Helper()
	if ex.Outcome == "" {
		// The listener's own rules (https_only) answered: no auth event.
		if ex.Status != resp.Status {
			t.Errorf("explain: %d (%s); the gateway answered %d", ex.Status, ex.Decision, resp.Status)
		}
		return
	}
	ev := g.Event(t, id)
	outcome, _ := ev["outcome"].(string)
	reason, _ := ev["reason"].(string)
	if (reason == "auth_failures" || reason == "route_quota") && !g.sharesState(t) {
		t.Logf("explain not compared: the gateway's %s answer (%s) depends on what it counted in its own memory", reason, outcome)
		return
	}
	agree := false
	switch outcome {
	case "allowed", "public": // forwarded: the status is the upstream's
		agree = ex.Status == http.StatusOK && ex.UpstreamURL != "" && ex.Outcome == outcome
	case "endpoint": // the endpoint answered
		agree = ex.Outcome == outcome && ex.Status == 0
	default:
		agree = ex.Status == resp.Status && ex.Outcome == outcome && ex.Reason == reason
	}
	if !agree {
		t.Errorf("explain: %d %s %s (%s); the gateway: %d %s %s", ex.Status, ex.Outcome, ex.Reason, ex.Decision, resp.Status, outcome, reason)
	}
	if loc := resp.Header.Get("Location"); loc != "" && ex.ResponseHeaders["Location"] != loc {
		t.Errorf("explain: Location %q; the gateway's %q", ex.ResponseHeaders["Location"], loc)
	}
}

// sharesState reports whether g keeps its counters in Redis, where another
// process (explain) can read them.
func (g *Gateway) sharesState(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile(g.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Redis struct {
			URL string `yaml:"url"`
		} `yaml:"redis"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Redis.URL != ""
}

// withID adds an X-Request-Id header to a raw request, after its request line.
func withID(raw, id string) string {
	line, rest, _ := strings.Cut(raw, "\r\n")
	return line + "\r\nX-Request-Id: " + id + "\r\n" + rest
}

// explainAtkConfig: browser sessions with login (an oauth2 strategy with
// login: true, whose provider these rows never reach) on a CORS route, a
// route quota and the auth-failure limit in Redis, which explain reads too.
const explainAtkConfig = `
redis:
  url: REDIS_URL
` + userJWTConfig + `  sso:
    type: oauth2
    issuer_url: http://127.0.0.1:1
    client_id: gateway
    client_secret: ${SSO_SECRET}
    redirect_url: http://gateway.test/auth/callback
    login: true
routes:
  - name: app
    path: /app
    upstream: UPSTREAM
    strategies: [userJwt, sso]
    cors: {allowed_origins: ["https://app.example.com"], allowed_methods: [GET, POST], allowed_headers: [Authorization], allow_credentials: true}
  - name: quota
    path: /quota
    upstream: UPSTREAM
    strategies: [userJwt]
    rate_limit: {limit: 1, period: 1m, by: ip}
  - name: api
    path: /api
    upstream: UPSTREAM
    strategies: [userJwt]
  - name: public
    path: /public
    upstream: UPSTREAM
    public: true
rate_limits:
  auth_failures: {limit: 2, period: 1m}
`

// TestExplainAttacks: explain shows what the gateway does (issue 15). Each
// row is explained first and then sent to the running gateway, which must
// answer as explain said; explain itself changes nothing (the quota row
// would be 429 and the failure rows would trip the limit early if it
// counted). Before decide was shared, explain said 401 for a navigation
// with an expired session (the gateway: 302 to login), and 401 or 200
// where the gateway answered a preflight, the quota or the failure limit.
func TestExplainAttacks(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, 0)
	secret := randomSecret(t)
	g := startGateway(t, strings.NewReplacer("REDIS_URL", rs.URL(), "UPSTREAM", up.URL).Replace(explainAtkConfig),
		map[string]string{"ACCESS_SECRET": secret, "SSO_SECRET": randomSecret(t)})
	valid := g.Token(t, "-sub", "rita", "-roles", "reader")
	now := time.Now().Unix()
	expired := sign(t, jwt.SigningMethodHS256, []byte(secret), header("HS256", testKid),
		with(accessClaims("rita", "reader"), "iat", now-900, "nbf", now-900, "exp", now-300))
	nav := []string{"Accept: text/html,application/xhtml+xml", "Sec-Fetch-Mode: navigate", "Sec-Fetch-Site: none"}
	preflight := func(origin string) string {
		return req("OPTIONS", "/app/items", "Origin: "+origin, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization")
	}

	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{"navigation without a session: login", req("GET", "/app/page?tab=2", nav...), 302},
		{"navigation with an expired session: login", req("GET", "/app/page", append(nav, sessionCookie(expired))...), 302},
		{"fetch with an expired session: 401 (failure 1)", req("GET", "/app/page", sessionCookie(expired), "Accept: application/json"), 401},
		{"CORS preflight from the allowed origin", preflight("https://app.example.com"), 204},
		{"CORS preflight from another origin", preflight("https://evil.example"), 403},
		{"session cookie POSTed from another origin", req("POST", "/app/items", sessionCookie(valid), "Origin: https://evil.example",
			"Sec-Fetch-Site: cross-site", "Content-Length: 0"), 403},
		{"session from the allowed origin", req("GET", "/app/items", sessionCookie(valid), "Origin: https://app.example.com"), 200},
		{"quota: the one request of the window", req("GET", "/quota/x", bearer(valid)), 200},
		{"quota: spent", req("GET", "/quota/x", bearer(valid)), 429},
		{"invalid token: 401 (failure 2)", req("GET", "/api/x", bearer(tamper(valid))), 401},
		{"valid token over the failure limit", req("GET", "/api/x", bearer(valid)), 429},
		{"navigation over the failure limit", req("GET", "/app/page", nav...), 429},
		{"public route over the failure limit", req("GET", "/public/x"), 200},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := "explain-" + strconv.Itoa(i)
			raw := withID(tc.raw, id)
			ex := g.explain(t, raw, "127.0.0.1")
			resp := g.Do(t, raw)
			if resp.Status != tc.status {
				t.Fatalf("gateway: status %d, want %d (body %q); explain said %d (%s)", resp.Status, tc.status, truncate(resp.Body), ex.Status, ex.Decision)
			}
			explainAgrees(t, g, ex, id, resp)
		})
	}
}
