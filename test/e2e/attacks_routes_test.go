package e2e

import (
	"maps"
	"strconv"
	"strings"
	"testing"
)

// TestRouteAttacks attacks host routes, per-method routes, strip_prefix and
// templated headers (routesConfig: a protected legacy host beside a public
// catch-all that other hosts reach). Each row says what the client gets and
// exactly which upstream received what; the legacy app is a framework
// model (legacyAppModel) reporting the user, method, host and mount point
// it would have served.
func TestRouteAttacks(t *testing.T) {
	t.Parallel()
	s := startRoutesSuite(t)
	reader, editor, noTenant := bearer(s.tokens["reader"]), bearer(s.tokens["editor"]), bearer(s.tokens["no-tenant"])
	const legacy = "legacy.example.com"
	abs := func(method, target, host string, headers ...string) string {
		return hostReq(method, target, host, headers...)
	}
	post := func(target, host string, headers ...string) string {
		return hostReq("POST", target, host, append([]string{"Content-Length: 0"}, headers...)...)
	}
	// What the legacy app concludes for rita's GET /legacy/items.
	ritaGET := map[string]string{"user": "rita", "groups": "", "path": "/base/items", "prefix": "/legacy", "express": "GET", "rack": "GET", "symfony": "GET",
		"remote_addr": "127.0.0.1", "scheme": "http", "host": legacy, "script_name": "/legacy", "target": "/base/items"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}

	tests := []struct {
		name   string
		raw    string
		status int
		allow  string
		// upstream is the one that must receive the request ("legacy",
		// "other", "site", "tenant"; "" = none).
		upstream string
		// concluded is what the legacy app concluded; env, headers it must
		// (value) or must not ("-") have received.
		concluded map[string]string
		env       map[string]string
		// host and fwdHost are the Host and X-Forwarded-Host a recording
		// upstream must have received.
		host, fwdHost string
	}{
		// Absolute-form request-targets: the URI's authority is the
		// request's host (RFC 9112 3.2.2, as net/http reads it). One host
		// chooses the route, is the one the upstream is told, and is never
		// the Host header's when they differ.
		{name: "absolute-form names a public host, Host names the protected one: the public route, told its own host",
			raw: abs("GET", "http://other.test/legacy/items", legacy), status: 200, upstream: "other", fwdHost: "other.test"},
		{name: "absolute-form names the protected host, Host a public one: the protected route's rules (401)",
			raw: abs("GET", "http://legacy.example.com/legacy/items", "other.test"), status: 401},
		{name: "absolute-form in capitals with port, Host a public one: 401",
			raw: abs("GET", "http://LEGACY.EXAMPLE.COM:80/legacy/items", "other.test"), status: 401},
		{name: "absolute-form to the protected host with a token: the app is told that host, never the Host header's",
			raw: abs("GET", "http://legacy.example.com/legacy/items", "other.test", reader), status: 200, upstream: "legacy", concluded: ritaGET},
		{name: "absolute-form with preserve_host: Host and X-Forwarded-Host are the authority's, not the header's",
			raw: abs("GET", "http://evil.tenants.test/x", "acme.tenants.test"), status: 200, upstream: "tenant",
			host: "evil.tenants.test", fwdHost: "evil.tenants.test"},

		// Host spellings: case, port and a trailing dot must not fall
		// through to the public catch-all.
		{name: "Host in capitals", raw: hostReq("GET", "/legacy/items", "LEGACY.EXAMPLE.COM"), status: 401},
		{name: "Host with a trailing dot", raw: hostReq("GET", "/legacy/items", "legacy.example.com."), status: 401},
		{name: "Host with a port", raw: hostReq("GET", "/legacy/items", "legacy.example.com:8080"), status: 401},
		{name: "Host mixed case, trailing dot and port", raw: hostReq("GET", "/legacy/items", "Legacy.Example.Com.:443"), status: 401},
		{name: "Host with port and a token: the app is told the host as matched, port kept",
			raw: hostReq("GET", "/legacy/items", "Legacy.Example.Com.:443", reader), status: 200, upstream: "legacy",
			concluded: with(ritaGET, "host", "legacy.example.com:443")},
		{name: "Host with two trailing dots: refused, not the catch-all", raw: hostReq("GET", "/legacy/items", "legacy.example.com.."), status: 400},
		{name: "Host as a list (a framework taking the first name): refused", raw: hostReq("GET", "/legacy/items", "legacy.example.com,other.test"), status: 400},
		{name: "Host with sub-delims: refused", raw: hostReq("GET", "/legacy/items", "legacy.example.com;other.test"), status: 400},
		{name: "Host with an escaped dot: refused", raw: hostReq("GET", "/legacy/items", "legacy%2Eexample.com"), status: 400},
		{name: "Host with a letter in the port: refused", raw: hostReq("GET", "/legacy/items", "legacy.example.com:8o"), status: 400},
		{name: "wildcard host is one label: a.b.tenants.test is the catch-all's (control)",
			raw: hostReq("GET", "/x", "a.b.tenants.test"), status: 200, upstream: "site", fwdHost: "a.b.tenants.test"},
		// Case of the path with host routes and a method split: a
		// case-changed path never reaches the public catch-all or another
		// method's route.
		{name: "path in capitals on the protected host", raw: hostReq("GET", "/LEGACY/items", legacy), status: 400},
		{name: "path in capitals with the reader's POST", raw: post("/Legacy/items", legacy, reader), status: 400},

		// Templated headers: the client's copies are deleted in any case and
		// "_" spelling, also when the identity gives the header no value.
		{name: "X-Tenant and X-WEBAUTH-USER sent by the client in other cases and with _",
			raw: hostReq("GET", "/legacy/items", legacy, reader, "x-tenant: evil", "X_TENANT: evil", "x_webauth_user: admin",
				"X-Webauth-User: admin", "X-ROLES: admin", "x_roles: admin"), status: 200, upstream: "legacy", concluded: ritaGET,
			env: map[string]string{"HTTP_X_TENANT": "acme", "HTTP_X_WEBAUTH_USER": "rita", "HTTP_X_ROLES": "reader"}},
		{name: "X_Tenant sent by the client when the token has no tenant: not sent at all",
			raw: hostReq("GET", "/legacy/items", legacy, noTenant, "X_Tenant: evil", "x-tenant: evil"), status: 200, upstream: "legacy",
			concluded: with(ritaGET, "user", "nina"), env: map[string]string{"HTTP_X_TENANT": "-", "HTTP_X_WEBAUTH_USER": "nina"}},
		{name: "X-Forwarded-Prefix from the client: the gateway's /legacy only",
			raw: hostReq("GET", "/legacy/items", legacy, reader, "X-Forwarded-Prefix: /evil", "X_Forwarded_Prefix: /evil"), status: 200,
			upstream: "legacy", concluded: ritaGET, env: map[string]string{"HTTP_X_FORWARDED_PREFIX": "/legacy"}},

		// Method overrides against per-method routes: the reader may GET,
		// only editors write. No override reaches the app's write handlers
		// under the read route's rules.
		{name: "reader POSTs with X-HTTP-Method-Override: GET: the write route decides (403)",
			raw: post("/legacy/items", legacy, reader, "X-HTTP-Method-Override: GET"), status: 403},
		{name: "reader GETs with ?_method=DELETE: the read route does not serve DELETE",
			raw: hostReq("GET", "/legacy/items?_method=DELETE", legacy, reader), status: 405, allow: "GET, HEAD, POST, PUT, DELETE"},
		{name: "editor POSTs with ?_method=GET: the write route does not serve GET",
			raw: post("/legacy/items?_method=GET", legacy, editor), status: 405, allow: "GET, HEAD, POST, PUT, DELETE"},
		{name: "reader with a lower-case post: no route on the path serves it",
			raw: hostReq("post", "/legacy/items", legacy, reader, "Content-Length: 0"), status: 405, allow: "GET, HEAD, POST, PUT, DELETE"},
		{name: "reader GETs with every override header: the app runs GET",
			raw:    hostReq("GET", "/legacy/items", legacy, reader, "X-HTTP-Method-Override: DELETE", "X_HTTP_Method: DELETE", "X-Method-Override: PUT"),
			status: 200, upstream: "legacy", concluded: ritaGET},
		{name: "editor POSTs with override headers: the app runs POST, never DELETE",
			raw: post("/legacy/items", legacy, editor, "X-HTTP-Method-Override: DELETE", "x_http_method_override: DELETE"), status: 200, upstream: "legacy",
			concluded: with(ritaGET, "user", "eddy", "express", "POST", "rack", "POST", "symfony", "POST")},

		// A route without methods takes the rest of its path: never a
		// method a sibling lists, in any case. Symfony (and Laravel) would
		// run "post" as POST, the editors' route.
		{name: "reader sends post in lower case where a route without methods takes the rest",
			raw: hostReq("post", "/files/x", legacy, reader, "Content-Length: 0"), status: 405, allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "reader's GET with ?_method=post on the rest route", raw: hostReq("GET", "/files/x?_method=post", legacy, reader), status: 405,
			allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "reader's POST on the editors' route (control)", raw: post("/files/x", legacy, reader), status: 403},
		{name: "reader's DELETE goes to the route that takes the rest (control)", raw: hostReq("DELETE", "/files/x", legacy, reader), status: 200,
			upstream: "legacy", concluded: with(ritaGET, "user", "", "express", "DELETE", "rack", "DELETE", "symfony", "DELETE", "path", "/files/x",
				"prefix", "", "script_name", "", "target", "/files/x")},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.reset()
			id := "rtatk-" + strconv.Itoa(i)
			raw := withID(tc.raw, id)
			ex := s.g.explain(t, raw, "127.0.0.1")
			resp := s.g.Do(t, raw)
			if resp.Status != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", resp.Status, tc.status, truncate(resp.Body))
			}
			explainAgrees(t, s.g, ex, id, resp)
			if tc.status >= 400 {
				resp.ErrorMessage(t)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			counts := map[string]int{"legacy": len(s.legacy.Requests()), "other": len(s.other.Requests()),
				"site": len(s.site.Requests()), "tenant": len(s.tenant.Requests())}
			for name, n := range counts {
				if want := map[bool]int{true: 1}[name == tc.upstream]; n != want {
					t.Errorf("%s upstream received %d requests, want %d", name, n, want)
				}
			}
			if t.Failed() || tc.upstream == "" {
				return
			}
			if tc.upstream != "legacy" {
				got := map[string]*Upstream{"other": s.other, "site": s.site, "tenant": s.tenant}[tc.upstream].One(t)
				if fh := got.Header.Values("X-Forwarded-Host"); len(fh) != 1 || fh[0] != tc.fwdHost {
					t.Errorf("X-Forwarded-Host = %q, want %q", fh, tc.fwdHost)
				}
				if tc.host != "" && got.Host != tc.host {
					t.Errorf("Host = %q, want %q", got.Host, tc.host)
				}
				return
			}
			concluded, env := legacyAnswer(t, resp)
			if !maps.Equal(concluded, tc.concluded) {
				t.Errorf("the app concluded %v, want %v", concluded, tc.concluded)
			}
			for k, v := range tc.env {
				if got, ok := env[k]; v == "-" && ok || v != "-" && got != v {
					t.Errorf("app received %s = %q (present %v), want %q", k, got, ok, v)
				}
			}
			for k := range env {
				if strings.Contains(k, "METHOD") || k == "HTTP_X_DEBUG" {
					t.Errorf("app received %s", k)
				}
			}
		})
	}
}
