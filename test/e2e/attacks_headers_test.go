package e2e

import (
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"testing"
)

// hdrAtkConfig puts framework models (model_frameworks_test.go) behind the
// gateway: a Flask app behind ProxyFix, an app with method overrides on a
// route limited to GET and POST, a legacy app that trusts identity and path
// headers on a protected and a public route, and a route that lists TRACE.
const hdrAtkConfig = "\n" + userJWTConfig + `routes:
  - name: flask
    path: /flask
    upstream: PROXYFIX_UPSTREAM
    public: true
  - name: express
    path: /express
    upstream: OVERRIDE_UPSTREAM
    public: true
    methods: [GET, POST]
  - name: legacy
    path: /legacy
    upstream: LEGACY_UPSTREAM
    strategies: [userJwt]
  - name: legacy-open
    path: /open
    upstream: LEGACY_UPSTREAM
    public: true
  - name: diag
    path: /diag
    upstream: PROXYFIX_UPSTREAM
    public: true
    methods: [GET, TRACE]
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`

// hdrAttack is one row: a request, and what the framework model behind the
// gateway must have concluded from what it received.
type hdrAttack struct {
	name    string
	finding int // the finding of issue 14 this row proves
	raw     string
	status  int
	allow   string // the Allow header of a 405
	// model is the upstream that must receive the one request ("" = no
	// upstream receives anything).
	model string
	// concluded is exactly what the model concluded.
	concluded map[string]string
	// environ holds the HTTP_* environ keys the upstream must get besides
	// the gateway's own forwarding headers: together they are exactly every
	// header it received, however spelt ("*" = any value).
	environ map[string]string
}

// TestHeaderAttacks attacks the gateway's header handling with requests that
// real frameworks would have misread (issue 14, findings 2, 3, 8, 13, 14):
// method overrides, "_" spellings of forwarding headers, address, scheme
// and host headers, h2c upgrades and TRACE, identity and path headers.
func TestHeaderAttacks(t *testing.T) {
	t.Parallel()
	models := map[string]*modelUpstream{
		"proxyfix": newModelUpstream(t, proxyFixModel),
		"override": newModelUpstream(t, methodOverrideModel),
		"legacy":   newModelUpstream(t, legacyModel),
	}
	g := startGateway(t, strings.NewReplacer(
		"PROXYFIX_UPSTREAM", models["proxyfix"].URL,
		"OVERRIDE_UPSTREAM", models["override"].URL,
		"LEGACY_UPSTREAM", models["legacy"].URL,
	).Replace(hdrAtkConfig), map[string]string{"ACCESS_SECRET": randomSecret(t)})
	reader := g.Token(t, "-sub", "rita", "-roles", "reader")

	// What Flask behind ProxyFix must conclude: the real peer, the
	// client's Host, plain http, no prefix.
	real := map[string]string{"remote_addr": "127.0.0.1", "scheme": "http", "host": "gateway.test", "script_name": ""}
	post := func(target string, headers ...string) string {
		return req("POST", target, append([]string{"Content-Length: 0"}, headers...)...)
	}
	anonymous := func(path string) map[string]string {
		return map[string]string{"user": "", "groups": "", "path": path, "prefix": ""}
	}
	rita := map[string]string{"HTTP_X_AUTH_SUBJECT": "rita", "HTTP_X_AUTH_ROLES": "reader", "HTTP_X_AUTH_STRATEGY": "userJwt"}
	identityHeaders := []string{"Remote-User: admin", "X-Remote-User: admin", "X-WEBAUTH-USER: admin",
		"X-Forwarded-User: admin", "X-Forwarded-Email: admin@example.com", "X-Forwarded-Preferred-Username: admin",
		"X-Forwarded-Groups: admins", "X-Forwarded-Access-Token: forged", "X-Auth-Request-User: admin",
		"X-Auth-Request-Groups: admins", "X-Auth-Request-Email: admin@example.com"}
	pathHeaders := []string{"X-Original-URL: /admin/delete-all", "X-Rewrite-URL: /admin/delete-all",
		"X-Original-URI: /admin/delete-all", "X-Forwarded-Uri: /admin/delete-all", "X-Forwarded-Path: /admin",
		"X-Envoy-Original-Path: /admin", "X-Forwarded-Prefix: /evil"}
	h2cSettings := "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"

	tests := []hdrAttack{
		// Finding 2: override headers would run another handler than the
		// route's methods allow.
		{name: "method override: POST with X-HTTP-Method-Override: DELETE on a [GET, POST] route", finding: 2,
			raw: post("/express/items/7", "X-HTTP-Method-Override: DELETE"), status: 200,
			model: "override", concluded: map[string]string{"express": "POST", "rack": "POST"}},
		{name: "method override: X-HTTP-Method and X-Method-Override", finding: 2,
			raw: post("/express/items/7", "X-HTTP-Method: DELETE", "X-Method-Override: PUT"), status: 200,
			model: "override", concluded: map[string]string{"express": "POST", "rack": "POST"}},
		{name: "method override: _ and case spellings (Rack reads HTTP_X_HTTP_METHOD_OVERRIDE)", finding: 2,
			raw: post("/express/items/7", "X_HTTP_Method_Override: DELETE", "x_http_method: DELETE", "X_METHOD_OVERRIDE: PUT"), status: 200,
			model: "override", concluded: map[string]string{"express": "POST", "rack": "POST"}},
		{name: "method override: ?_method=DELETE names a method outside the route's", finding: 2,
			raw: post("/express/items/7?_method=DELETE"), status: 405, allow: "GET, POST, HEAD"},
		{name: "method override: ?%5Fmethod=delete, escaped and lower case", finding: 2,
			raw: post("/express/items/7?a=1&%5Fmethod=delete"), status: 405, allow: "GET, POST, HEAD"},
		{name: "method override: ?_method=POST names the request's own method (control)", finding: 2,
			raw: post("/express/items/7?_method=POST"), status: 200,
			model: "override", concluded: map[string]string{"express": "POST", "rack": "POST"}},

		// Finding 3: "_" spellings of the headers the gateway sets, which
		// wsgiref joins after the gateway's own values.
		{name: "forwarding: X_Forwarded_For, X_Forwarded_Host, X_Forwarded_Proto, X_Real_IP", finding: 3,
			raw: req("GET", "/flask/reset-password", "X_Forwarded_For: 6.6.6.6", "X_Forwarded_Host: evil.example",
				"X_Forwarded_Proto: https", "X_Real_IP: 6.6.6.6", "x_forwarded_for: 6.6.6.7", "X_REQUEST_ID: forged"), status: 200,
			model: "proxyfix", concluded: real},

		// Finding 8: more address, scheme and host headers.
		{name: "forwarding: port, scheme, ssl, host and client-certificate headers", finding: 8,
			raw: req("GET", "/flask/reset-password", "Client-IP: 6.6.6.6", "X-ProxyUser-Ip: 6.6.6.6", "X-Forwarded-Port: 8443",
				"X-Forwarded-Scheme: https", "X-Forwarded-Ssl: on", "Front-End-Https: on", "X-Url-Scheme: https",
				"X-Original-Host: evil.example", "X-Host: evil.example", "X-Forwarded-Server: evil.example",
				"X-Forwarded-Client-Cert: Hash=00;Subject=\"CN=admin\"", "X-SSL-Client-Verify: SUCCESS", "X-SSL-Client-S-DN: CN=admin",
				"X-Client-Cert: forged", "X-Client-Certificate: forged", "True_Client_IP: 6.6.6.6", "CF_Connecting_IP: 6.6.6.6",
				"X_Forwarded_Port: 8443"), status: 200,
			model: "proxyfix", concluded: real},

		// Finding 13: h2c upgrades and TRACE/TRACK/CONNECT.
		{name: "h2c: Upgrade: h2c with HTTP2-Settings named in Connection", finding: 13,
			raw: req("GET", "/flask/x", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", h2cSettings), status: 200,
			model: "proxyfix", concluded: real},
		{name: "h2c: HTTP2-Settings not named in Connection, Upgrade: H2C", finding: 13,
			raw: req("GET", "/flask/x", "Connection: Upgrade", "Upgrade: H2C", h2cSettings, "HTTP2_Settings: AAMAAABkAARAAAAAAAIAAAAA"), status: 200,
			model: "proxyfix", concluded: real},
		{name: "h2c: dropped from a list, the WebSocket upgrade kept", finding: 13,
			raw: req("GET", "/flask/x", "Connection: Upgrade, HTTP2-Settings", "Upgrade: websocket, h2c", h2cSettings), status: 200,
			model: "proxyfix", concluded: real, environ: map[string]string{"HTTP_CONNECTION": "Upgrade", "HTTP_UPGRADE": "websocket"}},
		{name: "trace: TRACE on a route without methods", finding: 13, raw: req("TRACE", "/flask/x"), status: 405,
			allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "trace: TRACK", finding: 13, raw: req("TRACK", "/flask/x"), status: 405, allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "trace: lower-case trace", finding: 13, raw: req("trace", "/flask/x"), status: 405, allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "trace: CONNECT with a path", finding: 13, raw: req("CONNECT", "/flask/x"), status: 405, allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "trace: CONNECT to an authority has no path to route (control, 400 before too)", finding: 13, raw: req("CONNECT", "gateway.test:443"), status: 400},
		{name: "trace: TRACE on a route that lists it (control)", finding: 13, raw: req("TRACE", "/diag/x"), status: 200,
			model: "proxyfix", concluded: real},

		// Finding 14: identity and path headers that frameworks and legacy
		// apps trust, on a protected and a public route.
		{name: "identity: Remote-User and friends on a protected route", finding: 14,
			raw: req("GET", "/legacy/profile", append([]string{bearer(reader)}, identityHeaders...)...), status: 200,
			model: "legacy", concluded: anonymous("/legacy/profile"), environ: rita},
		{name: "identity: Remote-User and friends on a public route", finding: 14,
			raw: req("GET", "/open/profile", identityHeaders...), status: 200,
			model: "legacy", concluded: anonymous("/open/profile")},
		{name: "identity: _ and case spellings", finding: 14,
			raw: req("GET", "/open/profile", "Remote_User: admin", "X_WEBAUTH_USER: admin", "x_forwarded_user: admin", "X_Original_URL: /admin"), status: 200,
			model: "legacy", concluded: anonymous("/open/profile")},
		{name: "path: X-Original-URL, X-Rewrite-URL, X-Forwarded-Uri/-Path/-Prefix, X-Envoy-Original-Path", finding: 14,
			raw: req("GET", "/legacy/home", append([]string{bearer(reader)}, pathHeaders...)...), status: 200,
			model: "legacy", concluded: anonymous("/legacy/home"), environ: rita},
	}

	for i, tc := range tests {
		t.Run("finding "+strconv.Itoa(tc.finding)+": "+tc.name, func(t *testing.T) {
			for _, m := range models {
				m.Reset()
			}
			id := "hdr-" + strconv.Itoa(i)
			raw := withID(tc.raw, id)
			ex := g.explain(t, raw, "127.0.0.1")
			resp := g.Do(t, raw)
			if resp.Status != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", resp.Status, tc.status, truncate(resp.Body))
			}
			explainAgrees(t, g, ex, id, resp)
			if tc.status >= 400 {
				resp.ErrorMessage(t)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			for name, m := range models {
				got := m.Requests()
				want := 0
				if name == tc.model {
					want = 1
				}
				if len(got) != want {
					t.Errorf("the %s model received %d requests, want %d", name, len(got), want)
				}
			}
			if tc.model == "" || t.Failed() {
				return
			}
			var ans modelAnswer
			if err := json.Unmarshal(resp.Body, &ans); err != nil {
				t.Fatalf("decoding the model's answer %q: %v", truncate(resp.Body), err)
			}
			if !maps.Equal(ans.Concluded, tc.concluded) {
				t.Errorf("the %s model concluded %v, want %v", tc.model, ans.Concluded, tc.concluded)
			}
			want := map[string]string{"HTTP_HOST": "*", "HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_X_FORWARDED_HOST": "gateway.test",
				"HTTP_X_FORWARDED_PROTO": "http", "HTTP_X_REAL_IP": "127.0.0.1", "HTTP_X_REQUEST_ID": id}
			maps.Copy(want, tc.environ)
			got := httpEnviron(ans.Fields)
			for k, v := range got {
				if w, ok := want[k]; !ok {
					t.Errorf("upstream received %s = %q, want no such header", k, v)
				} else if w != "*" && w != v {
					t.Errorf("upstream %s = %q, want %q", k, v, w)
				}
			}
			for k := range want {
				if _, ok := got[k]; !ok {
					t.Errorf("upstream did not receive %s", k)
				}
			}
			if t.Failed() {
				t.Logf("fields the upstream received: %q", ans.Fields)
			}
		})
	}
}
