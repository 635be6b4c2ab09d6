package routing

import (
	"strings"
	"testing"
)

func TestTableMatch(t *testing.T) {
	tb := NewTable[int]()
	routes := map[string]int{"/api": 1, "/api/admin": 2, "/api/v1/data": 3, "/caf%C3%A9": 4, "/.well-known/jwks.json": 5}
	for p, v := range routes {
		if err := tb.Add(p, v); err != nil {
			t.Fatalf("Add(%q): %v", p, err)
		}
	}
	tests := []struct {
		path       string
		wantPrefix string // "" means no match
	}{
		{"/api/admin", "/api/admin"},
		{"/api/admin/", "/api/admin"},
		{"/api/admin/x/y", "/api/admin"},
		{"/api/administrator", "/api"},
		{"/api/admin-old", "/api"},
		{"/api/adm", "/api"},
		{"/API/admin", ""},
		{"/api/ADMIN", "/api"},
		{"/api", "/api"},
		{"/api/", "/api"},
		{"/apix", ""},
		{"/ap", ""},
		{"/api/v1", "/api"},
		{"/api/v1/data", "/api/v1/data"},
		{"/api/v1/datax", "/api"},
		{"/api/v1/data/1", "/api/v1/data"},
		{"/caf%C3%A9/menu", "/caf%C3%A9"},
		{"/.well-known/jwks.json", "/.well-known/jwks.json"},
		{"/.well-known", ""},
		{"/", ""},
		{"", ""},
		{"api/admin", ""},
		{"/api//admin", "/api"}, // not normalised: "//" is not a segment boundary for /api/admin
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			v, prefix, res := tb.Match(tt.path)
			if tt.wantPrefix == "" {
				if res != NoRoute {
					t.Fatalf("Match(%q) = %d, %q; want no match", tt.path, v, prefix)
				}
				return
			}
			if res != Matched || prefix != tt.wantPrefix || v != routes[tt.wantPrefix] {
				t.Fatalf("Match(%q) = %d, %q, %v; want %d, %q", tt.path, v, prefix, res, routes[tt.wantPrefix], tt.wantPrefix)
			}
		})
	}
}

func TestTableRootMatchesEverything(t *testing.T) {
	tb := NewTable[string]()
	if err := tb.Add("/", "root"); err != nil {
		t.Fatal(err)
	}
	if err := tb.Add("/a", "a"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/": "root", "/x": "root", "/ab": "root", "/a": "a", "/a/b": "a", "//a": "root"} {
		v, _, res := tb.Match(path)
		if res != Matched || v != want {
			t.Errorf("Match(%q) = %q, %v; want %q", path, v, res, want)
		}
	}
	if _, _, res := tb.Match("x"); res != NoRoute {
		t.Errorf("Match(%q) matched; want no match for a path without a leading slash", "x")
	}
}

func TestTableAddErrors(t *testing.T) {
	tb := NewTable[int]()
	if err := tb.Add("/api", 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api", "/api/", "", "api", "/a//b", "/a/./b", "/A%2fb", "/%61"} {
		if err := tb.Add(p, 2); err == nil {
			t.Errorf("Add(%q) succeeded; want an error", p)
		}
	}
	if v, _, _ := tb.Match("/api"); v != 1 {
		t.Errorf("after failed Adds, Match(/api) = %d; want 1", v)
	}
}

func TestCanonicalPrefix(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  string // substring of the error; "" means success
	}{
		{"/", "/", ""},
		{"/api/admin", "/api/admin", ""},
		{"/api/admin/", "/api/admin", ""},
		{"/.well-known/jwks.json", "/.well-known/jwks.json", ""},
		{"/a-b_c~d.e/0", "/a-b_c~d.e/0", ""},
		{"/%61pi", "/api", ""},
		{"/caf%c3%a9", "/caf%C3%A9", ""},
		{"/a%20b", "/a%20b", ""},
		{"/a|b", "/a%7Cb", ""},
		{"", "", "empty"},
		{"api", "", "must start with"},
		{"http://h/api", "", "must start with"},
		{"/api?x=1", "", "query"},
		{"/api#x", "", "fragment"},
		{"//", "", "empty segment"},
		{"/api//admin", "", "empty segment"},
		{"/api/admin//", "", "empty segment"},
		{"/api/./admin", "", "dot segment"},
		{"/api/../admin", "", "dot segment"},
		{"/api/%2e%2e", "", "dot segment"},
		{"/api/..", "", "dot segment"},
		{"/api;x", "", "bad"},
		{"/api%2Fadmin", "", "bad"},
		{"/api\\admin", "", "bad"},
		{"/api/caf\xc3\xa9", "", "bad"},
		{"/users/@me", "", "'@'"},
		{"/a%40b", "", "'@'"},
		{"/a,b", "", "','"},
		{"/a:b", "", "':'"},
		{"/a+b", "", "'+'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CanonicalPrefix(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CanonicalPrefix(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CanonicalPrefix(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			// A canonical prefix is the canonical spelling of itself as a request
			// path, or requests spelt canonically could never reach it.
			if p, _, err := Normalize(got); err != nil || p != got {
				t.Fatalf("Normalize(%q) = %q, %v; want it unchanged", got, p, err)
			}
			if again, err := CanonicalPrefix(got); err != nil || again != got {
				t.Fatalf("CanonicalPrefix(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tb := newAttackTable(t)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, res := tb.Match("/api/admin/users/42"); res != Matched {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Fatalf("Match allocs = %v; want 0", allocs)
	}
}
