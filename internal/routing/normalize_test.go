package routing

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// newAttackTable is the route set the attack cases are judged against: a
// protected /api/admin beside a less protected /api, a public /public and a
// public catch-all.
func newAttackTable(t testing.TB) *Table[string] {
	t.Helper()
	tb := NewTable[string]()
	for _, p := range []string{"/", "/api", "/api/admin", "/public"} {
		if err := tb.Add(p, p); err != nil {
			t.Fatalf("Add(%q): %v", p, err)
		}
	}
	return tb
}

// TestNormalizeAttacks pins the brief's attack list: each spelling is either
// refused or routed to /api/admin, never to /api (or anything else).
func TestNormalizeAttacks(t *testing.T) {
	tb := newAttackTable(t)
	tests := []struct {
		in        string
		wantPath  string // "" means ErrBadPath
		wantRoute string
	}{
		{"/api/admin", "/api/admin", "/api/admin"},
		{"/api//admin", "/api/admin", "/api/admin"},
		{"/api/./admin", "/api/admin", "/api/admin"},
		{"/api/x/../admin", "/api/admin", "/api/admin"},
		{"/api/%61dmin", "/api/admin", "/api/admin"},
		{"/api/%61%64%6D%69%6e", "/api/admin", "/api/admin"},
		{"/api%2Fadmin", "", ""},
		{"/api%2fadmin", "", ""},
		{"/api/x/..%2fadmin", "", ""},
		{"/api/admin;x", "", ""},
		{"/api/admin%3Bx", "", ""},
		{"/api;/admin", "", ""},
		{"/public/../api/admin", "/api/admin", "/api/admin"},
		{"/public/%2e%2e/api/admin", "/api/admin", "/api/admin"},
		{"/api%252fadmin", "", ""},
		{"/api\\admin", "", ""},
		{"/api/%5cadmin", "", ""},
		{"/api/%5Cadmin", "", ""},
		{"/api/%2e%2e/api/admin", "/api/admin", "/api/admin"},
		{"/api/%2E%2E/api/admin", "/api/admin", "/api/admin"},
		{"/api/.%2e/api/admin", "/api/admin", "/api/admin"},
		{"/api/admin/", "/api/admin/", "/api/admin"},
		{"/api/admin/x/..", "/api/admin/", "/api/admin"},
		{"/api/admin/..", "/api/", "/api"},
		{"http://evil.example/api/admin", "/api/admin", "/api/admin"},
		{"HTTPS://evil.example:8443//api/./admin?x=1", "/api/admin", "/api/admin"},
		{"/API/admin", "/API/admin", "/"},
		{"/api/ADMIN", "/api/ADMIN", "/api"},
		{"/api/%41dmin", "/api/Admin", "/api"},
		{"/api/administrator", "/api/administrator", "/api"},
		{"/api/admin-old", "/api/admin-old", "/api"},
		{"/api/admin.", "/api/admin.", "/api"},
		{"/api/admin%00", "", ""},
		{"/api/admin\x00", "", ""},
		{"/api/admin%0a", "", ""},
		{"/api/admin%23", "", ""},
		{"/api/admin%3f", "", ""},
		{"/api/admin%25", "", ""},
		{"/api/%C0%AE%C0%AE/admin", "", ""}, // overlong UTF-8 dots
		{"/..", "", ""},
		{"/api/../../api/admin", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, _, err := Normalize(tt.in)
			if tt.wantPath == "" {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("Normalize(%q) = %q, %v; want ErrBadPath", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q): %v; want %q", tt.in, err, tt.wantPath)
			}
			if got != tt.wantPath {
				t.Fatalf("Normalize(%q) = %q; want %q", tt.in, got, tt.wantPath)
			}
			_, route, res := tb.Match(got)
			if res != Matched || route != tt.wantRoute {
				t.Fatalf("Match(%q) = %q, %v; want %q", got, route, res, tt.wantRoute)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantPath  string
		wantQuery string
	}{
		{"root", "/", "/", ""},
		{"plain", "/a/b", "/a/b", ""},
		{"query kept raw", "/a?x=1&y=%2F%zz", "/a", "x=1&y=%2F%zz"},
		{"empty query", "/a?", "/a", ""},
		{"question mark inside query", "/a?b?c", "/a", "b?c"},
		{"trailing slash kept", "/a/b/", "/a/b/", ""},
		{"slash runs collapsed", "//a///b//", "/a/b/", ""},
		{"double slash start is a path", "//host/path", "/host/path", ""},
		{"only slashes", "////", "/", ""},
		{"dot", "/a/.", "/a/", ""},
		{"dot dot to root", "/a/..", "/", ""},
		{"dot dot trailing slash", "/a/b/../", "/a/", ""},
		{"dot then segment", "/./a", "/a", ""},
		{"dots in names are not segments", "/a/.../..b/b..", "/a/.../..b/b..", ""},
		{"encoded dot segment", "/a/%2e/b", "/a/b", ""},
		{"unreserved decoded", "/%7e%2D%5f%2E%30%7A", "/~-_.0z", ""},
		{"hex upper-cased", "/caf%c3%a9", "/caf%C3%A9", ""},
		{"sub-delims kept raw", "/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b", ""},
		{"sub-delim escapes kept", "/a%40%2b%3a", "/a%40%2B%3A", ""},
		{"encoded space kept", "/a%20b", "/a%20b", ""},
		{"raw unsafe ASCII encoded", "/a|b^c{d}[e]`\"<>", "/a%7Cb%5Ec%7Bd%7D%5Be%5D%60%22%3C%3E", ""},
		{"four byte utf-8", "/%F0%9F%98%80", "/%F0%9F%98%80", ""},
		{"absolute http", "http://h/a?q", "/a", "q"},
		{"absolute empty path", "http://h", "/", ""},
		{"absolute empty path with query", "https://h:1?q=1", "/", "q=1"},
		{"absolute ipv6 host", "http://[::1]:80/a", "/a", ""},
		{"absolute userinfo ignored", "http://u:p@h/a", "/a", ""},
		{"absolute scheme any case", "hTtP://h/a", "/a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, q, err := Normalize(tt.in)
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tt.in, err)
			}
			if p != tt.wantPath || q != tt.wantQuery {
				t.Fatalf("Normalize(%q) = %q, %q; want %q, %q", tt.in, p, q, tt.wantPath, tt.wantQuery)
			}
		})
	}
}

// TestNormalizeRejects gives every refusal rule an attack case of its own.
func TestNormalizeRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"asterisk form", "*"},
		{"authority form", "example.com:443"},
		{"relative", "foo"},
		{"relative dot", "./a"},
		{"opaque http", "http:foo"},
		{"opaque http slash", "http:/foo"},
		{"mailto", "mailto:x"},
		{"other scheme", "ftp://h/a"},
		{"javascript scheme", "javascript://h/%0aalert(1)"},
		{"absolute empty host", "http:///a"},
		{"absolute backslash host", "http://h\\@evil/a"},
		{"absolute space in host", "http://h x/a"},
		{"absolute bad path", "http://h/a%2fb"},
		{"fragment", "/a#b"},
		{"fragment in query", "/a?b#c"},
		{"absolute fragment", "http://h/a#b"},
		{"raw backslash", "/a\\b"},
		{"encoded backslash lower", "/a%5cb"},
		{"raw semicolon", "/a;b"},
		{"encoded semicolon", "/a%3bb"},
		{"raw NUL", "/a\x00b"},
		{"encoded NUL", "/a%00b"},
		{"raw newline", "/a\nb"},
		{"encoded CR", "/a%0Db"},
		{"raw tab", "/a\tb"},
		{"raw DEL", "/a\x7fb"},
		{"encoded DEL", "/a%7fb"},
		{"encoded control 1f", "/a%1Fb"},
		{"raw space", "/a b"},
		{"raw non-ASCII", "/caf\xc3\xa9"},
		{"raw high byte", "/a\xffb"},
		{"encoded slash", "/a%2Fb"},
		{"encoded slash lower", "/a%2fb"},
		{"encoded hash", "/a%23b"},
		{"encoded question", "/a%3Fb"},
		{"encoded question lower", "/a%3fb"},
		{"encoded percent", "/a%25b"},
		{"double encoded slash", "/a%252Fb"},
		{"lone percent", "/a%"},
		{"short escape", "/a%4"},
		{"bad hex", "/a%G1"},
		{"bad second hex", "/a%1G"},
		{"percent at end of path before query", "/a%?x"},
		{"invalid utf-8 lone continuation", "/%80"},
		{"invalid utf-8 truncated", "/%C3"},
		{"invalid utf-8 truncated by ascii", "/%C3a"},
		{"overlong dot", "/%C0%AE"},
		{"surrogate", "/%ED%A0%80"},
		{"dot dot above root", "/.."},
		{"dot dot above root deep", "/a/../../b"},
		{"encoded dot dot above root", "/%2e%2E/etc"},
		{"query NUL", "/a?x=\x00"},
		{"query control", "/a?x=\r\n"},
		{"query DEL", "/a?x=\x7f"},
		{"query space", "/a?x=a b"},
		{"query non-ASCII", "/a?x=\xc3\xa9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, q, err := Normalize(tt.in)
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("Normalize(%q) = %q, %q, %v; want ErrBadPath", tt.in, p, q, err)
			}
			if p != "" || q != "" {
				t.Fatalf("Normalize(%q) returned %q, %q with an error; want empty", tt.in, p, q)
			}
		})
	}
}

func TestNormalizeErrorHasReason(t *testing.T) {
	_, _, err := Normalize("/a%2Fb")
	if err == nil || !strings.HasPrefix(err.Error(), ErrBadPath.Error()+": ") {
		t.Fatalf("error = %v; want %q followed by a reason", err, ErrBadPath.Error()+": ")
	}
}

// TestNormalizeOutputDecodes checks that every accepted output is a valid
// escaped path, as the upstream will decode it.
func TestNormalizeOutputDecodes(t *testing.T) {
	for _, in := range []string{"/caf%c3%a9", "/a|b", "/%20", "/a%40"} {
		p, _, err := Normalize(in)
		if err != nil {
			t.Fatalf("Normalize(%q): %v", in, err)
		}
		if _, err := url.PathUnescape(p); err != nil {
			t.Fatalf("url.PathUnescape(%q): %v", p, err)
		}
	}
}

func TestNormalizeCanonicalDoesNotAllocate(t *testing.T) {
	for _, in := range []string{"/api/v1/data/items/42?limit=10", "http://h/api/admin/", "/"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, err := Normalize(in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Normalize(%q) allocs = %v; want 0", in, allocs)
		}
	}
}
