package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/headertmpl"
	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/routing"
	"github.com/authgateway/authgateway/internal/strategies"
)

func hostTable(t testing.TB, o TableOptions) *Table {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: "up"}
	table, err := o.NewTable([]*Route{
		{Name: "legacy-read", Host: "legacy.example.com", Prefix: "/legacy", Methods: []string{"GET"}, Upstream: u},
		{Name: "legacy-write", Host: "legacy.example.com", Prefix: "/legacy", Methods: []string{"POST", "PUT"}, Upstream: u},
		{Name: "legacy-rest", Host: "legacy.example.com", Prefix: "/legacy", Upstream: u},
		{Name: "legacy-admin", Host: "legacy.example.com", Prefix: "/legacy/admin", Methods: []string{"GET"}, Upstream: u},
		{Name: "tenant", Host: "*.example.com", Prefix: "/", Upstream: u},
		{Name: "tenant-api", Host: "*.example.com", Prefix: "/api", Methods: []string{"DELETE"}, Upstream: u},
		{Name: "public-legacy", Prefix: "/legacy/public", Upstream: u},
		{Name: "site", Prefix: "/", Upstream: u},
	})
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func TestMatchHostsAndMethods(t *testing.T) {
	table := hostTable(t, TableOptions{})
	tests := []struct {
		host, path, method string
		want               string // route name; "" for none
		res                routing.Result
		serves             bool
	}{
		{"legacy.example.com", "/legacy/a", "GET", "legacy-read", routing.Matched, true},
		{"legacy.example.com", "/legacy/a", "HEAD", "legacy-read", routing.Matched, true},
		{"legacy.example.com", "/legacy", "POST", "legacy-write", routing.Matched, true},
		{"legacy.example.com", "/legacy", "DELETE", "legacy-rest", routing.Matched, true},
		{"legacy.example.com", "/legacy", "post", "legacy-rest", routing.Matched, false}, // "post" is POST to a lenient upstream: never the rest's
		{"legacy.example.com", "/legacy", "TRACE", "legacy-rest", routing.Matched, false},
		{"legacy.example.com", "/legacy/admin/x", "GET", "legacy-admin", routing.Matched, true},
		{"legacy.example.com", "/legacy/admin/x", "POST", "legacy-admin", routing.Matched, false}, // 405, not the shorter prefix
		// The host tier decides before host-less routes, whatever the prefix length.
		{"legacy.example.com", "/legacy/public", "GET", "legacy-read", routing.Matched, true},
		// Exact host before wildcard; a path the exact host has no route for falls through.
		{"legacy.example.com", "/other", "GET", "tenant", routing.Matched, true},
		{"a.example.com", "/legacy/public", "GET", "tenant", routing.Matched, true},
		{"a.example.com", "/api/x", "DELETE", "tenant-api", routing.Matched, true},
		{"a.example.com", "/api/x", "GET", "tenant-api", routing.Matched, false},
		// A wildcard is exactly one more label.
		{"a.b.example.com", "/legacy/public", "GET", "public-legacy", routing.Matched, true},
		{"example.com", "/legacy/public", "GET", "public-legacy", routing.Matched, true},
		{"", "/legacy/x", "GET", "site", routing.Matched, true},
		// Case: a path whose fold is a host route's never falls through.
		{"legacy.example.com", "/LEGACY/a", "GET", "legacy-read", routing.CaseMismatch, true},
		{"legacy.example.com", "/Legacy/admin", "POST", "legacy-admin", routing.CaseMismatch, false},
		{"legacy.example.com", "/legacy/ADMIN", "GET", "legacy-admin", routing.CaseMismatch, true},
		{"other.test", "/LEGACY/PUBLIC", "GET", "public-legacy", routing.CaseMismatch, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %s", tt.method, tt.host, tt.path), func(t *testing.T) {
			rt, res := table.Match(tt.host, tt.path, tt.method)
			name := ""
			if rt != nil {
				name = rt.Name
			}
			if name != tt.want || res != tt.res {
				t.Fatalf("Match = %q, %v; want %q, %v", name, res, tt.want, tt.res)
			}
			if rt != nil && rt.allowsMethod(tt.method, "") != tt.serves {
				t.Errorf("allowsMethod(%s) = %v, want %v", tt.method, !tt.serves, tt.serves)
			}
		})
	}
	// A split's 405 lists every method of the path; _method on one route of
	// a split names a method of another: refused, never that route's rules.
	rt, _ := table.Match("a.example.com", "/api", "GET")
	if rt.allow != "DELETE" {
		t.Errorf("Allow = %q", rt.allow)
	}
	read, _ := table.Match("legacy.example.com", "/legacy", "GET")
	rest, _ := table.Match("legacy.example.com", "/legacy", "DELETE")
	for _, q := range []string{"_method=POST", "_method=put", "_method=PUT"} {
		if read.allowsMethod("GET", q) || rest.allowsMethod("DELETE", q) {
			t.Errorf("%s accepted on a route that does not serve it", q)
		}
	}
}

func TestNewTableRefusesOverlaps(t *testing.T) {
	u := &url.URL{Scheme: "http", Host: "up"}
	for name, routes := range map[string][]*Route{
		"same methods": {{Name: "a", Prefix: "/x", Methods: []string{"GET"}, Upstream: u}, {Name: "b", Prefix: "/x", Methods: []string{"GET", "POST"}, Upstream: u}},
		"GET and HEAD": {{Name: "a", Prefix: "/x", Methods: []string{"GET"}, Upstream: u}, {Name: "b", Prefix: "/x", Methods: []string{"HEAD"}, Upstream: u}},
		"two rests":    {{Name: "a", Prefix: "/x", Upstream: u}, {Name: "b", Prefix: "/x", Upstream: u}},
		"case on host": {{Name: "a", Host: "h.test", Prefix: "/x", Upstream: u}, {Name: "b", Host: "h.test", Prefix: "/X", Upstream: u}},
	} {
		if _, err := NewTable(routes); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ok := []*Route{{Name: "a", Host: "h.test", Prefix: "/x", Upstream: u}, {Name: "b", Prefix: "/x", Upstream: u}}
	if _, err := NewTable(ok); err != nil {
		t.Errorf("same path on two hosts: %v", err)
	}
}

func TestHostName(t *testing.T) {
	for in, want := range map[string]string{
		"legacy.example.com": "legacy.example.com", "LEGACY.Example.COM": "legacy.example.com",
		"legacy.example.com.": "legacy.example.com", "Legacy.Example.com.:8443": "legacy.example.com",
		"legacy.example.com:80": "legacy.example.com", "[::1]:8080": "[::1]", "": "",
	} {
		if got := HostName(in); got != want {
			t.Errorf("HostName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tt := range []struct{ host, want string }{
		{"LEGACY.example.com.:8443", "legacy.example.com:8443"},
		{"legacy.example.com", "legacy.example.com"},
		{"[::1]:8080", "[::1]:8080"},
	} {
		if got := forwardedHost(tt.host, HostName(tt.host)); got != tt.want {
			t.Errorf("forwardedHost(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

func TestUpstreamRest(t *testing.T) {
	rt := &Route{Prefix: "/legacy", StripPrefix: true}
	for in, want := range map[string]string{"/legacy": "/", "/legacy/a": "/a", "/legacy/a%2Fb%20c/": "/a%2Fb%20c/"} {
		if got := rt.upstreamRest(in); got != want {
			t.Errorf("upstreamRest(%q) = %q, want %q", in, got, want)
		}
	}
	root := &Route{Prefix: "/", StripPrefix: true}
	if got := root.upstreamRest("/a"); got != "/a" {
		t.Errorf("strip of / = %q", got)
	}
}

func TestTemplatedHeadersClassified(t *testing.T) {
	tm, _ := headertmpl.Parse("{subject}")
	rt := &Route{RequestHeaders: []HeaderTemplate{{Name: "X-Tenant", Template: tm}}, Upstream: &url.URL{}}
	rt.compile()
	h := http.Header{"X-Tenant": {"evil"}, "x-tenant": {"evil"}, "X_TENANT": {"evil"}, "x_Tenant": {"evil"}, "X-Tenantx": {"kept"}, "X-Webauth-User": {"evil"}}
	stripInboundHeaders(h, rt)
	if len(h) != 1 || h.Get("X-Tenantx") != "kept" {
		t.Errorf("left %v", h)
	}
	setTemplatedHeaders(headerSetter{h, &headerValues{}}, rt.RequestHeaders, &strategies.Identity{Subject: "alice"})
	if got := h["X-Tenant"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("X-Tenant = %q", got)
	}
}

// BenchmarkMatchHosts matches through host tiers and method splits: 10
// routes and 10,000 (1,000 hosts, each with GET/POST/rest splits and a
// wildcard). Compare the ns/op of routes=10000 with routes=10 in one run.
func BenchmarkMatchHosts(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			u := &url.URL{Scheme: "http", Host: "up"}
			var routes []*Route
			for i := 0; len(routes) < n; i++ {
				host := fmt.Sprintf("app%d.example.com", i)
				routes = append(routes,
					&Route{Name: fmt.Sprint(len(routes)), Host: host, Prefix: "/legacy", Methods: []string{"GET"}, Upstream: u},
					&Route{Name: fmt.Sprint(len(routes) + 1), Host: host, Prefix: "/legacy", Methods: []string{"POST"}, Upstream: u},
					&Route{Name: fmt.Sprint(len(routes) + 2), Host: host, Prefix: "/legacy", Upstream: u},
					&Route{Name: fmt.Sprint(len(routes) + 3), Host: "*.t" + fmt.Sprint(i) + ".example.com", Prefix: "/api", Upstream: u},
					&Route{Name: fmt.Sprint(len(routes) + 4), Prefix: fmt.Sprintf("/svc%d", i), Upstream: u},
				)
			}
			table, err := NewTable(routes)
			if err != nil {
				b.Fatal(err)
			}
			hosts := n / 5
			type req struct{ host, path, method string }
			reqs := make([]req, 64)
			for k := range reqs {
				i := (k * 7919) % hosts
				switch k % 4 {
				case 0:
					reqs[k] = req{fmt.Sprintf("app%d.example.com", i), "/legacy/items/42", "GET"}
				case 1:
					reqs[k] = req{fmt.Sprintf("app%d.example.com", i), "/legacy/items", "DELETE"}
				case 2:
					reqs[k] = req{fmt.Sprintf("x.t%d.example.com", i), "/api/v1/x", "GET"}
				default:
					reqs[k] = req{"unknown.example.org", fmt.Sprintf("/svc%d/a", i), "POST"}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r := &reqs[i&63]
				if _, res := table.Match(r.host, r.path, r.method); res != routing.Matched {
					b.Fatalf("%v: %v", r, res)
				}
			}
		})
	}
}

func TestPlainHost(t *testing.T) {
	for host, want := range map[string]bool{
		"legacy.example.com": true, "LEGACY.example.com.": true, "legacy.example.com:8080": true, "127.0.0.1:80": true,
		"[::1]:8080": true, "[::1]": true, "": true, "my_host": true,
		"x@legacy.example.com": false, "legacy.example.com..": false, ".legacy.example.com": false, "legacy%2Eexample.com": false,
		"legacy.example.com:": false, "legacy.example.com:8o": false, "legacy.example.com:80:80": false, "a..b": false,
		"legacy.example.com!": false, "[::1": false, "[evil]": false, "legacy.example.com;x": false,
	} {
		if got := plainHost(host); got != want {
			t.Errorf("plainHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// BenchmarkLegacyRoute is BenchmarkHotPath's request on a plain route and on
// a legacy route (host, strip_prefix, three templated headers), through the
// real ReverseProxy in one run: compare their ns/op and allocs/op.
func BenchmarkLegacyRoute(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	b.Cleanup(up.Close)
	u, _ := url.Parse(up.URL + "/base")
	chain := []strategies.Named{{Name: "tok", Strategy: headerToken{}}}
	var tmpls []HeaderTemplate
	for name, src := range map[string]string{"X-Webauth-User": "{subject}", "X-User-Roles": "{roles}", "X-User-Email": "{email}"} {
		tm, err := headertmpl.Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		tmpls = append(tmpls, HeaderTemplate{Name: name, Template: tm})
	}
	table, err := NewTable([]*Route{
		{Name: "plain", Prefix: "/api", Upstream: u, Chain: chain, Roles: []string{"admin"}},
		{Name: "legacy", Host: "legacy.example.com", Prefix: "/legacy", StripPrefix: true, Methods: []string{"GET"},
			Upstream: u, Chain: chain, Roles: []string{"admin"}, RequestHeaders: tmpls},
		{Name: "legacy-write", Host: "legacy.example.com", Prefix: "/legacy", StripPrefix: true, Methods: []string{"POST"},
			Upstream: u, Chain: chain, Roles: []string{"admin"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	g := New(table, Options{})
	for _, tc := range []struct{ name, host, target string }{
		{"route=plain", "gateway.test", "/api/users?page=2"},
		{"route=legacy", "legacy.example.com", "/legacy/users?page=2"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", tc.target, nil)
			r.RequestURI, r.Host = tc.target, tc.host
			r.Header.Set("Authorization", "Token ann:admin")
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// TestVerifyHostRoutes: /auth/verify decides for the host the trusted proxy
// names in X-Forwarded-Host (one value), and its 200 carries the route's
// templated headers for the proxy to pass on.
func TestVerifyHostRoutes(t *testing.T) {
	u := &url.URL{Scheme: "http", Host: "up"}
	tm, _ := headertmpl.Parse("{subject}")
	chain := []strategies.Named{{Name: "tok", Strategy: headerToken{}}}
	table, err := NewTable([]*Route{
		{Name: "legacy", Host: "legacy.example.com", Prefix: "/legacy", Upstream: u, Chain: chain,
			RequestHeaders: []HeaderTemplate{{Name: "X-Webauth-User", Template: tm}}},
		{Name: "site", Prefix: "/", Upstream: u, Public: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	g := New(table, Options{IPResolver: ratelimit.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})})
	for _, tt := range []struct {
		name   string
		hdr    map[string]string
		status int
		user   string
	}{
		{"protected host, no credentials", map[string]string{"X-Forwarded-Host": "LEGACY.example.com:443"}, 401, ""},
		{"protected host", map[string]string{"X-Forwarded-Host": "legacy.example.com", "Authorization": "Token ann:x", "X-Webauth-User": "root"}, 200, "ann"},
		{"other host: the public route", map[string]string{"X-Forwarded-Host": "other.test", "Authorization": "Token ann:x"}, 200, ""},
		{"a bad host", map[string]string{"X-Forwarded-Host": "legacy.example.com.."}, 400, ""},
		{"two hosts", map[string]string{"X-Forwarded-Host": "other.test, legacy.example.com"}, 400, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", VerifyPath, nil)
			r.RemoteAddr = "192.0.2.1:1234"
			r.Header.Set("X-Forwarded-Uri", "/legacy/x")
			r.Header.Set("X-Forwarded-Method", "GET")
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != tt.status || w.Header().Get("X-Webauth-User") != tt.user {
				t.Errorf("status %d, X-Webauth-User %q; want %d, %q", w.Code, w.Header().Get("X-Webauth-User"), tt.status, tt.user)
			}
		})
	}
}

// FuzzHostRoutes: the route a host chooses does not change with the host's
// case, a trailing dot or a port, and neither does whether it is refused.
func FuzzHostRoutes(f *testing.F) {
	table := hostTable(f, TableOptions{})
	for _, h := range []string{"legacy.example.com", "a.example.com", "a.b.example.com", "example.com", "[::1]", "x..y", "LEGACY.example.com."} {
		f.Add(h, "/legacy/a", "GET")
	}
	f.Fuzz(func(t *testing.T, host, path, method string) {
		if strings.ContainsAny(host, ":") || strings.ContainsFunc(host, func(r rune) bool { return r >= 0x80 }) {
			return // the port variant is added below; net/http refuses non-ASCII hosts
		}
		name := func(h string) string {
			rt, res := table.Match(HostName(h), path, method)
			if rt == nil {
				return res.String()
			}
			return rt.Name + " " + res.String()
		}
		want, plain := name(host), plainHost(host)
		for _, v := range []string{strings.ToUpper(host), strings.ToLower(host), host + ":8443"} {
			if got := name(v); got != want {
				t.Fatalf("host %q chose %q, %q chose %q", host, want, v, got)
			}
			if plainHost(v) != plain {
				t.Fatalf("plainHost(%q) = %v, plainHost(%q) = %v", host, plain, v, !plain)
			}
		}
		if !strings.HasSuffix(host, ".") && plainHost(host+".") == plain {
			if got := name(host + "."); got != want {
				t.Fatalf("host %q chose %q, with a trailing dot %q", host, want, got)
			}
		}
	})
}

// BenchmarkLegacyRewrite is the gateway's own work for BenchmarkLegacyRoute's
// requests, without the network: decide, then the rewrite of the outbound
// request (strip_prefix, X-Forwarded-*, identity and templated headers).
func BenchmarkLegacyRewrite(b *testing.B) {
	u, _ := url.Parse("http://up/base")
	chain := []strategies.Named{{Name: "tok", Strategy: headerToken{}}}
	var tmpls []HeaderTemplate
	for name, src := range map[string]string{"X-Webauth-User": "{subject}", "X-User-Roles": "{roles}", "X-User-Email": "{email}"} {
		tm, _ := headertmpl.Parse(src)
		tmpls = append(tmpls, HeaderTemplate{Name: name, Template: tm})
	}
	table, err := NewTable([]*Route{
		{Name: "plain", Prefix: "/api", Upstream: u, Chain: chain, Roles: []string{"admin"}},
		{Name: "legacy", Host: "legacy.example.com", Prefix: "/legacy", StripPrefix: true, Methods: []string{"GET"},
			Upstream: u, Chain: chain, Roles: []string{"admin"}, RequestHeaders: tmpls},
	})
	if err != nil {
		b.Fatal(err)
	}
	g := New(table, Options{})
	for _, tc := range []struct{ name, host, target string }{
		{"route=plain", "127.0.0.1:8080", "/api/users?page=2"},
		{"route=legacy", "legacy.example.com:8080", "/legacy/users?page=2"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", tc.target, nil)
			r.RequestURI, r.Host = tc.target, tc.host
			r.Header.Set("Authorization", "Token ann:admin")
			r.Header.Set("Accept", "*/*")
			r.Header.Set("User-Agent", "bench")
			b.ReportAllocs()
			for b.Loop() {
				in := r.Clone(context.Background())
				st := &reqState{}
				if d := g.decide(in, st, in.RequestURI, http.Header{}, doorClient); d.Outcome != OutcomeAllowed {
					b.Fatal(d.Reason)
				}
				out := in.Clone(context.WithValue(in.Context(), stateKey{}, st))
				pr := &httputil.ProxyRequest{In: in.WithContext(out.Context()), Out: out}
				g.rewrite(pr)
			}
		})
	}
}

// TestTemplatedHeadersOneBuffer: values cut from one rendered string stay
// each their own, also around a template that sends nothing.
func TestTemplatedHeadersOneBuffer(t *testing.T) {
	var tmpls []HeaderTemplate
	for _, nv := range [][2]string{{"X-A", "{subject}"}, {"X-B", "{claims.missing}"}, {"X-C", "<{email}>"}, {"X-D", "{roles}"}} {
		tm, err := headertmpl.Parse(nv[1])
		if err != nil {
			t.Fatal(err)
		}
		tmpls = append(tmpls, HeaderTemplate{Name: nv[0], Template: tm})
	}
	h := http.Header{}
	setTemplatedHeaders(headerSetter{h, &headerValues{}}, tmpls, &strategies.Identity{Subject: "alice", Email: "a@example.com", Roles: []string{"r1", "r2"}})
	want := http.Header{"X-A": {"alice"}, "X-C": {"<a@example.com>"}, "X-D": {"r1,r2"}}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("headers %v, want %v", h, want)
	}
	h.Add("X-A", "more") // a later append must not write into X-C's value
	if h.Get("X-C") != "<a@example.com>" {
		t.Errorf("X-C = %q after an append to X-A", h.Get("X-C"))
	}
}
