package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestOwnedHeadersStripped: no client-sent X-Auth-* header, in any case or
// spelt with underscores, reaches an upstream, on public routes too.
func TestOwnedHeadersStripped(t *testing.T) {
	t.Parallel()
	g, up, _ := startStandard(t)
	reader := g.Token(t, "-sub", "rita", "-roles", "reader")
	spoofed := []string{
		"X-Auth-Roles: admin", "x-auth-subject: root", "X_Auth_Roles: admin", "X-AUTH-EMAIL: root@evil",
		"x_AUTH_strategy: apiKey", "X-Auth-Client-Id: evil", "X-Auth-Scopes: all", "X-Auth-Anything-Else: 1",
	}
	chunkedWithTrailer := func(target string, extra ...string) string {
		head := "POST " + target + " HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n" +
			"Transfer-Encoding: chunked\r\nTrailer: X-Auth-Roles, X-Auth-Subject\r\n"
		for _, h := range extra {
			head += h + "\r\n"
		}
		return head + "\r\n5\r\nhello\r\n0\r\nX-Auth-Roles: admin\r\nX-Auth-Subject: root\r\n\r\n"
	}

	tests := []struct {
		name     string
		raw      string
		wantSub  string // the injected subject; "" on the public route
		wantRole string
	}{
		{"public route", req("GET", "/public/page", spoofed...), "", ""},
		{"public route, headers named in Connection", req("GET", "/public/page", append(spoofed, "Connection: X-Auth-Roles, X_Auth_Roles")...), "", ""},
		{"public route, identity in request trailers", chunkedWithTrailer("/public/upload"), "", ""},
		{"api route", req("GET", "/api/x", append(spoofed, bearer(reader))...), "rita", "reader"},
		{"api route, identity in request trailers", chunkedWithTrailer("/api/upload", bearer(reader)), "rita", "reader"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up.Reset()
			resp := g.Do(t, tc.raw)
			if resp.Status != http.StatusOK {
				t.Fatalf("status = %d, want 200 (body %q)", resp.Status, resp.Body)
			}
			s := up.One(t)
			want := map[string]string{}
			if tc.wantSub != "" {
				want = map[string]string{"X-Auth-Subject": tc.wantSub, "X-Auth-Roles": tc.wantRole, "X-Auth-Strategy": "userJwt"}
			}
			got := authHeaders(s.Header)
			if len(got) != len(want) {
				t.Errorf("upstream X-Auth headers = %v, want exactly %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("upstream %s = %q, want %q", k, got[k], v)
				}
			}
			// ReverseProxy clones the trailer map before the body is read,
			// so announced trailer names arrive with no values; a value
			// would be a client-chosen identity.
			for k, v := range authHeaders(s.Trailer) {
				if v != "" {
					t.Errorf("upstream received request trailer %s: %q", k, v)
				}
			}
			if strings.HasPrefix(tc.raw, "POST") && s.Body != "hello" {
				t.Errorf("upstream body = %q, want hello", s.Body)
			}
		})
	}
}

// TestConnectionCannotRemoveIdentity: hop-by-hop processing must not delete
// the headers the gateway injects.
func TestConnectionCannotRemoveIdentity(t *testing.T) {
	t.Parallel()
	g, up, _ := startStandard(t)
	tok := g.Token(t, "-sub", "alice", "-email", "a@example.com", "-roles", "reader")
	for _, conn := range []string{
		"X-Auth-Subject",
		"X-Auth-Roles, Authorization",
		"keep-alive, X-Auth-Strategy, X-Auth-Email, x-auth-subject",
	} {
		t.Run(conn, func(t *testing.T) {
			up.Reset()
			resp := g.Do(t, req("GET", "/api/x", bearer(tok), "Connection: "+conn))
			if resp.Status != http.StatusOK {
				t.Fatalf("status = %d, want 200 (body %q)", resp.Status, resp.Body)
			}
			s := up.One(t)
			for k, want := range map[string]string{"X-Auth-Subject": "alice", "X-Auth-Roles": "reader",
				"X-Auth-Email": "a@example.com", "X-Auth-Strategy": "userJwt"} {
				if got := s.Header.Get(k); got != want {
					t.Errorf("upstream %s = %q, want %q", k, got, want)
				}
			}
			if v, ok := s.Header["Authorization"]; ok {
				t.Errorf("upstream saw Authorization %q", v)
			}
		})
	}
}

// TestSpoofedRolesDoNotAuthorize: a client's own X-Auth-Roles never counts.
func TestSpoofedRolesDoNotAuthorize(t *testing.T) {
	t.Parallel()
	g, up, _ := startStandard(t)
	reader := g.Token(t, "-sub", "rita", "-roles", "reader")
	tests := []struct {
		name       string
		headers    []string
		wantStatus int
	}{
		{"reader with X-Auth-Roles: admin", []string{bearer(reader), "X-Auth-Roles: admin"}, 403},
		{"reader with X_Auth_Roles: admin", []string{bearer(reader), "X_Auth_Roles: admin"}, 403},
		{"reader with x-auth-roles: admin,reader", []string{bearer(reader), "x-auth-roles: admin,reader"}, 403},
		{"no token with X-Auth-Roles and X-Auth-Subject", []string{"X-Auth-Roles: admin", "X-Auth-Subject: root", "X-Auth-Strategy: userJwt"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up.Reset()
			resp := g.Do(t, req("GET", "/api/admin/users", tc.headers...))
			if resp.Status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.Status, tc.wantStatus)
			}
			resp.ErrorMessage(t)
			up.WantNothing(t)
		})
	}
}

// TestDuplicateAuthorization: with several Authorization headers the first
// one is the credential (net/http's Header.Get), the others are ignored and
// none of them reaches the upstream. A mix never yields the union of rights.
func TestDuplicateAuthorization(t *testing.T) {
	t.Parallel()
	g, up, _ := startStandard(t)
	reader := g.Token(t, "-sub", "rita", "-roles", "reader")
	admin := g.Token(t, "-sub", "root", "-roles", "admin")
	tests := []struct {
		name       string
		path       string
		headers    []string
		wantStatus int
		wantSub    string
	}{
		{"valid reader then garbage", "/api/x", []string{bearer(reader), bearer("garbage")}, 200, "rita"},
		{"garbage then valid admin", "/api/admin/x", []string{bearer("garbage"), bearer(admin)}, 401, ""},
		{"reader then admin on the admin route", "/api/admin/x", []string{bearer(reader), bearer(admin)}, 403, ""},
		{"admin then reader on the admin route", "/api/admin/x", []string{bearer(admin), bearer(reader)}, 200, "root"},
		{"Basic then valid admin", "/api/admin/x", []string{"Authorization: Basic cm9vdDpyb290", bearer(admin)}, 401, ""},
		{"two tokens in one header", "/api/admin/x", []string{"Authorization: Bearer " + reader + ", Bearer " + admin}, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up.Reset()
			resp := g.Do(t, req("GET", tc.path, tc.headers...))
			if resp.Status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", resp.Status, tc.wantStatus, resp.Body)
			}
			if tc.wantStatus != http.StatusOK {
				resp.ErrorMessage(t)
				up.WantNothing(t)
				return
			}
			s := up.One(t)
			if got := s.Header.Get("X-Auth-Subject"); got != tc.wantSub {
				t.Errorf("upstream X-Auth-Subject = %q, want %q", got, tc.wantSub)
			}
			if v, ok := s.Header["Authorization"]; ok {
				t.Errorf("upstream saw Authorization %q, want every copy dropped", v)
			}
		})
	}
}
