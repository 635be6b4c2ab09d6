package proxy

import (
	"net/url"
	"testing"
)

func TestAllowsMethod(t *testing.T) {
	u := &url.URL{Scheme: "http", Host: "up"}
	table, err := NewTable([]*Route{
		{Name: "any", Prefix: "/any", Upstream: u},
		{Name: "rw", Prefix: "/rw", Upstream: u, Methods: []string{"GET", "POST"}},
		{Name: "diag", Prefix: "/diag", Upstream: u, Methods: []string{"GET", "TRACE", "CONNECT"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	route := func(name string) *Route {
		rt, _ := table.Match("", "/"+name, "GET")
		return rt
	}
	tests := []struct {
		route, method, query string
		want                 bool
	}{
		{"any", "GET", "", true},
		{"any", "PROPFIND", "", true},
		{"any", "TRACE", "", false},
		{"any", "TRACK", "", false},
		{"any", "CONNECT", "", false},
		{"any", "trace", "", false},
		{"any", "Connect", "", false},
		{"any", "POST", "_method=DELETE", true},
		{"any", "POST", "_method=TRACE", false},
		{"diag", "TRACE", "", true},
		{"diag", "CONNECT", "", true},
		{"diag", "trace", "", false}, // methods are case-sensitive; TRACE was listed, not trace
		{"diag", "TRACK", "", false},
		{"rw", "HEAD", "", true},
		{"rw", "DELETE", "", false},
		{"rw", "TRACE", "", false},
		{"rw", "POST", "_method=DELETE", false},
		{"rw", "GET", "_method=DELETE", false},
		{"rw", "POST", "_method=delete", false},
		{"rw", "POST", "_METHOD=DELETE", false},
		{"rw", "POST", "%5Fmethod=DELETE", false},
		{"rw", "POST", "%5F%6D%65%74%68%6F%64=DELETE", false},
		{"rw", "POST", "_method=%44ELETE", false},
		{"rw", "POST", ".method=DELETE", false},  // PHP reads "." as "_"
		{"rw", "POST", "+method=DELETE", false},  // "+" is a space, which PHP reads as "_"
		{"rw", "POST", "a=1;_method=PUT", false}, // ";" separates parameters in some parsers
		{"rw", "POST", "a=1&_method=POST&_method=DELETE", false},
		{"rw", "POST", "_method=%zz", false}, // undecodable: refused, a framework may read it otherwise
		{"rw", "POST", "_method=POST", true},
		{"rw", "POST", "_method=get", true},
		{"rw", "POST", "_method=HEAD", true},
		{"rw", "POST", "_method=", true},
		{"rw", "POST", "_method", true},
		{"rw", "POST", "x_method=DELETE&method=DELETE&__method=DELETE&_methods=DELETE", true},
		{"rw", "POST", "q=_method%3DDELETE", true},
	}
	for _, tc := range tests {
		if got := route(tc.route).allowsMethod(tc.method, tc.query); got != tc.want {
			t.Errorf("route %s: allowsMethod(%q, %q) = %v, want %v", tc.route, tc.method, tc.query, got, tc.want)
		}
	}
	if got := route("any").allow; got != defaultAllow {
		t.Errorf("Allow of a route without methods = %q, want %q", got, defaultAllow)
	}
}
