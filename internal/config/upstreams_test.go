package config

import (
	"errors"
	"strings"
	"testing"
)

func TestUpstreamsProblems(t *testing.T) {
	cfg := `routes:
  - path: /both
    upstream: http://a:1
    upstreams: [http://b:1]
    public: true
  - path: /mixed
    upstreams: [http://a:1, https://b:1, http://a:1, h2c://c:1/other]
    public: true
  - path: /hc
    upstreams: [http://a:1]
    health_check: {path: healthz, timeout: 10s}
    public: true
  - path: /tls
    upstream: http://a:1
    upstream_tls: {cert_file: c.pem, insecure_skip_verify: true, ca_file: ca.pem}
    public: true
  - path: /empty
    upstreams: []
    public: true
`
	_, err := Parse("gw.yaml", []byte(cfg), env(nil))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	msg := err.Error()
	for _, w := range []string{
		"gw.yaml:4: routes[0].upstreams: set upstream or upstreams, not both",
		`gw.yaml:7: routes[1].upstreams[1]: "https://b:1": the upstreams of a route must differ only in host and port`,
		"gw.yaml:7: routes[1].upstreams[2]: a:1 is also upstreams[0]",
		`routes[1].upstreams[3]: "h2c://c:1/other": the upstreams of a route must differ only in host and port`,
		"gw.yaml:11: routes[2].health_check.path: required: an absolute path",
		"gw.yaml:11: routes[2].health_check.timeout: must be positive and at most interval",
		"gw.yaml:15: routes[3].upstream_tls: applies to https:// upstreams only",
		"routes[3].upstream_tls: cert_file and key_file go together",
		"routes[3].upstream_tls.insecure_skip_verify: with ca_file",
		"gw.yaml:18: routes[4].upstreams: at least one upstream URL is required",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q; got:\n%s", w, msg)
		}
	}
}

func TestUpstreamsDefaultsAndWarning(t *testing.T) {
	cfg := `routes:
  - path: /b
    upstreams: [h2c://a:1, h2c://b:1]
    health_check: {path: /healthz}
    public: true
  - path: /t
    upstream: https://x:1
    upstream_tls: {insecure_skip_verify: true}
    public: true
`
	c, err := Parse("gw.yaml", []byte(cfg), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Routes[0].HealthCheck
	if h.Interval.D() != DefaultHealthInterval || h.Timeout.D() != DefaultHealthTimeout || h.UnhealthyAfter != 3 || h.HealthyAfter != 2 {
		t.Errorf("health check defaults: %+v", h)
	}
	if got := c.Routes[0].Targets(); len(got) != 2 || got[1].Host != "b:1" {
		t.Errorf("targets %v", got)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0].String(), "gw.yaml:8: routes[1].upstream_tls.insecure_skip_verify: warning:") {
		t.Errorf("warnings %v", w)
	}
}
