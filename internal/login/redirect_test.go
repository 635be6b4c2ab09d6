package login

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeRedirect(t *testing.T) {
	self, _ := url.Parse("https://gw.example.com")
	r := Redirects{Self: self, Hosts: []string{"app.example.com", "Docs.Example.com:8443"}}
	tests := []struct {
		rd, want string
	}{
		// Allowed.
		{"/", "/"},
		{"/app", "/app"},
		{"/app/page?x=1&y=%20z", "/app/page?x=1&y=%20z"},
		{"/a%2Fb", "/a%2Fb"},
		{"/app#frag", "/app#frag"},
		{"https://gw.example.com/app", "https://gw.example.com/app"},
		{"https://app.example.com/x", "https://app.example.com/x"},
		{"https://APP.example.com/x", "https://APP.example.com/x"},
		{"https://docs.example.com:8443/", "https://docs.example.com:8443/"},
		{"/it's<here>", "/it%27s%3Chere%3E"},

		// Another origin, in every spelling.
		{"//evil.com", "/"},
		{"///evil.com", "/"},
		{"/\\evil.com", "/"},
		{"\\\\evil.com", "/"},
		{"\\/evil.com", "/"},
		{"https:evil.com", "/"},
		{"https:/evil.com", "/"},
		{"http://evil.com", "/"},
		{"https://evil.com", "/"},
		{"https://app.example.com.evil.com/", "/"},
		{"https://app.example.com@evil.com/", "/"},
		{"https://evil.com\\@app.example.com/", "/"},
		{"https://docs.example.com/", "/"}, // allowed only on :8443
		{"/%2F%2Fevil.com", "/"},
		{"%2F%2Fevil.com", "/"},
		{"/%5Cevil.com", "/"},
		{"/%5cevil.com", "/"},
		{"%5C%5Cevil.com", "/"},
		{"/%252F%252Fevil.com", "/"},
		{"/ /evil.com", "/"},
		{" //evil.com", "/"},
		{"/\t/evil.com", "/"},
		{"/\n/evil.com", "/"},
		{"/\r\n/evil.com", "/"},
		{"/%09/evil.com", "/"},
		{"/%0d%0aSet-Cookie:x=y", "/"},
		{"/\x00", "/"},
		{"javascript:alert(1)", "/"},
		{"JavaScript:alert(1)", "/"},
		{"javascript%3Aalert(1)", "/"},
		{"data:text/html,<script>alert(1)</script>", "/"},
		{"evil.com", "/"},
		{"?rd=//evil.com", "/"},
		{"ftp://app.example.com/", "/"},
		{"http://app.example.com/", "/"}, // the gateway is https: no downgrade
		{"/%zz", "/"},

		// The login flow itself would loop.
		{"/auth/login", "/"},
		{"/auth/callback?code=x", "/"},
		{"https://gw.example.com/auth/logout", "/"},
		{"", "/"},
		{"/" + strings.Repeat("a", 2000), "/"},
	}
	for _, tc := range tests {
		name := tc.rd
		if len(name) > 60 {
			name = name[:20] + "...(long)"
		}
		t.Run(name, func(t *testing.T) {
			if got := r.Safe(tc.rd); got != tc.want {
				t.Fatalf("Safe(%q) = %q; want %q", tc.rd, got, tc.want)
			}
		})
	}
}

func TestSafeRedirectHTTPGateway(t *testing.T) {
	self, _ := url.Parse("http://localhost:8080")
	r := Redirects{Self: self}
	for rd, want := range map[string]string{
		"http://localhost:8080/app": "http://localhost:8080/app",
		"http://localhost:8081/app": "/",
		"/app":                      "/app",
	} {
		if got := r.Safe(rd); got != want {
			t.Errorf("Safe(%q) = %q; want %q", rd, got, want)
		}
	}
}

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "//evil.com", "/\\evil", "https://app.example.com/x", "/%2F%2Fe", "https:e"} {
		f.Add(s)
	}
	self, _ := url.Parse("https://gw.example.com")
	r := Redirects{Self: self, Hosts: []string{"app.example.com"}}
	f.Fuzz(func(t *testing.T, rd string) {
		got := r.Safe(rd)
		if got == "/" {
			return
		}
		// Whatever passes resolves, against our origin, to our origin or an
		// allowed host.
		u, err := self.Parse(got)
		if err != nil {
			t.Fatalf("Safe(%q) = %q, which does not parse: %v", rd, got, err)
		}
		if h := strings.ToLower(u.Host); h != "gw.example.com" && h != "app.example.com" {
			t.Fatalf("Safe(%q) = %q resolves to host %q", rd, got, u.Host)
		}
		if strings.ContainsAny(got, "\\\"'<> \t\r\n") {
			t.Fatalf("Safe(%q) = %q holds a character it must not", rd, got)
		}
	})
}
