package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/testutil/gwbin"
	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// routesConfig mounts a legacy app the way the README's walkthrough does: on
// one host, at /legacy stripped to its root, readers may GET and editors
// write, the user in the app's own header (X-WEBAUTH-USER), the tenant from
// a claim. A wildcard host keeps its Host (preserve_host); other hosts and
// the catch-all go to recording upstreams.
const routesConfig = "\n" + userJWTConfig + `routes:
  - name: legacy-read
    host: legacy.example.com
    path: /legacy
    methods: [GET]
    strip_prefix: true
    upstream: LEGACY_UPSTREAM/base
    strategies: [userJwt]
    roles: [reader, editor]
    request_headers:
      X-WEBAUTH-USER: "{subject}"
      X-Tenant: "{claims.org.tenant}"
      X-Roles: "{roles}"
    remove_request_headers: [X-Debug]
    response_headers: {X-Frame-Options: DENY}
  - name: legacy-write
    host: legacy.example.com
    path: /legacy
    methods: [POST, PUT, DELETE]
    strip_prefix: true
    upstream: LEGACY_UPSTREAM/base
    strategies: [userJwt]
    roles: [editor]
    request_headers:
      X-WEBAUTH-USER: "{subject}"
    response_headers: {X-Frame-Options: DENY}
  - name: files-write
    host: legacy.example.com
    path: /files
    methods: [POST]
    upstream: LEGACY_UPSTREAM
    strategies: [userJwt]
    roles: [editor]
  - name: files
    host: legacy.example.com
    path: /files
    upstream: LEGACY_UPSTREAM
    strategies: [userJwt]
    roles: [reader, editor]
  - name: tenants
    host: "*.tenants.test"
    path: /
    upstream: TENANT_UPSTREAM
    preserve_host: true
    public: true
  - name: other
    host: other.test
    path: /
    upstream: OTHER_UPSTREAM
    public: true
  - name: site
    path: /
    upstream: SITE_UPSTREAM
    public: true
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`

// routesSuite is a gateway on routesConfig and its upstreams.
type routesSuite struct {
	g                   *Gateway
	secret              string
	legacy              *modelUpstream // legacyAppModel
	tenant, other, site *Upstream
	tokens              map[string]string // by role: reader, editor
}

// legacyAppModel is the app behind the legacy routes, as a CGI-style
// framework reads what it received: who the user is (legacyModel: its own
// X-WEBAUTH-USER among the headers such apps trust), which handler runs
// (methodOverrideModel, and symfonyMethod) and what host and mount point
// it concludes (proxyFixModel).
func legacyAppModel(r *wireRequest) map[string]string {
	out := legacyModel(r)
	maps.Copy(out, methodOverrideModel(r))
	maps.Copy(out, proxyFixModel(r))
	out["symfony"] = symfonyMethod(r)
	out["target"] = r.Target
	return out
}

// symfonyMethod is the method Symfony's Request::getMethod() (so Laravel)
// runs: REQUEST_METHOD upper-cased, so "post" is POST; on POST, the
// X-HTTP-Method-Override header upper-cased when present (the _method
// parameter only with httpMethodParameterOverride, off by default).
func symfonyMethod(r *wireRequest) string {
	m := strings.ToUpper(r.Method)
	if m == "POST" {
		if v := cgiEnviron(r)["HTTP_X_HTTP_METHOD_OVERRIDE"]; v != "" {
			return strings.ToUpper(v)
		}
	}
	return m
}

func startRoutesSuite(t *testing.T) *routesSuite {
	t.Helper()
	s := &routesSuite{secret: randomSecret(t), legacy: newModelUpstream(t, legacyAppModel),
		tenant: newUpstream(t, 0), other: newUpstream(t, 0), site: newUpstream(t, 0)}
	s.g = startGateway(t, strings.NewReplacer(
		"LEGACY_UPSTREAM", s.legacy.URL, "TENANT_UPSTREAM", s.tenant.URL,
		"OTHER_UPSTREAM", s.other.URL, "SITE_UPSTREAM", s.site.URL,
	).Replace(routesConfig), map[string]string{"ACCESS_SECRET": s.secret})
	s.tokens = map[string]string{"reader": s.token(t, "rita", "reader", "acme"), "editor": s.token(t, "eddy", "editor", "acme"),
		"no-tenant": s.token(t, "nina", "reader", "")}
	return s
}

// token signs an access token with roles and, unless empty, the claim
// org.tenant (the `token` command sets no custom claims).
func (s *routesSuite) token(t *testing.T, sub, role, tenant string) string {
	c := accessClaims(sub, role)
	if tenant != "" {
		c["org"] = map[string]any{"tenant": tenant}
	}
	return sign(t, jwt.SigningMethodHS256, []byte(s.secret), header("HS256", "hs-1"), c)
}

func (s *routesSuite) reset() {
	s.legacy.Reset()
	s.tenant.Reset()
	s.other.Reset()
	s.site.Reset()
}

// legacyAnswer is what the legacy app concluded and the header fields it
// received, as one name → value map (CGI environ form: HTTP_X_WEBAUTH_USER).
func legacyAnswer(t *testing.T, resp *Response) (concluded, environ map[string]string) {
	t.Helper()
	var ans modelAnswer
	if err := json.Unmarshal(resp.Body, &ans); err != nil {
		t.Fatalf("decoding the legacy app's answer %q: %v", truncate(resp.Body), err)
	}
	return ans.Concluded, httpEnviron(ans.Fields)
}

// hostReq is req with another Host.
func hostReq(method, target, host string, headers ...string) string {
	return strings.Replace(req(method, target, headers...), "Host: gateway.test\r\n", "Host: "+host+"\r\n", 1)
}

// TestRoutesLegacyApp drives the walkthrough's routes through the binary and
// checks exactly what the app received and what the client got.
func TestRoutesLegacyApp(t *testing.T) {
	t.Parallel()
	s := startRoutesSuite(t)
	const legacy = "legacy.example.com"

	t.Run("GET as reader: prefix stripped, base path kept, the app's own headers", func(t *testing.T) {
		s.reset()
		resp := s.g.Do(t, withID(hostReq("GET", "/legacy/items/a%20b?q=x%2Fy&z=%20", legacy,
			bearer(s.tokens["reader"]), "X-Debug: 1", "x_debug: 1", "Accept: text/plain"), "rt-get"))
		if resp.Status != 200 {
			t.Fatalf("status %d: %s", resp.Status, truncate(resp.Body))
		}
		if got := resp.Header.Values("X-Frame-Options"); len(got) != 1 || got[0] != "DENY" {
			t.Errorf("client got X-Frame-Options %q, want [DENY]", got)
		}
		concluded, env := legacyAnswer(t, resp)
		want := map[string]string{"user": "rita", "groups": "", "path": "/base/items/a b", "prefix": "/legacy",
			"express": "GET", "rack": "GET", "symfony": "GET", "remote_addr": "127.0.0.1", "scheme": "http", "host": legacy,
			"script_name": "/legacy", "target": "/base/items/a%20b?q=x%2Fy&z=%20"}
		if !maps.Equal(concluded, want) {
			t.Errorf("the app concluded %v, want %v", concluded, want)
		}
		wantEnv := map[string]string{"HTTP_HOST": strings.TrimPrefix(s.legacy.URL, "http://"), "HTTP_ACCEPT": "text/plain",
			"HTTP_X_WEBAUTH_USER": "rita", "HTTP_X_TENANT": "acme", "HTTP_X_ROLES": "reader",
			"HTTP_X_AUTH_SUBJECT": "rita", "HTTP_X_AUTH_ROLES": "reader", "HTTP_X_AUTH_STRATEGY": "userJwt",
			"HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_X_FORWARDED_HOST": legacy, "HTTP_X_FORWARDED_PROTO": "http",
			"HTTP_X_FORWARDED_PREFIX": "/legacy", "HTTP_X_REAL_IP": "127.0.0.1", "HTTP_X_REQUEST_ID": "rt-get"}
		sameEnviron(t, env, wantEnv)
		if ev := s.g.Event(t, "rt-get"); ev["route"] != "legacy-read" || ev["path"] != "/legacy/items/a%20b" {
			t.Errorf("auth event route %v path %v", ev["route"], ev["path"])
		}
	})

	t.Run("GET /legacy is the app's root", func(t *testing.T) {
		s.reset()
		resp := s.g.Do(t, hostReq("GET", "/legacy", legacy, bearer(s.tokens["reader"])))
		if c, _ := legacyAnswer(t, resp); resp.Status != 200 || c["target"] != "/base/" {
			t.Errorf("status %d, the app got %q, want /base/", resp.Status, c["target"])
		}
	})

	t.Run("POST: the write route, editors only", func(t *testing.T) {
		s.reset()
		resp := s.g.Do(t, withID(hostReq("POST", "/legacy/items", legacy, bearer(s.tokens["reader"]), "Content-Length: 0"), "rt-post-reader"))
		if resp.Status != 403 || resp.ErrorMessage(t) != "forbidden" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("reader POST: %d %q X-Frame-Options %q", resp.Status, resp.Body, resp.Header.Get("X-Frame-Options"))
		}
		if len(s.legacy.Requests()) != 0 {
			t.Error("the app received the reader's POST")
		}
		if ev := s.g.Event(t, "rt-post-reader"); ev["route"] != "legacy-write" || ev["reason"] != "missing_role" {
			t.Errorf("auth event: route %v reason %v", ev["route"], ev["reason"])
		}
		resp = s.g.Do(t, hostReq("POST", "/legacy/items", legacy, bearer(s.tokens["editor"]), "Content-Length: 0"))
		c, env := legacyAnswer(t, resp)
		if resp.Status != 200 || c["express"] != "POST" || c["target"] != "/base/items" || c["user"] != "eddy" {
			t.Errorf("editor POST: %d, the app concluded %v", resp.Status, c)
		}
		if _, ok := env["HTTP_X_TENANT"]; ok {
			t.Error("the write route sent X-Tenant, which only the read route templates")
		}
		// Metrics count by route: the split's routes apart.
		fams, _ := scrapeMetrics(t, s.g)
		for _, c := range []struct {
			labels map[string]string
			want   float64
		}{
			{promLabels("route", "legacy-write", "status", "403", "outcome", "forbidden"), 1},
			{promLabels("route", "legacy-write", "status", "200", "outcome", "allowed"), 1},
		} {
			if got := fams.value("authgateway_requests_total", c.labels); got != c.want {
				t.Errorf("authgateway_requests_total%v = %v, want %v", c.labels, got, c.want)
			}
		}
		if got := fams.value("authgateway_auth_failures_total", promLabels("route", "legacy-write", "reason", "missing_role")); got != 1 {
			t.Errorf("auth_failures_total{route=legacy-write,reason=missing_role} = %v, want 1", got)
		}
	})

	t.Run("a method no route on the path serves: 405 with every method of the path", func(t *testing.T) {
		s.reset()
		resp := s.g.Do(t, hostReq("PATCH", "/legacy/items", legacy, bearer(s.tokens["editor"]), "Content-Length: 0"))
		if resp.Status != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST, PUT, DELETE" || resp.ErrorMessage(t) != "method not allowed" {
			t.Errorf("PATCH: %d Allow %q", resp.Status, resp.Header.Get("Allow"))
		}
		if len(s.legacy.Requests()) != 0 {
			t.Error("the app received the PATCH")
		}
	})

	t.Run("no credentials: 401 JSON carrying the route's response headers", func(t *testing.T) {
		resp := s.g.Do(t, hostReq("GET", "/legacy/items", legacy))
		if resp.Status != 401 || resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%d, X-Frame-Options %q", resp.Status, resp.Header.Get("X-Frame-Options"))
		}
		resp.ErrorMessage(t)
	})

	t.Run("a claim the token lacks: the header is not sent", func(t *testing.T) {
		s.reset()
		resp := s.g.Do(t, hostReq("GET", "/legacy/x", legacy, bearer(s.tokens["no-tenant"])))
		_, env := legacyAnswer(t, resp)
		if _, ok := env["HTTP_X_TENANT"]; ok || env["HTTP_X_WEBAUTH_USER"] != "nina" {
			t.Errorf("environ %v", env)
		}
	})

	t.Run("wildcard host with preserve_host", func(t *testing.T) {
		s.reset()
		resp := s.g.Do(t, hostReq("GET", "/x?a=1", "Acme.Tenants.Test:8080"))
		if resp.Status != 200 {
			t.Fatalf("status %d", resp.Status)
		}
		got := s.tenant.One(t)
		if got.Host != "acme.tenants.test:8080" || got.Header.Get("X-Forwarded-Host") != "acme.tenants.test:8080" || got.RequestURI != "/x?a=1" {
			t.Errorf("tenant upstream got Host %q, X-Forwarded-Host %q, %q", got.Host, got.Header.Get("X-Forwarded-Host"), got.RequestURI)
		}
		if resp.Header.Get("X-Frame-Options") != "" {
			t.Error("another route's response header")
		}
	})

	t.Run("exact host, then wildcard (one label), then host-less", func(t *testing.T) {
		for _, tc := range []struct {
			host string
			want *Upstream
		}{
			{"other.test", s.other}, {"a.b.tenants.test", s.site}, {"tenants.test", s.site}, {"legacy.example.com.evil.test", s.site},
		} {
			s.reset()
			resp := s.g.Do(t, hostReq("GET", "/legacy/x", tc.host))
			if resp.Status != 200 {
				t.Fatalf("%s: status %d", tc.host, resp.Status)
			}
			got := tc.want.One(t)
			if got.Header.Get("X-Forwarded-Host") != tc.host || got.RequestURI != "/legacy/x" {
				t.Errorf("%s: upstream got X-Forwarded-Host %q, %q", tc.host, got.Header.Get("X-Forwarded-Host"), got.RequestURI)
			}
		}
	})

	t.Run("explain shows the host, method match, stripped path and templated headers", func(t *testing.T) {
		res := s.g.CLI(t, "explain", "-config", s.g.ConfigPath, "-json", "GET", "/legacy/items?q=1",
			"-H", "Host: LEGACY.example.com:8443", "-H", "Authorization: Bearer "+s.tokens["reader"], "-H", "X-Tenant: evil")
		var ex struct {
			Host, Route, RouteHost, RouteMethods, UpstreamPath, UpstreamURL string
			UpstreamHeaders, ResponseHeaders                                map[string]string
		}
		if err := json.Unmarshal([]byte(res.Stdout), &struct {
			Host            *string            `json:"host"`
			Route           *string            `json:"route"`
			RouteHost       *string            `json:"route_host"`
			RouteMethods    *string            `json:"route_methods"`
			UpstreamPath    *string            `json:"upstream_path"`
			UpstreamURL     *string            `json:"upstream_url"`
			UpstreamHeaders *map[string]string `json:"upstream_headers"`
			ResponseHeaders *map[string]string `json:"response_headers"`
		}{&ex.Host, &ex.Route, &ex.RouteHost, &ex.RouteMethods, &ex.UpstreamPath, &ex.UpstreamURL, &ex.UpstreamHeaders, &ex.ResponseHeaders}); err != nil {
			t.Fatalf("explain: %v\n%s%s", err, res.Stdout, res.Stderr)
		}
		if ex.Host != "legacy.example.com" || ex.Route != "legacy-read" || ex.RouteHost != "exact legacy.example.com" ||
			ex.RouteMethods != "GET" || ex.UpstreamPath != "/items" || ex.UpstreamURL != s.legacy.URL+"/base/items?q=1" {
			t.Errorf("explain: %+v", ex)
		}
		h := ex.UpstreamHeaders
		if h["X-Webauth-User"] != "rita" || h["X-Tenant"] != "acme" || h["X-Forwarded-Prefix"] != "/legacy" ||
			h["X-Forwarded-Host"] != "legacy.example.com:8443" || h["Authorization"] != "" || ex.ResponseHeaders["X-Frame-Options"] != "DENY" {
			t.Errorf("explain upstream headers %v, response headers %v", h, ex.ResponseHeaders)
		}
		text := s.g.CLI(t, "explain", "-config", s.g.ConfigPath, "POST", "/legacy/x", "-H", "Host: legacy.example.com")
		if !strings.Contains(text.Stdout, "route:     legacy-write (prefix /legacy; host: exact legacy.example.com; methods: POST, PUT, DELETE)") {
			t.Errorf("explain text:\n%s", text.Stdout)
		}
	})
}

// sameEnviron checks that the upstream received exactly the HTTP_* keys of
// want ("*": any value).
func sameEnviron(t *testing.T, got, want map[string]string) {
	t.Helper()
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
}

// startLegacyGateway runs the gateway on configs/legacy.yaml as shipped,
// with its two instances (127.0.0.1:9000 and :9001) replaced by the given
// URLs, free listener ports and a random signing secret.
func startLegacyGateway(t *testing.T, url1, url2 string) *Gateway {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "configs", "legacy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"http://127.0.0.1:9000", "http://127.0.0.1:9001"} {
		if !bytes.Contains(cfg, []byte(addr)) {
			t.Fatalf("configs/legacy.yaml no longer points at the demo upstream on %s", addr)
		}
	}
	cfg = bytes.ReplaceAll(cfg, []byte("http://127.0.0.1:9000"), []byte(url1))
	cfg = bytes.ReplaceAll(cfg, []byte("http://127.0.0.1:9001"), []byte(url2))
	secret := filepath.Join(t.TempDir(), "access-secret")
	if err := os.WriteFile(secret, []byte(randomSecret(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, string(cfg), map[string]string{"ACCESS_SECRET_FILE": secret})
}

// TestReadmeLegacyApp runs the README's legacy walkthrough as printed, on
// configs/legacy.yaml with two recording upstreams as the app's instances.
func TestReadmeLegacyApp(t *testing.T) {
	t.Parallel()
	up1, up2 := newUpstream(t, 0), newUpstream(t, 0)
	g := startLegacyGateway(t, up1.URL, up2.URL)
	block := strings.ReplaceAll(readmeBlock(t, "Put it in front of a legacy app", "curl"), "configs/legacy.yaml", g.ConfigPath)
	out := runReadmeScript(t, g, block)

	var got []string
	for _, m := range statusLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1])
	}
	if want := "403 405"; strings.Join(got, " ") != want {
		t.Errorf("status lines %q, want %q\noutput:\n%s", got, want, out)
	}
	for _, want := range []string{"x-frame-options: deny", "allow: get, head, post, put, patch, delete",
		"route:     legacy-read (prefix /legacy; host: any host; methods: GET)", "strip:     /legacy/items is forwarded as /items",
		"X-Webauth-User: rita"} {
		if !strings.Contains(strings.ToLower(out), strings.ToLower(want)) {
			t.Errorf("output lacks %q\noutput:\n%s", want, out)
		}
	}
	// The round robin spreads the walkthrough over both instances; the
	// health probes are not the walkthrough's.
	seen := map[string]Seen{}
	for _, s := range append(up1.Requests(), up2.Requests()...) {
		if s.RequestURI == "/healthz" {
			continue
		}
		k := s.Method + " " + s.RequestURI
		if _, dup := seen[k]; dup {
			t.Errorf("the app saw %s twice", k)
		}
		seen[k] = s
	}
	if len(seen) != 3 {
		t.Fatalf("the app saw %d requests, want 3 (reader GET twice, editor POST)\noutput:\n%s", len(seen), out)
	}
	wantSeen := []struct {
		method, uri string
		headers     map[string]string
	}{
		{"GET", "/items?page=2", map[string]string{"X-Webauth-User": "rita", "X-Webauth-Email": "rita@example.com", "X-Webauth-Roles": "reader", "X-Forwarded-Prefix": "/legacy"}},
		{"GET", "/", map[string]string{"X-Webauth-User": "rita", "X-Forwarded-Prefix": "/legacy"}},
		{"POST", "/items", map[string]string{"X-Webauth-User": "eddy", "X-Webauth-Email": "", "X-Forwarded-Prefix": "/legacy"}},
	}
	for i, w := range wantSeen {
		s, ok := seen[w.method+" "+w.uri]
		if !ok {
			t.Errorf("request %d: the app never saw %s %s", i, w.method, w.uri)
			continue
		}
		for name, v := range w.headers {
			if got := s.Header.Values(name); v == "" && len(got) != 0 || v != "" && (len(got) != 1 || got[0] != v) {
				t.Errorf("request %d: %s = %q, want %q", i, name, got, v)
			}
		}
		if s.Header.Get("Authorization") != "" || len(s.Header.Values("X_webauth_user")) != 0 {
			t.Errorf("request %d: the app saw the credential or a client's X-WEBAUTH-USER: %v", i, s.Header)
		}
	}
}

// demoInstance is one cmd/demo-upstream process.
type demoInstance struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startDemoUpstream runs the demo upstream binary bin on a free loopback
// port with -name name, as `make run-legacy` does, and waits until it
// answers. It is killed when the test ends.
func startDemoUpstream(t *testing.T, bin, name string) *demoInstance {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		d := &demoInstance{Addr: freePort(t), done: make(chan struct{})}
		var stderr syncBuffer
		d.cmd = exec.Command(bin, "-listen", d.Addr, "-name", name)
		d.cmd.Stderr = &stderr
		if err := d.cmd.Start(); err != nil {
			t.Fatalf("starting demo-upstream: %v", err)
		}
		go func() { _ = d.cmd.Wait(); close(d.done) }()
		t.Cleanup(func() { _ = d.cmd.Process.Kill(); <-d.done })
		_, err := poll.Wait(10*time.Second, func() error {
			select {
			case <-d.done:
				return nil
			default:
			}
			resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + d.Addr + "/healthz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		select {
		case <-d.done: // the port was taken in the meantime: another one
			lastErr = fmt.Errorf("demo-upstream exited: %s", stderr.String())
			continue
		default:
		}
		if err != nil {
			t.Fatalf("demo-upstream %s not answering: %v", name, err)
		}
		return d
	}
	t.Fatalf("starting demo-upstream %s: %v", name, lastErr)
	return nil
}

// TestReadmeLegacyTwoInstances runs the walkthrough's "Two instances with
// health checks" steps as printed, after the first block (they use its
// $READER), against the real binary and two real demo-upstream processes
// started with the flags and PID files of `make run-legacy`: the
// instances answer in turn, legacy-app-2 is stopped by its PID file, every
// later answer comes from legacy-app-1, /readyz says degraded naming the
// target and its authgateway_upstream_target_up is 0.
func TestReadmeLegacyTwoInstances(t *testing.T) {
	t.Parallel()
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-listen 127.0.0.1:9000 -name legacy-app-1 & up1=$$!", "-listen 127.0.0.1:9001 -name legacy-app-2 & up2=$$!",
		"echo $$up1 > .dev/legacy-app-1.pid", "echo $$up2 > .dev/legacy-app-2.pid", "serve -config configs/legacy.yaml"} {
		if !bytes.Contains(makefile, []byte(want)) {
			t.Fatalf("the Makefile's run-legacy no longer holds %q, which this test mirrors", want)
		}
	}
	bin, cleanup, err := gwbin.BuildCommand("demo-upstream", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	app1, app2 := startDemoUpstream(t, bin, "legacy-app-1"), startDemoUpstream(t, bin, "legacy-app-2")
	url1, url2 := "http://"+app1.Addr, "http://"+app2.Addr
	g := startLegacyGateway(t, url1, url2)
	dev := filepath.Join(g.Dir, ".dev")
	if err := os.MkdirAll(dev, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*demoInstance{"legacy-app-1": app1, "legacy-app-2": app2} {
		if err := os.WriteFile(filepath.Join(dev, name+".pid"), []byte(strconv.Itoa(d.cmd.Process.Pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	const heading = "Put it in front of a legacy app"
	block := readmeBlock(t, heading, "curl") + readmeBlock(t, heading, "legacy-app-2.pid")
	out := runReadmeScript(t, g, strings.ReplaceAll(block, "configs/legacy.yaml", g.ConfigPath))

	select {
	case <-app2.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the README's kill did not stop legacy-app-2")
	}
	select {
	case <-app1.done:
		t.Fatal("legacy-app-1 stopped too")
	default:
	}
	var served []string
	for _, m := range regexp.MustCompile(`"service": "([^"]+)"`).FindAllStringSubmatch(out, -1) {
		served = append(served, m[1])
	}
	// The first block's three answers (two reads, one write), then the
	// two in turn, then four after the stop.
	if len(served) != 3+2+4 {
		t.Fatalf("%d answers name an instance, want 9\noutput:\n%s", len(served), out)
	}
	if a, b := served[3], served[4]; a == b || a != "legacy-app-1" && a != "legacy-app-2" || b != "legacy-app-1" && b != "legacy-app-2" {
		t.Errorf("the two requests in turn were answered by %s and %s, want one each", a, b)
	}
	for i, s := range served[5:] {
		if s != "legacy-app-1" {
			t.Errorf("request %d after the stop was answered by %s, want legacy-app-1", i+1, s)
		}
	}

	_, readyz, ok := strings.Cut(out, `{"status":`)
	if !ok {
		t.Fatalf("no /readyz answer in the output\n%s", out)
	}
	readyz, _, _ = strings.Cut(`{"status":`+readyz, "\n")
	var ready struct{ Status, Detail string }
	if err := json.Unmarshal([]byte(readyz), &ready); err != nil {
		t.Fatalf("/readyz printed %q: %v", readyz, err)
	}
	if ready.Status != "degraded" || !strings.Contains(ready.Detail, "legacy-read "+url2) || strings.Contains(ready.Detail, url1) {
		t.Errorf("/readyz = %+v, want degraded naming legacy-read %s and not %s", ready, url2, url1)
	}
	for _, want := range []string{
		`authgateway_upstream_target_up{route="legacy-read",target="` + url2 + `"} 0`,
		`authgateway_upstream_target_up{route="legacy-read",target="` + url1 + `"} 1`,
		`authgateway_upstream_target_up{route="legacy-write",target="` + url1 + `"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("the metrics lack %q\noutput:\n%s", want, out)
		}
	}
}
