package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestPathRules attacks the one-spelling rule of the pipeline: the gateway
// must route on the same path it forwards, so no spelling of /api/admin may
// carry a reader's token to the upstream, and every spelling that reaches the
// upstream arrives in canonical form.
func TestPathRules(t *testing.T) {
	t.Parallel()
	g, up, _ := startStandard(t)
	tokens := map[string]string{
		"reader": g.Token(t, "-sub", "rita", "-roles", "reader"),
		"admin":  g.Token(t, "-sub", "root", "-roles", "admin"),
	}
	const nothing = ""

	tests := []struct {
		name       string
		target     string // request-target, written to the wire as is; "METHOD target" for another method than GET
		as         string // "reader", "admin" or "" (no token)
		wantStatus int
		wantURI    string // what the upstream sees, or nothing
	}{
		// Every spelling of the admin route is the admin route: 403 for a reader.
		{"double slash", "/api//admin", "reader", 403, nothing},
		{"triple slash", "/api///admin/x", "reader", 403, nothing},
		{"leading double slash", "//api/admin", "reader", 403, nothing},
		{"dot segment", "/api/./admin", "reader", 403, nothing},
		{"dot-dot segment", "/api/x/../admin", "reader", 403, nothing},
		{"dot-dot back into admin", "/api/admin/../admin/x", "reader", 403, nothing},
		{"escaped unreserved", "/api/%61dmin", "reader", 403, nothing},
		{"every letter escaped", "/api/%61%64%6D%69%6e", "reader", 403, nothing},
		{"escaped first segment", "/%61pi/admin", "reader", 403, nothing},
		{"climb out of the public route", "/public/../api/admin", "reader", 403, nothing},
		{"encoded dot-dot out of public", "/public/%2e%2e/api/admin", "reader", 403, nothing},
		{"upper-case encoded dot-dot", "/public/%2E%2E/api/admin", "reader", 403, nothing},
		{"encoded dot-dot", "/api/x/%2e%2e/admin", "reader", 403, nothing},
		{"half-encoded dot-dot", "/api/x/.%2e/admin", "reader", 403, nothing},
		{"encoded dot", "/api/%2e/admin", "reader", 403, nothing},
		{"trailing slash", "/api/admin/", "reader", 403, nothing},
		{"query", "/api/admin?x=/../public", "reader", 403, nothing},
		{"absolute-form", "http://evil/api/admin", "reader", 403, nothing},
		{"absolute-form, upper-case scheme", "HTTP://evil/api//admin", "reader", 403, nothing},
		{"absolute-form climbing", "http://evil/public/../api/admin", "reader", 403, nothing},
		{"absolute-form https escaped", "https://gateway.test/api/%61dmin", "reader", 403, nothing},
		{"no token, dot-dot", "/public/../api/admin", "", 401, nothing},

		// Spellings that are refused outright.
		{"encoded slash", "/api%2Fadmin", "reader", 400, nothing},
		{"lower-case encoded slash", "/api%2fadmin", "reader", 400, nothing},
		{"dot-dot with encoded slash", "/api/x/..%2fadmin", "reader", 400, nothing},
		{"dot-dot with upper-case encoded slash", "/api/x/..%2Fadmin", "reader", 400, nothing},
		{"double-encoded slash", "/api%252Fadmin", "reader", 400, nothing},
		{"double-encoded slash, lower case", "/api/x/..%252fadmin", "reader", 400, nothing},
		{"double-encoded letter", "/api/%2561dmin", "reader", 400, nothing},
		{"semicolon parameter", "/api/admin;x", "reader", 400, nothing},
		{"semicolon in first segment", "/api;x/admin", "reader", 400, nothing},
		{"encoded semicolon", "/api/admin%3Bx", "reader", 400, nothing},
		{"backslash", "/api\\admin", "reader", 400, nothing},
		{"backslash dot-dot", "/api/x\\..\\admin", "reader", 400, nothing},
		{"dot-dot backslash", "/api/x/..\\admin", "reader", 400, nothing},
		{"encoded backslash", "/api%5cadmin", "reader", 400, nothing},
		{"upper-case encoded backslash", "/api/x/..%5Cadmin", "reader", 400, nothing},
		{"encoded NUL", "/api/admin%00", "reader", 400, nothing},
		{"encoded NUL mid-path", "/api%00/admin", "reader", 400, nothing},
		{"raw NUL", "/api/admin\x00.json", "reader", 400, nothing},
		{"encoded tab", "/api/admin%09", "reader", 400, nothing},
		{"encoded CRLF", "/api/admin%0d%0aX-Auth-Roles:%20admin", "reader", 400, nothing},
		{"overlong UTF-8 dots", "/api/x/%c0%ae%c0%ae/admin", "reader", 400, nothing},
		{"encoded dot-dot above the root", "/%2e%2e/api/admin", "reader", 400, nothing},
		{"dot-dot above the root", "/../api/admin", "reader", 400, nothing},
		{"absolute-form dot-dot above the root", "http://evil/../api/admin", "reader", 400, nothing},
		{"encoded hash", "/api/admin%23x", "reader", 400, nothing},
		{"raw fragment", "/api/admin#x", "reader", 400, nothing},
		{"encoded question mark", "/api/x%3F/../admin", "reader", 400, nothing},
		{"malformed escape", "/api/%zzadmin", "reader", 400, nothing},
		{"asterisk-form GET", "*", "reader", 400, nothing},
		{"asterisk-form OPTIONS is answered by net/http", "OPTIONS *", "reader", 200, nothing},

		// Routes match whole segments.
		{"administrator is the api route", "/api/administrator", "reader", 200, "/api/administrator"},
		{"admin-old is the api route", "/api/admin-old", "reader", 200, "/api/admin-old"},
		{"escaped admin-old", "/api/adm%69n-old", "reader", 200, "/api/admin-old"},
		{"Administrator in capitals is the api route", "/api/ADMINISTRATOR", "reader", 200, "/api/ADMINISTRATOR"},
		{"mixed case below admin is the admin route", "/api/admin/Users", "admin", 200, "/api/admin/Users"},

		// A spelling whose case-insensitive match is another route is
		// refused: an upstream that ignores case would serve it as that
		// route (more rows in attacks_case_test.go).
		{"upper-case API", "/API/admin", "reader", 400, nothing},
		{"capitalised Admin", "/api/Admin", "reader", 400, nothing},
		{"escaped capital", "/api/%41dmin", "reader", 400, nothing},
		{"upper-case PUBLIC", "/PUBLIC/x", "", 400, nothing},
		{"dot-dot out of admin", "/api/admin/..", "reader", 200, "/api/"},
		{"dot-dot out of public into nothing", "/public/..", "", 404, nothing},

		// What reaches the upstream is exactly the canonical path.
		{"admin: escaped letter", "/api/%61dmin/x", "admin", 200, "/api/admin/x"},
		{"admin: slashes and dots", "/api//admin///x/./y/../z", "admin", 200, "/api/admin/x/z"},
		{"admin: absolute-form", "http://evil/api/admin/x?q=1", "admin", 200, "/api/admin/x?q=1"},
		{"admin: escaped tilde", "/api/admin/%7euser", "admin", 200, "/api/admin/~user"},
		{"admin: UTF-8 escapes upper-cased", "/api/admin/caf%c3%a9", "admin", 200, "/api/admin/caf%C3%A9"},
		{"admin: escaped space kept", "/api/admin/a%20b", "admin", 200, "/api/admin/a%20b"},
		{"admin: raw pipe encoded", "/api/admin/a|b", "admin", 200, "/api/admin/a%7Cb"},
		{"admin: query passed as received", "/api/admin/x?q=%2F..%2F&r=a;b", "admin", 200, "/api/admin/x?q=%2F..%2F&r=a;b"},
		{"public: plain", "/public/x", "", 200, "/public/x"},
		{"public: dot-dot inside", "/public/a/../b", "", 200, "/public/b"},
	}
	upHost := strings.TrimPrefix(up.URL, "http://")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up.Reset()
			var hdrs []string
			if tc.as != "" {
				hdrs = append(hdrs, bearer(tokens[tc.as]))
			}
			method, target := "GET", tc.target
			if m, rest, ok := strings.Cut(tc.target, " "); ok {
				method, target = m, rest
			}
			resp := g.Do(t, req(method, target, hdrs...))
			if resp.Status != tc.wantStatus {
				t.Errorf("GET %q as %q: status = %d, want %d (body %q)", tc.target, tc.as, resp.Status, tc.wantStatus, resp.Body)
			}
			if tc.wantURI == nothing {
				up.WantNothing(t)
				if resp.Status >= 400 && !refusedByNetHTTP(target) {
					resp.ErrorMessage(t)
				}
				return
			}
			s := up.One(t)
			if s.RequestURI != tc.wantURI {
				t.Errorf("upstream RequestURI = %q, want %q", s.RequestURI, tc.wantURI)
			}
			if s.Host != upHost {
				t.Errorf("upstream Host = %q, want the upstream's own %q", s.Host, upHost)
			}
			if tc.as != "" {
				if got, want := s.Header.Get("X-Auth-Roles"), tc.as; got != want {
					t.Errorf("upstream X-Auth-Roles = %q, want %q", got, want)
				}
			}
		})
	}
	if t.Failed() {
		return
	}
	// Sanity: the reader token does work on its own route.
	up.Reset()
	if resp := g.Do(t, req("GET", "/api/v1", bearer(tokens["reader"]))); resp.Status != http.StatusOK {
		t.Errorf("reader on /api/v1: status = %d, want 200", resp.Status)
	}
}

// refusedByNetHTTP reports the targets net/http refuses (with its own
// plain-text 400) before the gateway's handler runs: control bytes and
// malformed percent-escapes fail url.ParseRequestURI.
func refusedByNetHTTP(target string) bool {
	return strings.ContainsAny(target, "\x00") || strings.Contains(target, "%zz")
}
