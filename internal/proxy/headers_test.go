package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/ratelimit"
)

// browserHeaders is what Chrome sends on a navigation, with a credential.
func browserHeaders() http.Header {
	return http.Header{
		"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"},
		"Accept-Encoding":           {"gzip, deflate, br, zstd"},
		"Accept-Language":           {"en-GB,en;q=0.9,de;q=0.8"},
		"Authorization":             {"Token ann:admin"},
		"Cache-Control":             {"max-age=0"},
		"Cookie":                    {"theme=dark; _ga=GA1.1.123.456; csrftoken=abc"},
		"Priority":                  {"u=0, i"},
		"Referer":                   {"https://app.example.com/dashboard"},
		"Sec-Ch-Ua":                 {`"Chromium";v="130", "Google Chrome";v="130", "Not?A_Brand";v="99"`},
		"Sec-Ch-Ua-Mobile":          {"?0"},
		"Sec-Ch-Ua-Platform":        {`"Linux"`},
		"Sec-Fetch-Dest":            {"document"},
		"Sec-Fetch-Mode":            {"navigate"},
		"Sec-Fetch-Site":            {"same-origin"},
		"Sec-Fetch-User":            {"?1"},
		"Upgrade-Insecure-Requests": {"1"},
		"User-Agent":                {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"},
	}
}

// BenchmarkInboundHeaders is the header work of one browser request: the
// pass over the inbound headers, and the outbound trailers and upgrade.
// Nothing is deleted, so one map serves every iteration.
func BenchmarkInboundHeaders(b *testing.B) {
	h, tr := browserHeaders(), http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		stripInboundHeaders(h, nil)
		stripInboundHeaders(tr, nil)
		dropH2CUpgrade(h)
	}
	if len(h) != len(browserHeaders()) {
		b.Fatalf("%d headers left, want all", len(h))
	}
}

// BenchmarkBrowserRequest is a whole browser request through the gateway
// and the real ReverseProxy to an in-process upstream.
func BenchmarkBrowserRequest(b *testing.B) {
	g, _ := newTestGateway(b, nil)
	r := httptest.NewRequest("GET", "/api/admin/users?page=2", nil)
	r.RequestURI = "/api/admin/users?page=2"
	r.Header = browserHeaders()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// headerModel is DESIGN.md's lists as written there, for comparison with
// classifyHeader: a name matches when it is equal, or starts with a "*"
// entry's prefix, after lower-casing and reading "_" as "-".
var headerModel = map[headerClass][]string{
	headerOwned: {"X-Auth-*"},
	headerGatewaySet: {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Real-IP",
		"X-Request-Id"},
	headerDeleted: {"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups",
		"X-Forwarded-Access-Token", "Remote-User", "X-Remote-User", "X-WEBAUTH-USER", "X-Original-URL",
		"X-Original-URI", "X-Rewrite-URL", "X-Forwarded-Uri", "X-Forwarded-Path", "X-Forwarded-Prefix",
		"X-Envoy-Original-Path", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
		"Client-IP", "X-ProxyUser-Ip", "X-Forwarded-Port", "X-Forwarded-Scheme", "X-Forwarded-Ssl", "Front-End-Https",
		"X-Url-Scheme", "X-Original-Host", "X-Host", "X-Forwarded-Server", "X-Forwarded-Client-Cert", "X-SSL-Client-*",
		"X-Client-Cert*", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP",
		"X-Cluster-Client-IP", "X-Originating-IP", "HTTP2-Settings"},
}

func modelClass(name string) headerClass {
	folded := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	for class, names := range headerModel {
		for _, n := range names {
			n = strings.ToLower(n)
			if p, wild := strings.CutSuffix(n, "*"); wild && strings.HasPrefix(folded, p) || folded == n {
				return class
			}
		}
	}
	return headerForward
}

// capture is a Transport that keeps the outbound request and answers 200.
type capture struct{ out *http.Request }

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	c.out = r
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// isToken reports whether s is a valid header name: anything else the
// server refuses before the gateway runs.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// FuzzInboundHeaderNames sends fuzzed header names and values, as headers
// and as request trailers, through the real ServeHTTP, ReverseProxy and
// rewrite, and compares what reaches the upstream with a model that reads
// DESIGN.md's lists folding "_" and case: no owned, deleted or gateway-set
// name arrives in any spelling except the gateway's own canonical ones with
// the gateway's values, no h2c upgrade arrives, and every other name
// arrives untouched. A request the gateway refuses is no disagreement.
func FuzzInboundHeaderNames(f *testing.F) {
	for _, seed := range [][2]string{
		{"X_Forwarded_For\nX-Forwarded-For\nRemote_User\nx-auth-roles", "6.6.6.6\n10.0.0.1\nadmin"},
		{"X-HTTP-Method-Override\nx_http_method\nX-Method-Override\nAccept", "DELETE\nPUT"},
		{"X_SSL_CLIENT_S_DN\nX-Client-Certificate\nx_forwarded_preferred_username\nFORWARDED", "CN=admin"},
		{"Connection\nUpgrade\nHTTP2-Settings\nHttp2_Settings", "Upgrade, HTTP2-Settings\nh2c\nAAMAAABk"},
		{"Connection\nUpgrade", "upgrade\nwebsocket, H2C/1"},
		{"X_Request_Id\nX-Request-Id\nX-Real-Ip\nX_Real_Ip", "forged\nrid-1\n6.6.6.6"},
		{"Connection\nX-Forwarded-Host\nX-Foo", "X-Forwarded-Host, X-Real-IP\nevil.example\nbar"},
	} {
		f.Add(seed[0], seed[1])
	}
	// Every listed name in its canonical, "_" and upper-case spellings.
	for _, names := range headerModel {
		for _, n := range names {
			n = strings.ReplaceAll(n, "*", "-Any")
			f.Add(n+"\n"+strings.ReplaceAll(n, "-", "_")+"\n"+strings.ToUpper(n), "forged")
		}
	}
	up := &capture{}
	table, err := NewTable([]*Route{{Name: "site", Prefix: "/", Upstream: &url.URL{Scheme: "http", Host: "upstream.test"}, Public: true}})
	if err != nil {
		f.Fatal(err)
	}
	g := New(table, Options{Transport: up})
	hop := []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Cookie", "User-Agent"}

	f.Fuzz(func(t *testing.T, names, values string) {
		vals := strings.Split(values, "\n")
		in, trailer := http.Header{}, http.Header{}
		for i, n := range strings.Split(names, "\n") {
			v := vals[i%len(vals)]
			if !isToken(n) || strings.ContainsAny(v, "\r\n\x00") {
				continue // the server refuses it
			}
			if got, want := classifyHeader(n), modelClass(n); got != want {
				t.Errorf("classifyHeader(%q) = %d, the model says %d", n, got, want)
			}
			in.Add(n, v) // canonicalised, as the server does
			trailer.Add(n, v)
		}
		r := httptest.NewRequest("GET", "/x", nil)
		r.RequestURI, r.RemoteAddr = "/x", "192.0.2.1:1234"
		r.Header, r.Trailer = in.Clone(), trailer
		up.out = nil
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != http.StatusOK || up.out == nil {
			return // refused
		}
		out := up.out.Header
		// Names listed in Connection are hop-by-hop: ReverseProxy drops them.
		skip := slices.Clone(hop)
		for _, c := range in["Connection"] {
			for name := range strings.SplitSeq(c, ",") {
				skip = append(skip, http.CanonicalHeaderKey(strings.TrimSpace(name)))
			}
		}
		wantRequestID := "" // generated
		if id := in.Get("X-Request-Id"); validRequestID(id) {
			wantRequestID = id
		}
		gateway := map[string]string{"X-Forwarded-For": "192.0.2.1", "X-Real-Ip": "192.0.2.1",
			"X-Forwarded-Host": r.Host, "X-Forwarded-Proto": "http", "X-Request-Id": wantRequestID}
		for name, v := range out {
			switch want, own := gateway[name]; {
			case own && (len(v) != 1 || want != "" && v[0] != want):
				t.Errorf("upstream %s = %q, want the gateway's %q", name, v, want)
			case !own && modelClass(name) != headerForward:
				t.Errorf("upstream received %s = %q", name, v)
			}
		}
		for name, v := range in {
			if modelClass(name) == headerForward && !slices.Contains(skip, name) && !slices.Equal(out[name], v) {
				t.Errorf("upstream %s = %q, want it untouched: %q", name, out[name], v)
			}
		}
		for _, u := range out["Upgrade"] {
			for p := range strings.SplitSeq(u, ",") {
				if proto, _, _ := strings.Cut(strings.TrimSpace(p), "/"); strings.EqualFold(proto, "h2c") {
					t.Errorf("upstream Upgrade = %q", out["Upgrade"])
				}
			}
		}
		for name, v := range up.out.Trailer {
			if modelClass(name) != headerForward {
				t.Errorf("upstream trailer %s = %q", name, v)
			}
		}
	})
}

func TestDropH2CUpgrade(t *testing.T) {
	tests := []struct {
		upgrade, conn       string
		wantUpgrade, wantCo string // "" = absent
	}{
		{"h2c", "Upgrade", "", ""},
		{"H2C", "Upgrade", "", ""},
		{"h2c/1.0", "Upgrade", "", ""},
		{"websocket, h2c", "Upgrade", "websocket", "Upgrade"},
		{"h2c,websocket", "Upgrade", "websocket", "Upgrade"},
		{" H2c , websocket/13 , TLS/1.2", "Upgrade", "websocket/13, TLS/1.2", "Upgrade"},
		{"websocket", "Upgrade", "websocket", "Upgrade"},
		{"h2cx", "Upgrade", "h2cx", "Upgrade"},
		{"", "", "", ""},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.upgrade != "" {
			h["Upgrade"], h["Connection"] = []string{tc.upgrade}, []string{tc.conn}
		}
		dropH2CUpgrade(h)
		if got := strings.Join(h["Upgrade"], "|"); got != tc.wantUpgrade {
			t.Errorf("Upgrade %q: got %q, want %q", tc.upgrade, got, tc.wantUpgrade)
		}
		if got := strings.Join(h["Connection"], "|"); got != tc.wantCo {
			t.Errorf("Upgrade %q: Connection %q, want %q", tc.upgrade, got, tc.wantCo)
		}
	}
}

// TestTrustedProxyForwarding: a trusted proxy's chain and scheme are kept,
// in their canonical spelling only; the gateway adds its peer to the chain.
func TestTrustedProxyForwarding(t *testing.T) {
	up := &capture{}
	table, err := NewTable([]*Route{{Name: "site", Prefix: "/", Upstream: &url.URL{Scheme: "http", Host: "upstream.test"}, Public: true}})
	if err != nil {
		t.Fatal(err)
	}
	g := New(table, Options{Transport: up, IPResolver: ratelimit.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})})
	r := httptest.NewRequest("GET", "/x", nil)
	r.RequestURI, r.RemoteAddr = "/x", "192.0.2.1:1234"
	r.Header = http.Header{
		"X-Forwarded-For": {"203.0.113.7"}, "X_forwarded_for": {"6.6.6.6"},
		"X-Forwarded-Proto": {"https"}, "X_forwarded_proto": {"http"},
		"X-Real-Ip": {"6.6.6.6"}, "X_real_ip": {"6.6.6.6"}, "Remote-User": {"admin"},
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	want := http.Header{
		"X-Forwarded-For": {"203.0.113.7, 192.0.2.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"example.com"},
		"X-Real-Ip": {"203.0.113.7"}, "X-Request-Id": up.out.Header["X-Request-Id"], "User-Agent": {""},
	}
	if got := up.out.Header; !reflect.DeepEqual(got, want) {
		t.Errorf("upstream headers = %v, want %v", got, want)
	}
}
