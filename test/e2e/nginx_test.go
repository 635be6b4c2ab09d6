package e2e

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// nginxConfPath is the forward-auth config the README prints; the test runs
// nginx on it with only the addresses changed.
var nginxConfPath = filepath.Join("..", "..", "deploy", "nginx", "authgateway.conf")

// forwardAuthConfig is the gateway behind a proxy: loopback trusted as the
// proxy; an RS256 key signs (the token command's tokens, and X-Auth-Token
// assertions) beside an HS256 one; an admin route under an authenticated
// API, a GET-only route, a route with identity_token, a public route. The
// gateway's own upstream is UPSTREAM; in forward-auth mode it must never be
// called.
const forwardAuthConfig = `server:
  trusted_proxies: [127.0.0.1/32]
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  access_ttl: 15m
  signing_keys:
    - {kid: rs-1, algorithm: RS256, private_key_file: RS_PEM}
    - {kid: hs-1, algorithm: HS256, secret: "${ACCESS_SECRET}"}
strategies:
  userJwt:
    type: jwt
    issuer: e2e.issuer
    audience: e2e.audience
    algorithms: [RS256, HS256]
    keys: tokens
routes:
  - name: readonly
    path: /ro
    methods: [GET]
    upstream: UPSTREAM
    strategies: [userJwt]
  - name: admin
    path: /api/admin
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [admin]
  - name: api
    path: /api
    upstream: UPSTREAM
    strategies: [userJwt]
  - name: asserted
    path: /asserted
    upstream: UPSTREAM
    strategies: [userJwt]
    identity_token: true
  - name: public
    path: /public
    upstream: UPSTREAM
    public: true
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`

func startForwardAuthGateway(t *testing.T) (*Gateway, *Upstream) {
	t.Helper()
	gwUp := newUpstream(t, 0)
	cfg := strings.NewReplacer(
		"RS_PEM", writePrivatePEM(t, t.TempDir(), "rs-1.pem", testRSAKeys(t)[0]),
		"UPSTREAM", gwUp.URL,
	).Replace(forwardAuthConfig)
	g := startGateway(t, cfg, map[string]string{"ACCESS_SECRET": randomSecret(t)})
	return g, gwUp
}

// nginxBinary finds nginx, or skips the test unless AUTHGATEWAY_REQUIRE_NGINX=1.
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx", "nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("AUTHGATEWAY_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx not found and AUTHGATEWAY_REQUIRE_NGINX=1 (apt-get install -y nginx)")
	}
	t.Skip("nginx not found (apt-get install -y nginx); set AUTHGATEWAY_REQUIRE_NGINX=1 to fail instead")
	return ""
}

// headersMoreModule is the path of nginx's headers-more module, which the
// shipped config needs, found in the modules directory nginx was built
// with; it skips the test without it unless AUTHGATEWAY_REQUIRE_NGINX=1.
func headersMoreModule(t *testing.T, bin string) string {
	t.Helper()
	out, _ := exec.Command(bin, "-V").CombinedOutput()
	dir := "/usr/lib/nginx/modules"
	if _, rest, ok := strings.Cut(string(out), "--modules-path="); ok {
		dir = strings.Fields(rest)[0]
	}
	p := filepath.Join(dir, "ngx_http_headers_more_filter_module.so")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	msg := "nginx's headers-more module is missing (" + p + "): apt-get install -y libnginx-mod-http-headers-more-filter"
	if os.Getenv("AUTHGATEWAY_REQUIRE_NGINX") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startNginx runs nginx in the foreground on deploy/nginx/authgateway.conf,
// pointed at the gateway and the app, with everything it writes (pid, logs,
// temp files) in a temp prefix. It returns nginx's listen address.
func startNginx(t *testing.T, gatewayAddr, appAddr string) string {
	t.Helper()
	return startNginxEdited(t, gatewayAddr, appAddr, nil)
}

// startNginxEdited is startNginx on the config as edit changes it (after
// the addresses are pointed at the test's servers).
func startNginxEdited(t *testing.T, gatewayAddr, appAddr string, edit func(site string) string) string {
	t.Helper()
	bin := nginxBinary(t)
	conf, err := os.ReadFile(nginxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	site := string(conf)
	for _, r := range [][2]string{
		{"server 127.0.0.1:8080;", "server " + gatewayAddr + ";"},
		{"server 127.0.0.1:9000;", "server " + appAddr + ";"},
		{"listen 80;", "listen " + addr + ";"},
	} {
		if strings.Count(site, r[0]) != 1 {
			t.Fatalf("%s: want exactly one %q to point at the test's servers", nginxConfPath, r[0])
		}
		site = strings.Replace(site, r[0], r[1], 1)
	}
	if edit != nil {
		site = edit(site)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authgateway.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	var main strings.Builder
	if os.Geteuid() == 0 {
		// The workers would switch to an unprivileged user that cannot
		// enter the test's private temp directory.
		main.WriteString("user root;\n")
	}
	// What Debian's /etc/nginx/modules-enabled/ does once
	// libnginx-mod-http-headers-more-filter is installed (its relative path
	// would resolve under this test's prefix, so the path is absolute here).
	fmt.Fprintf(&main, "load_module %s;\n", headersMoreModule(t, bin))
	fmt.Fprintf(&main, `worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/authgateway.conf;
}
`, dir)
	mainConf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(mainConf, []byte(main.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// -e: the error log before the config is read, so that nginx never
	// touches /var/log/nginx.
	if out, err := exec.Command(bin, "-t", "-p", dir+"/", "-c", mainConf, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir+"/", "-c", mainConf, "-e", filepath.Join(dir, "error.log"))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nnginx error.log:\n%s", out.String(), log)
		}
	})
	poll.Until(t, 10*time.Second, "nginx listening on "+addr, func() error {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at startup:\n%s\n%s", out.String(), log)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return addr
}

// TestNginxForwardAuth puts a real nginx in front of a recording app, with
// auth_request to the gateway's /auth/verify, using the config the README
// prints, and checks what reaches the app.
func TestNginxForwardAuth(t *testing.T) {
	g, gwUp := startForwardAuthGateway(t)
	app := newUpstream(t, 0)
	nginx := startNginx(t, g.Addr, strings.TrimPrefix(app.URL, "http://"))

	reader := g.Token(t, "-sub", "alice", "-email", "alice@example.com", "-roles", "reader")
	admin := g.Token(t, "-sub", "root", "-roles", "admin")
	aliceIdentity := map[string]string{"X-Auth-Subject": "alice", "X-Auth-Email": "alice@example.com",
		"X-Auth-Roles": "reader", "X-Auth-Strategy": "userJwt"}
	spoofs := []string{"X-Auth-Subject: mallory", "X-Auth-Roles: admin", "x-auth-email: m@evil.example",
		"X-Auth-Client-Id: evil", "X-Auth-Scopes: everything", "X_Auth_Subject: mallory", "X-AUTH-STRATEGY: forged"}

	tests := []struct {
		name    string
		raw     string
		status  int
		appSees map[string]string // the app's X-Auth-* headers; nil: the app must see no request
		appURI  string
		appBody string
	}{
		{name: "allowed: identity from the gateway's answer",
			raw: req("GET", "/api/orders?page=2", bearer(reader)), status: 200,
			appSees: aliceIdentity, appURI: "/api/orders?page=2"},
		{name: "admin role on the admin route",
			raw: req("GET", "/api/admin/users", bearer(admin)), status: 200,
			appSees: map[string]string{"X-Auth-Subject": "root", "X-Auth-Roles": "admin", "X-Auth-Strategy": "userJwt"},
			appURI:  "/api/admin/users"},
		{name: "POST body reaches the app; only headers go to the gateway",
			raw:    req("POST", "/api/orders", bearer(reader), "Content-Type: text/plain", "Content-Length: 11") + "hello world",
			status: 200, appSees: aliceIdentity, appURI: "/api/orders", appBody: "hello world"},
		{name: "no token: 401", raw: req("GET", "/api/orders"), status: 401},
		{name: "forged token: 401", raw: req("GET", "/api/orders", bearer(reader[:len(reader)-4]+"AAAA")), status: 401},
		{name: "missing role: 403", raw: req("GET", "/api/admin/users", bearer(reader)), status: 403},
		{name: "spoofed identity headers do not reach the app",
			raw: req("GET", "/api/orders", append([]string{bearer(reader)}, spoofs...)...), status: 200,
			appSees: aliceIdentity, appURI: "/api/orders"},
		{name: "spoofed role does not authorise",
			raw: req("GET", "/api/admin/users", bearer(reader), "X-Auth-Roles: admin", "X-Auth-Subject: root"), status: 403},
		{name: "public route: spoofed identity removed",
			raw: req("GET", "/public/page", spoofs...), status: 200,
			appSees: map[string]string{}, appURI: "/public/page"},
		{name: "client's X-Original-URI is replaced by nginx",
			raw: req("GET", "/api/admin/users", bearer(reader), "X-Original-URI: /public/x", "X-Original-Method: GET"), status: 403},
		{name: "client's X-Forwarded-Uri does not reach the gateway",
			raw: req("GET", "/api/admin/users", bearer(reader), "X-Forwarded-Uri: /public/x", "X-Forwarded-Method: GET"), status: 403},
		{name: "dot segments decided on what they resolve to",
			raw: req("GET", "/public/../api/admin/users", bearer(reader)), status: 403},
		// The gateway's 400/404/405 are not 401/403, so nginx answers 500:
		// still denied.
		{name: "encoded slash refused", raw: req("GET", "/public/..%2fapi/admin/users", bearer(reader)), status: 500},
		{name: "wrong method refused", raw: req("POST", "/ro/x", bearer(reader), "Content-Length: 0"), status: 500},
		{name: "no route refused", raw: req("GET", "/nowhere", bearer(reader)), status: 500},
		// The gateway sees the client's Origin and nginx's Host ($host):
		// a POST that carries only the session cookie is judged as in
		// proxy mode.
		{name: "session cookie POST from another origin refused",
			raw:    req("POST", "/api/orders", sessionCookie(reader), "Origin: https://evil.example.com", "Content-Length: 0"),
			status: 403},
		{name: "session cookie POST from the same origin",
			raw:    req("POST", "/api/orders", sessionCookie(reader), "Origin: http://gateway.test", "Content-Length: 0"),
			status: 200, appSees: aliceIdentity, appURI: "/api/orders"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app.Reset()
			resp := rawRequest(t, nginx, tc.raw)
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.Status, tc.status, resp.Body)
			}
			if tc.status == 401 {
				if wa := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want the gateway's Bearer challenge passed through", wa)
				}
			}
			if tc.appSees == nil {
				app.WantNothing(t)
				return
			}
			seen := app.One(t)
			if seen.RequestURI != tc.appURI || seen.Body != tc.appBody {
				t.Errorf("app got %q with body %q, want %q with body %q", seen.RequestURI, seen.Body, tc.appURI, tc.appBody)
			}
			got := authHeaders(seen.Header)
			for k, v := range tc.appSees {
				if got[k] != v {
					t.Errorf("app saw %s = %q, want %q (all: %q)", k, got[k], v, got)
				}
			}
			for k, v := range got {
				if _, ok := tc.appSees[k]; !ok {
					t.Errorf("app saw %s = %q, want no such header", k, v)
				}
			}
			if a := seen.Header.Get("Authorization"); a != "" {
				t.Errorf("app saw the Authorization header; the config drops credentials")
			}
		})
	}
	gwUp.WantNothing(t) // forward auth never proxies through the gateway
}

// verifyFrom asks the gateway's /auth/verify directly from local address
// from (a loopback address: trusted or not per forwardAuthConfig).
func verifyFrom(t *testing.T, g *Gateway, from string, headers ...string) *Response {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	r, err := http.NewRequest(http.MethodGet, "http://"+g.Addr+"/auth/verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		r.Header.Add(k, v)
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatalf("GET /auth/verify from %s: %v", from, err)
	}
	defer resp.Body.Close()
	return &Response{Status: resp.StatusCode, Header: resp.Header}
}

// TestForwardAuthVerify calls /auth/verify the way Traefik's ForwardAuth does
// (no Traefik binary here: the requests carry exactly the headers Traefik
// sets — X-Forwarded-Method/-Uri/-For/-Proto/-Host — plus every header of the
// client's request, which Traefik copies unless authRequestHeaders is set).
func TestForwardAuthVerify(t *testing.T) {
	g, gwUp := startForwardAuthGateway(t)
	reader := g.Token(t, "-sub", "alice", "-email", "alice@example.com", "-roles", "reader")
	traefik := func(method, uri string, client ...string) []string {
		return append([]string{"X-Forwarded-Method: " + method, "X-Forwarded-Uri: " + uri,
			"X-Forwarded-Proto: http", "X-Forwarded-Host: app.example", "X-Forwarded-For: 192.0.2.7"}, client...)
	}
	tests := []struct {
		name     string
		from     string
		headers  []string
		status   int               // 0: any 4xx (the fix may choose 400 or 401/403/405)
		identity map[string]string // X-Auth-* in the answer; nil: none
	}{
		{name: "allowed, identity in the response", from: "127.0.0.1",
			headers: traefik("GET", "/api/orders", bearer(reader)), status: 200,
			identity: map[string]string{"X-Auth-Subject": "alice", "X-Auth-Email": "alice@example.com", "X-Auth-Roles": "reader", "X-Auth-Strategy": "userJwt"}},
		{name: "no credentials", from: "127.0.0.1", headers: traefik("GET", "/api/orders"), status: 401},
		{name: "missing role", from: "127.0.0.1", headers: traefik("GET", "/api/admin/users", bearer(reader)), status: 403},
		{name: "public route, spoofed identity not echoed", from: "127.0.0.1",
			headers: traefik("GET", "/public/x", "X-Auth-Subject: mallory"), status: 200, identity: map[string]string{}},
		{name: "wrong method", from: "127.0.0.1", headers: traefik("POST", "/ro", bearer(reader)), status: 405},
		{name: "no route", from: "127.0.0.1", headers: traefik("GET", "/nowhere", bearer(reader)), status: 404},
		{name: "bad path", from: "127.0.0.1", headers: traefik("GET", "/public/..%2fapi/admin", bearer(reader)), status: 400},
		{name: "no original URI", from: "127.0.0.1", headers: []string{bearer(reader)}, status: 400},
		{name: "untrusted caller", from: "127.0.0.2", headers: traefik("GET", "/public/x"), status: 403},
		{name: "untrusted caller with a valid token", from: "127.0.0.2", headers: traefik("GET", "/api/orders", bearer(reader)), status: 403},
		// Traefik passes the client's own headers to the verify request.
		// A client that adds nginx's header names must not be able to make
		// the gateway judge another request than the one Traefik forwards
		// (which would then reach the app unauthenticated).
		{name: "client-sent X-Original-URI behind Traefik", from: "127.0.0.1",
			headers: traefik("GET", "/api/admin/users", bearer(reader), "X-Original-URI: /public/x")},
		{name: "client-sent X-Original-URI (no token) behind Traefik", from: "127.0.0.1",
			headers: traefik("GET", "/api/orders", "X-Original-URI: /public/x", "X-Original-Method: GET")},
		{name: "client-sent X-Original-URI hides the method behind Traefik", from: "127.0.0.1",
			headers: traefik("DELETE", "/ro/x", bearer(reader), "X-Original-URI: /ro/x")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := verifyFrom(t, g, tc.from, tc.headers...)
			switch {
			case tc.status == 0 && (resp.Status < 400 || resp.Status > 499):
				t.Errorf("status %d, want a denial (4xx)", resp.Status)
			case tc.status != 0 && resp.Status != tc.status:
				t.Errorf("status %d, want %d", resp.Status, tc.status)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			got := authHeaders(resp.Header)
			want := tc.identity
			if want == nil {
				want = map[string]string{}
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("answer %s = %q, want %q", k, got[k], v)
				}
			}
			for k, v := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("answer carries %s = %q, want no such header", k, v)
				}
			}
		})
	}
	gwUp.WantNothing(t)
}

// designDeletedHeaders is DESIGN.md's list of inbound headers that upstreams
// and their frameworks trust for identity, path, method or the client's
// address ("Routes that fit real deployments"), a trailing * standing for
// any rest; with the other client-address headers the gateway replaces.
var designDeletedHeaders = []string{
	"X-Auth-*", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username",
	"X-Forwarded-Groups", "X-Forwarded-Access-Token", "X-Auth-Request-*", "Remote-User",
	"X-Remote-User", "X-WEBAUTH-USER", "X-Original-URL", "X-Original-URI", "X-Rewrite-URL",
	"X-Forwarded-Uri", "X-Forwarded-Path", "X-Forwarded-Prefix", "X-Envoy-Original-Path",
	"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "Client-IP", "X-ProxyUser-Ip",
	"X-Forwarded-Port", "X-Forwarded-Scheme", "X-Forwarded-Ssl", "Front-End-Https", "X-Url-Scheme",
	"X-Original-Host", "X-Host", "X-Forwarded-Server", "X-Forwarded-Client-Cert", "X-SSL-Client-*",
	"X-Client-Cert*",
	"Forwarded", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP",
	"X-Cluster-Client-IP", "X-Originating-IP",
}

// deletedHeaderName reports whether name is on designDeletedHeaders, in any
// case and with _ read as - (as many frameworks read it).
func deletedHeaderName(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	for _, d := range designDeletedHeaders {
		d = strings.ToLower(d)
		if p, ok := strings.CutSuffix(d, "*"); ok && strings.HasPrefix(n, p) || n == d {
			return true
		}
	}
	return false
}

// wildcardExamples are names a client may send for each wildcard of
// designDeletedHeaders.
var wildcardExamples = map[string][]string{
	"X-Auth-*":         {"X-Auth-Token", "X-Auth-User", "X-Auth-Groups", "X-Auth-Subject", "X-Auth-Roles", "X-Auth-Email"},
	"X-Auth-Request-*": {"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Access-Token"},
	"X-SSL-Client-*":   {"X-SSL-Client-Cert", "X-SSL-Client-Verify", "X-SSL-Client-S-DN"},
	"X-Client-Cert*":   {"X-Client-Cert", "X-Client-Certificate", "X-Client-Cert-Chain"},
}

// spoofedHeaders are header lines a client forges with value: every name of
// designDeletedHeaders (examples for each wildcard), in odd cases, and the
// same names spelt with _.
func spoofedHeaders(t *testing.T, value string) []string {
	t.Helper()
	var names []string
	for _, d := range designDeletedHeaders {
		if !strings.HasSuffix(d, "*") {
			names = append(names, d)
			continue
		}
		if len(wildcardExamples[d]) == 0 {
			t.Fatalf("no example names for %s", d)
		}
		names = append(names, wildcardExamples[d]...)
	}
	var lines []string
	for i, n := range names {
		odd := n
		switch i % 3 {
		case 1:
			odd = strings.ToLower(n)
		case 2:
			odd = strings.ToUpper(n)
		}
		lines = append(lines, odd+": "+value, strings.ReplaceAll(n, "-", "_")+": "+value)
	}
	return lines
}

// sessionCookie is a Cookie header line carrying tok as the gateway's
// browser session.
func sessionCookie(tok string) string { return "Cookie: __Host-authgw_access=" + tok }

// TestNginxDeletionList sends every header of DESIGN.md's deletion list
// (wildcards by several names, odd cases, _ spellings) through nginx on the
// shipped config: the app must see none of the client's copies, only the
// gateway's identity (with a verifiable X-Auth-Token on an identity_token
// route) and nginx's own forwarding headers. Before headers-more cleared
// them, X-Auth-Token, X-Auth-User, X-Auth-Request-User, ... reached the app.
func TestNginxDeletionList(t *testing.T) {
	g, gwUp := startForwardAuthGateway(t)
	app := newUpstream(t, 0)
	nginx := startNginx(t, g.Addr, strings.TrimPrefix(app.URL, "http://"))
	reader := g.Token(t, "-sub", "alice", "-email", "alice@example.com", "-roles", "reader")
	const forged = "forged-by-client"
	spoofs := append(spoofedHeaders(t, forged),
		"X-Forwarded-For: 203.0.113.66", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example.com",
		"X-Real-IP: 203.0.113.66", "X-Forwarded-Method: DELETE")
	t.Logf("%d forged header lines", len(spoofs))
	identity := map[string]string{"X-Auth-Subject": "alice", "X-Auth-Email": "alice@example.com",
		"X-Auth-Roles": "reader", "X-Auth-Strategy": "userJwt"}

	tests := []struct {
		name, uri string
		creds     []string
		want      map[string]string // the app's X-Auth-* headers ("*": any value)
	}{
		{"identity_token route", "/asserted/x", []string{bearer(reader)}, plus(identity, "X-Auth-Token", "*")},
		{"authenticated route", "/api/x", []string{bearer(reader)}, identity},
		{"session cookie", "/api/x", []string{sessionCookie(reader)}, identity},
		{"public route", "/public/x", nil, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app.Reset()
			resp := rawRequest(t, nginx, req("GET", tc.uri, append(tc.creds, spoofs...)...))
			if resp.Status != http.StatusOK {
				t.Fatalf("status %d, want 200; body %q", resp.Status, resp.Body)
			}
			seen := app.One(t)
			for name, vals := range seen.Header {
				for _, v := range vals {
					if strings.Contains(v, forged) || strings.Contains(v, "203.0.113.66") || strings.Contains(v, "evil.example.com") {
						t.Errorf("the app saw the client's %s: %q", name, v)
					}
				}
				if _, ok := tc.want[name]; !ok && deletedHeaderName(name) {
					t.Errorf("the app saw %s: %q, a name on the deletion list", name, vals)
				}
			}
			got := authHeaders(seen.Header)
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || v != "*" && g != v {
					t.Errorf("app saw %s = %q, want %q (all: %q)", k, g, v, got)
				}
			}
			for k, v := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1",
				"X-Forwarded-Proto": "http", "X-Forwarded-Host": "gateway.test"} {
				if g := strings.Join(seen.Header.Values(k), ", "); g != v {
					t.Errorf("app saw %s = %q, want nginx's %q", k, g, v)
				}
			}
			if tok := seen.Header.Get("X-Auth-Token"); tok != "" {
				verifyAssertion(t, g, tok, "asserted", "alice")
			}
		})
	}
	gwUp.WantNothing(t)
}

// plus returns a copy of m with k set to v.
func plus(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	out[k] = v
	return out
}
