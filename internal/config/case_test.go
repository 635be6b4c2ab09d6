package config

import (
	"strings"
	"testing"
)

// TestRoutePathsDifferingOnlyInCase: an upstream that ignores case cannot
// tell such routes apart, so they are a config error with file and line
// unless server.case_sensitive_upstreams says no upstream ignores case.
func TestRoutePathsDifferingOnlyInCase(t *testing.T) {
	const routes = `routes:
  - {path: /api/keys, upstream: "http://x", public: true}
  - {path: /API/Keys, upstream: "http://x", public: true}
  - {path: "/api/%E2%84%AAeys/", upstream: "http://x", public: true}
  - {path: /api/key%C5%BF, upstream: "http://x", public: true}
  - {path: /api/keys/x, upstream: "http://x", public: true}
`
	_, err := Parse("gw.yaml", []byte(routes), env(nil))
	if err == nil {
		t.Fatal("want an error for route paths that differ only in case")
	}
	for _, want := range []string{
		`gw.yaml:3: routes[1].path: path "/API/Keys" differs only in case from routes[0].path "/api/keys"`,
		`gw.yaml:4: routes[2].path: path "/api/%E2%84%AAeys/" differs only in case from routes[1].path "/API/Keys"`,
		`gw.yaml:5: routes[3].path: path "/api/key%C5%BF" differs only in case`,
		"server.case_sensitive_upstreams",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "routes[4]") {
		t.Errorf("a longer path was refused:\n%v", err)
	}

	cfg, err := Parse("gw.yaml", []byte("server:\n  case_sensitive_upstreams: true\n"+routes), env(nil))
	if err != nil {
		t.Fatalf("with case_sensitive_upstreams: true: %v", err)
	}
	if !cfg.Server.CaseSensitiveUpstreams {
		t.Error("case_sensitive_upstreams: true was not read")
	}
	cfg, err = Parse("gw.yaml", []byte(routes[:strings.Index(routes, "  - {path: /API")]), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.CaseSensitiveUpstreams {
		t.Error("case_sensitive_upstreams defaults to true, want false")
	}
}
