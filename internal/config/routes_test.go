package config

import (
	"strings"
	"testing"
)

// TestRouteHostsMethodsHeaders: what routes may share, and the problems of
// host, request_headers and response_headers, each with file and line.
func TestRouteHostsMethodsHeaders(t *testing.T) {
	const routes = `routes:
  - {name: r1, host: Legacy.Example.com., path: /legacy, methods: [GET], upstream: "http://x", public: true}
  - {name: r2, host: legacy.example.com, path: /legacy, methods: [POST, get], upstream: "http://x", public: true}
  - {name: r3, host: legacy.example.com, path: /legacy, methods: [HEAD], upstream: "http://x", public: true}
  - {name: r4, host: legacy.example.com, path: /legacy, upstream: "http://x", public: true}
  - {name: r5, host: legacy.example.com, path: /legacy, upstream: "http://x", public: true}
  - {name: r6, path: /legacy, upstream: "http://x", public: true}
  - {name: r7, host: "*.example.com", path: /legacy, upstream: "http://x", public: true}
  - {name: r8, host: "legacy.example.com:8080", path: /a, upstream: "http://x", public: true}
  - {name: r9, host: "*.com", path: /b, upstream: "http://x", public: true}
  - {name: r10, host: "a.*.com", path: /c, upstream: "http://x", public: true}
  - {name: r11, host: legacy.example.com, path: /LEGACY, methods: [PUT], upstream: "http://x", public: true}
  - name: r12
    path: /t
    upstream: "http://x"
    public: true
    strip_prefix: true
    request_headers:
      X-User: "{subject}"
      x_user: "{email}"
      X-Bad: "{subjct}"
      X-Auth-Subject: "{subject}"
      X-Forwarded-Prefix: "{subject}"
      "bad name": "x"
    remove_request_headers: ["ok", "no good"]
    response_headers:
      X-Frame-Options: DENY
      Content-Length: "5"
      X-Empty: ""
      Set-Cookie: "a=b"
`
	_, err := Parse("gw.yaml", []byte(routes), env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`gw.yaml:3: routes[1].methods: method GET overlaps routes[0] on path "/legacy" on host "legacy.example.com"`,
		`gw.yaml:4: routes[2].methods: method HEAD overlaps routes[0]`,
		`gw.yaml:6: routes[4].path: duplicate path "/legacy" on host "legacy.example.com" (also routes[3])`,
		`gw.yaml:9: routes[7].host: host "legacy.example.com:8080": a name without port`,
		`gw.yaml:10: routes[8].host: host "*.com": a wildcard needs at least two labels`,
		`gw.yaml:11: routes[9].host: host "a.*.com"`,
		`gw.yaml:12: routes[10].path: path "/LEGACY" differs only in case from routes[4].path "/legacy"`,
		`gw.yaml:20: routes[11].request_headers.x_user: header "x_user" is also set as "X-User"`,
		`gw.yaml:21: routes[11].request_headers.X-Bad: template "{subjct}": unknown placeholder {subjct}`,
		`gw.yaml:22: routes[11].request_headers.X-Auth-Subject: X-Auth-Subject: X-Auth-* are the gateway's identity headers`,
		`routes[11].request_headers: X-Forwarded-Prefix is set by the gateway with strip_prefix`,
		`gw.yaml:24: routes[11].request_headers.bad name: "bad name" is not a header name`,
		`routes[11].remove_request_headers[1]: "no good" is not a header name`,
		`gw.yaml:28: routes[11].response_headers.Content-Length: Content-Length: a framing header`,
		`gw.yaml:29: routes[11].response_headers.X-Empty: value must be non-empty`,
		`gw.yaml:30: routes[11].response_headers.Set-Cookie: Set-Cookie: set per answer by the upstream or the gateway`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
	for _, fine := range []string{"routes[5]", "routes[6]", "routes[10].methods", "X-Frame-Options", "request_headers.X-User:"} {
		if strings.Contains(err.Error(), fine) {
			t.Errorf("%s was refused:\n%v", fine, err)
		}
	}
	ok := `routes:
  - {name: read, host: Legacy.Example.COM., path: /legacy, methods: [GET, HEAD], upstream: "http://x", public: true}
  - {name: write, host: legacy.example.com, path: /legacy, methods: [POST, DELETE], upstream: "http://x", public: true}
  - {name: rest, host: legacy.example.com, path: /legacy, upstream: "http://x", public: true}
  - {name: any, path: /legacy, upstream: "http://x", public: true}
`
	cfg, err := Parse("gw.yaml", []byte(ok), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Routes[0].HostName; got != "legacy.example.com" {
		t.Errorf("HostName = %q", got)
	}
}
