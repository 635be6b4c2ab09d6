package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"testing"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
)

// TestForwardingHeadersAsSetXForwarded attacks the forwarding headers the
// gateway writes itself (rewrite's setForwarded, in place of
// httputil.ProxyRequest.SetXForwarded): for forged, trusted, unreadable and
// IPv6 peers, with Connection naming the gateway's own headers, the
// upstream gets what SetXForwarded and the gateway's rules give (model),
// its identity headers and request id, and none of the client's.
func TestForwardingHeadersAsSetXForwarded(t *testing.T) {
	up := &capture{}
	u := &url.URL{Scheme: "http", Host: "upstream.test"}
	chain := []strategies.Named{{Name: "tok", Strategy: headerToken{}}}
	table, err := NewTable([]*Route{{Name: "api", Prefix: "/", Upstream: u, Chain: chain}})
	if err != nil {
		t.Fatal(err)
	}
	ips := ratelimit.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")})
	g := New(table, Options{Transport: up, IPResolver: ips})

	forged := http.Header{
		"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.test"},
		"X-Real-Ip": {"6.6.6.6"}, "X-Auth-Subject": {"root"}, "X-Request-Id": {"forged id"},
		"Connection": {"X-Forwarded-For, X-Real-Ip, X-Auth-Subject, X-Request-Id, X-Forwarded-Host"},
	}
	tests := []struct {
		name, remote, host string
		tls                bool
		extra              http.Header
	}{
		{name: "untrusted peer forging everything", remote: "198.51.100.7:4000", host: "example.com", extra: forged},
		{name: "trusted proxy chain over two lines", remote: "192.0.2.1:4000", host: "example.com", extra: http.Header{
			"X-Forwarded-For": {"203.0.113.7, 198.51.100.2", "192.0.2.5"}, "X-Forwarded-Proto": {"https"}}},
		{name: "trusted proxy, scheme not http(s)", remote: "192.0.2.1:4000", host: "example.com", extra: http.Header{
			"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"gopher"}}},
		{name: "trusted proxy says http over TLS", remote: "192.0.2.1:4000", host: "example.com", tls: true, extra: http.Header{
			"X-Forwarded-Proto": {"http"}}},
		{name: "TLS client", remote: "198.51.100.7:4000", host: "example.com", tls: true, extra: forged},
		{name: "unreadable peer address", remote: "garbage", host: "example.com", extra: forged},
		{name: "IPv6 peer", remote: "[2001:db9::1]:4000", host: "example.com"},
		{name: "IPv6 trusted proxy", remote: "[2001:db8::2]:4000", host: "example.com", extra: http.Header{"X-Forwarded-For": {"2001:db9::7"}}},
		{name: "v4-mapped peer", remote: "[::ffff:198.51.100.9]:4000", host: "example.com"},
		{name: "zoned peer", remote: "[fe80::1%eth0]:4000", host: "example.com"},
		{name: "host in upper case with a port", remote: "198.51.100.7:4000", host: "API.Example.COM.:8443"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			r.RequestURI, r.RemoteAddr, r.Host = "/x", tc.remote, tc.host
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tc.extra {
				r.Header[k] = v
			}
			r.Header.Set("Authorization", "Token bob:reader")
			want := forwardingModel(t, ips, r)

			up.out = nil
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != http.StatusOK || up.out == nil {
				t.Fatalf("status %d", w.Code)
			}
			got := up.out.Header
			want["X-Request-Id"] = w.Header()["X-Request-Id"]
			want["X-Auth-Subject"], want["X-Auth-Strategy"] = []string{"bob"}, []string{"tok"}
			for name, v := range want {
				if g := got[name]; len(g) != len(v) || len(v) == 1 && g[0] != v[0] {
					t.Errorf("upstream %s = %q, want %q", name, g, v)
				}
			}
			if id := got.Get("X-Request-Id"); id == "forged id" || id == "" {
				t.Errorf("upstream X-Request-Id = %q", id)
			}
		})
	}
}

// forwardingModel is what the upstream must see of the forwarding
// headers: httputil's SetXForwarded on a trusted proxy's chain (none from
// anyone else), then the matched host, a trusted proxy's http or https,
// and the client's address as the resolver decides it.
func forwardingModel(t *testing.T, ips *ratelimit.IPResolver, r *http.Request) http.Header {
	t.Helper()
	client, trusted := ips.ClientIP(r)
	out := r.Clone(r.Context())
	out.Header = http.Header{}
	if trusted && len(r.Header["X-Forwarded-For"]) > 0 {
		out.Header["X-Forwarded-For"] = r.Header["X-Forwarded-For"]
	}
	(&httputil.ProxyRequest{In: r, Out: out}).SetXForwarded()
	want := http.Header{
		"X-Forwarded-For":   out.Header["X-Forwarded-For"], // nil: none
		"X-Forwarded-Host":  {forwardedHost(r.Host, HostName(r.Host))},
		"X-Forwarded-Proto": out.Header["X-Forwarded-Proto"],
		"X-Real-Ip":         {client.String()},
	}
	if p := r.Header.Get("X-Forwarded-Proto"); trusted && (p == "http" || p == "https") {
		want["X-Forwarded-Proto"] = []string{p}
	}
	return want
}
