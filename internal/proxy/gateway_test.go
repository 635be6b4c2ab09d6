package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
)

// headerToken is a test strategy: "Token <subject>:<role>" authenticates,
// "Token bad" is invalid, anything else is not its credential.
type headerToken struct{}

func (headerToken) Authenticate(_ context.Context, r *http.Request) (*strategies.Identity, error) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
	if !ok {
		return nil, strategies.ErrNoCredentials
	}
	if v == "bad" {
		return nil, strategies.Invalid("bad_token", nil)
	}
	if v == "down" {
		return nil, errors.New("store unreachable")
	}
	sub, role, _ := strings.Cut(v, ":")
	return &strategies.Identity{Subject: sub, Roles: []string{role}, Scopes: []string{"read"}, Email: sub + "@example.com"}, nil
}

func (headerToken) CredentialHeaders() []string { return []string{"Authorization"} }
func (headerToken) CredentialCookie() string    { return "session" }

type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seen) last(t *testing.T) *http.Request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("upstream saw no request")
	}
	return s.reqs[len(s.reqs)-1]
}

func (s *seen) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.reqs) }

// newTestGateway serves a test table; limiter may be nil (no failure limit).
func newTestGateway(t testing.TB, limiter FailureLimiter) (*Gateway, *seen) {
	up := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.mu.Lock()
		up.reqs = append(up.reqs, r)
		up.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/base")
	chain := []strategies.Named{{Name: "tok", Strategy: headerToken{}}}
	table, err := NewTable([]*Route{
		{Name: "admin", Prefix: "/api/admin", Upstream: u, Chain: chain, Roles: []string{"admin"}},
		{Name: "api", Prefix: "/api", Upstream: u, Chain: chain, Methods: []string{"GET"}},
		{Name: "scoped", Prefix: "/scoped", Upstream: u, Chain: chain, Scopes: []string{"read", "write"}},
		{Name: "site", Prefix: "/", Upstream: u, Public: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return New(table, Options{AuthFailures: limiter}), up
}

func serve(g *Gateway, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RequestURI = target
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

func TestPipeline(t *testing.T) {
	g, up := newTestGateway(t, nil)
	tests := []struct {
		name       string
		method     string
		target     string
		hdr        map[string]string
		wantStatus int
		wantPath   string // raw path the upstream saw; "" = must not be forwarded
		wantError  string
	}{
		{"public", "GET", "/hello?a=b", nil, 200, "/base/hello", ""},
		{"no credentials", "GET", "/api/x", nil, 401, "", "unauthorized"},
		{"invalid credentials", "GET", "/api/x", map[string]string{"Authorization": "Token bad"}, 401, "", "unauthorized"},
		{"technical failure fails closed", "GET", "/api/x", map[string]string{"Authorization": "Token down"}, 503, "", "authentication temporarily unavailable"},
		{"valid", "GET", "/api/x", map[string]string{"Authorization": "Token bob:reader"}, 200, "/base/api/x", ""},
		{"missing role", "GET", "/api/admin/x", map[string]string{"Authorization": "Token bob:reader"}, 403, "", "forbidden"},
		{"role", "GET", "/api/admin/x", map[string]string{"Authorization": "Token ann:admin"}, 200, "/base/api/admin/x", ""},
		{"missing scope", "GET", "/scoped", map[string]string{"Authorization": "Token ann:admin"}, 403, "", "insufficient scope"},
		{"method not allowed", "POST", "/api/x", map[string]string{"Authorization": "Token bob:reader"}, 405, "", "method not allowed"},
		{"head allowed with get", "HEAD", "/api/x", map[string]string{"Authorization": "Token bob:reader"}, 200, "/base/api/x", ""},
		{"dot segments into admin are matched again", "GET", "/api/x/../admin/y", map[string]string{"Authorization": "Token bob:reader"}, 403, "", "forbidden"},
		{"encoded letter into admin", "GET", "/api/%61dmin", map[string]string{"Authorization": "Token bob:reader"}, 403, "", "forbidden"},
		{"encoded slash refused", "GET", "/api%2Fadmin", map[string]string{"Authorization": "Token bob:reader"}, 400, "", "bad request path"},
		{"forwarded path is the canonical one", "GET", "/api//%61dmin/./z", map[string]string{"Authorization": "Token ann:admin"}, 200, "/base/api/admin/z", ""},
		{"non-ascii escapes forwarded as matched", "GET", "/caf%c3%a9", nil, 200, "/base/caf%C3%A9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			w := serve(g, tt.method, tt.target, tt.hdr)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantError != "" {
				var body struct{ Error string }
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != tt.wantError {
					t.Errorf("body = %q, want error %q", w.Body, tt.wantError)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
			if tt.wantStatus == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.wantPath == "" {
				if up.count() != before {
					t.Fatalf("upstream was called for a denied request")
				}
				return
			}
			if got := up.last(t).RequestURI; !strings.HasPrefix(got, tt.wantPath) {
				t.Errorf("upstream saw %q, want %q", got, tt.wantPath)
			}
		})
	}
}

func TestIdentityHeaders(t *testing.T) {
	g, up := newTestGateway(t, nil)
	w := serve(g, "GET", "/api/x", map[string]string{
		"Authorization":  "Token bob:reader",
		"X-Auth-Roles":   "admin",
		"x-auth-subject": "root",
		"X_Auth_Email":   "root@evil",
		"X-AUTH-NEW":     "1",
		"Connection":     "X-Auth-Subject, X-Auth-Roles",
		"Cookie":         "session=secret; theme=dark; __Host-authgw_refresh=r; __Host-authgw_login=l",
		"X-Real-IP":      "203.0.113.9",
		"True-Client-IP": "203.0.113.9",
	})
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	got := up.last(t).Header
	want := map[string]string{
		"X-Auth-Subject": "bob", "X-Auth-Email": "bob@example.com", "X-Auth-Roles": "reader",
		"X-Auth-Scopes": "read", "X-Auth-Strategy": "tok",
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	for k := range got {
		if classifyHeader(k) == headerOwned {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected owned header %s: %q", k, got[k])
			}
		}
	}
	if got.Get("Authorization") != "" {
		t.Error("credential header forwarded")
	}
	if c := got.Get("Cookie"); c != "theme=dark" {
		t.Errorf("Cookie = %q, want only theme=dark", c)
	}
	if got.Get("X-Real-IP") != "192.0.2.1" || got.Get("True-Client-IP") != "" {
		t.Errorf("forged client address passed: X-Real-IP %q True-Client-IP %q", got.Get("X-Real-IP"), got.Get("True-Client-IP"))
	}
	if got.Get("X-Request-Id") == "" || got.Get("X-Forwarded-For") != "192.0.2.1" {
		t.Errorf("request id %q, xff %q", got.Get("X-Request-Id"), got.Get("X-Forwarded-For"))
	}

	// A public route strips owned headers too.
	serve(g, "GET", "/pub", map[string]string{"X-Auth-Subject": "root", "X_AUTH_ROLES": "admin"})
	for k := range up.last(t).Header {
		if classifyHeader(k) == headerOwned {
			t.Errorf("public route forwarded %s", k)
		}
	}
}

func TestUpstreamDown(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	table, _ := NewTable([]*Route{{Name: "site", Prefix: "/", Upstream: u, Public: true}})
	g := New(table, Options{})
	w := serve(g, "GET", "/", nil)
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "upstream unavailable") {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
}

func TestAuthFailureLimit(t *testing.T) {
	lim, err := ratelimit.NewMemory(ratelimit.Options{Name: "auth_failures", Limit: 3, Period: 60e9})
	if err != nil {
		t.Fatal(err)
	}
	g, up := newTestGateway(t, lim)
	for i := range 3 {
		if w := serve(g, "GET", "/api/x", map[string]string{"Authorization": "Token bad"}); w.Code != 401 {
			t.Fatalf("failure %d: status %d", i, w.Code)
		}
	}
	n := up.count()
	w := serve(g, "GET", "/api/x", map[string]string{"Authorization": "Token bob:reader"})
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after 3 failures a valid credential got %d (Retry-After %q), want 429", w.Code, w.Header().Get("Retry-After"))
	}
	if up.count() != n {
		t.Fatal("rate-limited request reached the upstream")
	}
	if w := serve(g, "GET", "/public", nil); w.Code != 200 {
		t.Fatalf("public route blocked for a limited client: %d", w.Code)
	}
	// Missing credentials are not failures.
	lim2, _ := ratelimit.NewMemory(ratelimit.Options{Name: "auth_failures", Limit: 1, Period: 60e9})
	g2, _ := newTestGateway(t, lim2)
	for range 3 {
		serve(g2, "GET", "/api/x", nil)
	}
	if w := serve(g2, "GET", "/api/x", map[string]string{"Authorization": "Token bob:reader"}); w.Code != 200 {
		t.Fatalf("missing credentials counted as failures: %d", w.Code)
	}
}

func TestClassifyHeader(t *testing.T) {
	for name, want := range map[string]headerClass{
		"X-Auth-Subject": headerOwned, "x-auth-roles": headerOwned, "X_Auth_Roles": headerOwned, "X-AUTH_X": headerOwned,
		"x_auth-": headerOwned, "X-Auth-Request-User": headerOwned, "X_AUTH_REQUEST_EMAIL": headerOwned,
		"X-Auth": headerForward, "X-Authorization": headerForward, "Authorization": headerForward, "X-Authx-Y": headerForward,
		"": headerForward, "X": headerForward, "_": headerForward,
		"X-Forwarded-For": headerGatewaySet, "X_Forwarded_For": headerGatewaySet, "x_FORWARDED-for": headerGatewaySet,
		"Forwarded": headerGatewaySet, "X_Real_IP": headerGatewaySet, "X_Forwarded_Host": headerGatewaySet,
		"X-Forwarded-Proto": headerGatewaySet, "X_Request_Id": headerGatewaySet,
		"Remote-User": headerDeleted, "Remote_User": headerDeleted, "X-WEBAUTH-USER": headerDeleted, "X-Original-URL": headerDeleted,
		"X-HTTP-Method-Override": headerDeleted, "x_http_method": headerDeleted, "X-Method-Override": headerDeleted,
		"X-Forwarded-Preferred-Username": headerDeleted, "X_FORWARDED_PREFERRED_USERNAME": headerDeleted,
		"X-Forwarded-Port": headerDeleted, "Front-End-Https": headerDeleted, "X-Host": headerDeleted, "x_host": headerDeleted,
		"X-SSL-Client-S-DN": headerDeleted, "x_ssl_client_verify": headerDeleted, "X-SSL-Client-": headerDeleted,
		"X-Client-Cert": headerDeleted, "X-Client-Certificate": headerDeleted, "X_CLIENT_CERT_CHAIN": headerDeleted,
		"X-Client-Ip": headerDeleted, "Cf-Connecting-Ip": headerDeleted, "Http2-Settings": headerDeleted, "HTTP2_SETTINGS": headerDeleted,
		"X-SSL-Client": headerForward, "X-Client": headerForward, "X-Hosts": headerForward, "X-Forwarded-Preferred-Usernames": headerForward,
		"X-Forwarded-Method": headerForward, "Remote-Users": headerForward, "X-Forwarded": headerForward, "Host": headerForward,
		"X.Forwarded.For": headerForward, "X-Forwarded-For ": headerForward, "Accept": headerForward, "Sec-Fetch-Mode": headerForward,
		"Cookie": headerForward, "Content-Type": headerForward, "Referer": headerForward, "Transfer-Encoding": headerForward,
	} {
		if got := classifyHeader(name); got != want {
			t.Errorf("classifyHeader(%q) = %d, want %d", name, got, want)
		}
	}
}

// BenchmarkHotPath is route match + strategy + header strip/inject + forward
// to an in-process upstream, through the real ReverseProxy.
func BenchmarkHotPath(b *testing.B) {
	g, _ := newTestGateway(b, nil)
	b.ReportAllocs()
	r := httptest.NewRequest("GET", "/api/admin/users?page=2", nil)
	r.RequestURI = "/api/admin/users?page=2"
	r.Header.Set("Authorization", "Token ann:admin")
	r.Header.Set("X-Auth-Roles", "spoof")
	for b.Loop() {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkDecision is the gateway's own work without the network: decide
// (normalise, match, strip, authenticate, authorise) and the identity headers.
func BenchmarkDecision(b *testing.B) {
	g, _ := newTestGateway(b, nil)
	r := httptest.NewRequest("GET", "/api/admin/users?page=2", nil)
	r.RequestURI = "/api/admin/users?page=2"
	r.Header.Set("Authorization", "Token ann:admin")
	b.ReportAllocs()
	for b.Loop() {
		st := &reqState{}
		if d := g.decide(r, st, r.RequestURI, httptest.NewRecorder().Header(), doorClient); d.Outcome != OutcomeAllowed {
			b.Fatal("denied")
		}
		h := http.Header{}
		setIdentityOn(h, st.identity)
	}
}

func TestVerify(t *testing.T) {
	g, up := newTestGateway(t, nil)
	trusted := New(g.Table(), Options{IPResolver: ratelimit.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})})
	tests := []struct {
		name       string
		gw         *Gateway
		hdr        map[string]string
		wantStatus int
		wantSub    string
	}{
		{"untrusted caller", g, map[string]string{"X-Original-URI": "/api/x", "Authorization": "Token bob:reader"}, 403, ""},
		{"nginx allowed", trusted, map[string]string{"X-Original-URI": "/api/x", "X-Original-Method": "GET", "Authorization": "Token bob:reader"}, 200, "bob"},
		{"traefik allowed", trusted, map[string]string{"X-Forwarded-Uri": "/api/admin/y", "X-Forwarded-Method": "GET", "Authorization": "Token ann:admin"}, 200, "ann"},
		{"no credentials", trusted, map[string]string{"X-Original-URI": "/api/x", "X-Original-Method": "GET"}, 401, ""},
		{"missing role", trusted, map[string]string{"X-Original-URI": "/api/admin", "X-Original-Method": "GET", "Authorization": "Token bob:reader"}, 403, ""},
		{"path trick resolved before matching", trusted, map[string]string{"X-Original-URI": "/api/x/../%61dmin", "X-Original-Method": "GET", "Authorization": "Token bob:reader"}, 403, ""},
		{"encoded slash refused", trusted, map[string]string{"X-Original-URI": "/api%2fadmin", "X-Original-Method": "GET", "Authorization": "Token bob:reader"}, 400, ""},
		{"original method checked", trusted, map[string]string{"X-Original-URI": "/api/x", "X-Original-Method": "DELETE", "Authorization": "Token bob:reader"}, 405, ""},
		{"_method in the original query checked", trusted, map[string]string{"X-Original-URI": "/api/x?_method=DELETE", "X-Original-Method": "GET", "Authorization": "Token bob:reader"}, 405, ""},
		{"original TRACE on a route without methods", trusted, map[string]string{"X-Original-URI": "/site", "X-Original-Method": "TRACE"}, 405, ""},
		{"_ spellings of the pair are not the pair", trusted, map[string]string{"X_Original_URI": "/site", "X_Original_Method": "GET"}, 400, ""},
		{"public route", trusted, map[string]string{"X-Original-URI": "/site", "X-Original-Method": "GET", "X-Auth-Subject": "root"}, 200, ""},
		{"missing uri", trusted, map[string]string{"Authorization": "Token bob:reader"}, 400, ""},
		{"missing method", trusted, map[string]string{"X-Original-URI": "/site", "Authorization": "Token bob:reader"}, 400, ""},
		{"client adds the other proxy's pair (bypass attempt)", trusted, map[string]string{
			"X-Forwarded-Uri": "/api/admin", "X-Forwarded-Method": "GET", "X-Original-URI": "/site", "X-Original-Method": "GET"}, 400, ""},
		{"both pairs agree", trusted, map[string]string{"X-Forwarded-Uri": "/site", "X-Forwarded-Method": "GET",
			"X-Original-URI": "/site", "X-Original-Method": "GET"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := up.count()
			w := serve(tt.gw, "GET", VerifyPath, tt.hdr)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get(HeaderSubject); got != tt.wantSub {
				t.Errorf("X-Auth-Subject = %q, want %q", got, tt.wantSub)
			}
			if up.count() != n {
				t.Error("verify called the upstream")
			}
		})
	}
}

func BenchmarkStripInject(b *testing.B) {
	id := &strategies.Identity{Subject: "alice", Email: "a@example.com", Roles: []string{"admin", "reader"}, Scopes: []string{"read"}, Strategy: "jwt"}
	base := http.Header{
		"Accept": {"*/*"}, "User-Agent": {"bench"}, "Authorization": {"Bearer x"}, "X-Auth-Roles": {"spoof"},
		"Cookie": {"a=1; session=x; b=2"}, "Content-Type": {"application/json"},
	}
	b.ReportAllocs()
	for b.Loop() {
		h := base.Clone()
		stripInboundHeaders(h, nil)
		h.Del("Authorization")
		setIdentityOn(h, id)
	}
}

func TestLoginRedirectForNavigations(t *testing.T) {
	g, up := newTestGateway(t, nil)
	tbl := g.Table()
	for _, rt := range tbl.Routes() {
		if rt.Name == "api" {
			rt.Login = "/auth/login"
		}
	}
	nav := map[string]string{"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
	w := serve(g, "GET", "/api/x?a=1", nav)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/auth/login?rd=%2Fapi%2Fx%3Fa%3D1" {
		t.Fatalf("navigation without session: %d %q", w.Code, w.Header().Get("Location"))
	}
	// An invalid session cookie on a navigation also goes to login (a
	// session ended elsewhere), while an API call gets 401 JSON.
	nav["Cookie"] = "session=bad"
	if w := serve(g, "GET", "/api/x", map[string]string{"Accept": "application/json"}); w.Code != 401 {
		t.Fatalf("API call: %d", w.Code)
	}
	if w := serve(g, "POST", "/api/x", nav); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", w.Code)
	}
	if up.count() != 0 {
		t.Fatal("upstream reached")
	}
}

// heldResponse starts an upstream that sends headers (plus extra) and first,
// flushes, and holds the rest of the response until the test ends, with a
// public gateway in front of it; it returns the gateway's response to a GET
// of path. The client gives up after 10 s, so a gateway that buffered what
// was flushed fails the caller's read instead of hanging.
func heldResponse(t *testing.T, path string, extra http.Header, first, rest string) *http.Response {
	t.Helper()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range extra {
			w.Header()[k] = v
		}
		_, _ = io.WriteString(w, first)
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, rest)
	}))
	u, _ := url.Parse(up.URL)
	table, err := NewTable([]*Route{{Name: "site", Prefix: "/", Upstream: u, Public: true}})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(New(table, Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(func() { cancel(); close(release); gw.Close(); up.Close() })
	req, _ := http.NewRequestWithContext(ctx, "GET", gw.URL+path, nil)
	res, err := gw.Client().Do(req)
	if err != nil {
		t.Fatalf("headers not delivered while the upstream held the response: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// TestStreamsWithoutDelay: a streamed response (server-sent events, or a
// chunked long poll) reaches the client event by event, while the upstream
// still holds the response open.
func TestStreamsWithoutDelay(t *testing.T) {
	for _, contentType := range []string{"text/event-stream", "text/plain"} {
		t.Run(contentType, func(t *testing.T) {
			res := heldResponse(t, "/events", http.Header{"Content-Type": {contentType}}, "data: first\n\n", "data: last\n\n")
			first := make([]byte, len("data: first\n\n"))
			if _, err := io.ReadFull(res.Body, first); err != nil {
				t.Fatalf("first event not delivered while the upstream held the response open: %v", err)
			}
			if string(first) != "data: first\n\n" || res.ContentLength != -1 {
				t.Fatalf("got %q, Content-Length %d", first, res.ContentLength)
			}
		})
	}
}

// TestSlowSizedResponseHeadersArrive: an upstream that sends the headers of
// a sized response at once and the body only later: the client gets the
// headers and the first part of the body while the upstream still holds the
// rest (a gateway that kept them buffered until the end would time out).
func TestSlowSizedResponseHeadersArrive(t *testing.T) {
	res := heldResponse(t, "/report", http.Header{"Content-Length": {"10"}, "X-Report": {"started"}}, "12345", "67890")
	first := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatalf("first part of the body not delivered: %v", err)
	}
	if res.Header.Get("X-Report") != "started" || res.ContentLength != 10 || string(first) != "12345" {
		t.Fatalf("got %q, X-Report %q, Content-Length %d", first, res.Header.Get("X-Report"), res.ContentLength)
	}
}

// TestLargeHeadersCrossSmallBuffers: header blocks far larger than the
// upstream transport's 1 KiB buffers pass through intact both ways.
func TestLargeHeadersCrossSmallBuffers(t *testing.T) {
	big := strings.Repeat("abcdefghij", 1200) // 12 KB, one line
	var gotReq string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotReq = r.Header.Get("X-Big")
		w.Header().Set("X-Big-Response", big)
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	table, err := NewTable([]*Route{{Name: "site", Prefix: "/", Upstream: u, Public: true}})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(New(table, Options{}))
	defer gw.Close()
	req, _ := http.NewRequest("GET", gw.URL+"/x", nil)
	req.Header.Set("X-Big", big)
	res, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	if gotReq != big || res.Header.Get("X-Big-Response") != big {
		t.Fatalf("large header changed in transit: request %d bytes, response %d bytes", len(gotReq), len(res.Header.Get("X-Big-Response")))
	}
}

// TestIdentityHeaderValuesAreSeparate: the identity headers share one
// backing array; appending to one must not overwrite another.
func TestIdentityHeaderValuesAreSeparate(t *testing.T) {
	h := http.Header{}
	setIdentityOn(h, &strategies.Identity{Subject: "alice", Strategy: "jwt", Email: "a@example.com",
		Roles: []string{"reader", "admin"}, Scopes: []string{"read"}, ClientID: "cli"})
	for _, name := range []string{HeaderSubject, HeaderStrategy, HeaderEmail, HeaderRoles, HeaderScopes} {
		h.Add(name, "forged")
	}
	want := map[string][]string{
		HeaderSubject: {"alice", "forged"}, HeaderStrategy: {"jwt", "forged"}, HeaderEmail: {"a@example.com", "forged"},
		HeaderRoles: {"reader,admin", "forged"}, HeaderScopes: {"read", "forged"}, HeaderClientID: {"cli"},
	}
	for name, w := range want {
		if got := h[name]; strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
}

// setIdentityOn writes id's identity headers to h.
func setIdentityOn(h http.Header, id *strategies.Identity) {
	setIdentityHeaders(headerSetter{h, &headerValues{}}, id)
}
