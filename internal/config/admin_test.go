package config

import (
	"strings"
	"testing"
)

// TestAdminWarnings: an admin listener off loopback without a token is
// warned about; on loopback, or with a token, it is not.
func TestAdminWarnings(t *testing.T) {
	for _, tc := range []struct {
		admin, token string
		warn         bool
	}{
		{"127.0.0.1:9090", "", false},
		{"[::1]:9090", "", false},
		{"localhost:9090", "", false},
		{"", "", false},
		{"0.0.0.0:9090", "", true},
		{":9090", "", true},
		{"10.0.0.5:9090", "", true},
		{"0.0.0.0:9090", "admin-token", false},
	} {
		y := strings.Replace(validYAML, `  listen: ":8080"`, `  listen: ":8080"
  admin_listen: "`+tc.admin+`"`, 1)
		cfg, err := Parse("gw.yaml", []byte(y), env(map[string]string{"ACCESS_SECRET": secret32}))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		cfg.Server.AdminTokenFile = tc.token
		w := cfg.Warnings()
		if got := len(w) > 0; got != tc.warn {
			t.Errorf("admin_listen %q, token %q: warnings %v, want warned %v", tc.admin, tc.token, w, tc.warn)
		}
		if tc.warn && (w[0].Line == 0 || !strings.Contains(w[0].Message, "admin_token_file")) {
			t.Errorf("warning %+v: want the line of admin_listen and a pointer to admin_token_file", w[0])
		}
	}
}

// TestTracingConfig: tracing is off by default, and a bad endpoint or
// ratio is refused with its line.
func TestTracingConfig(t *testing.T) {
	cfg, err := Parse("gw.yaml", []byte(validYAML), env(map[string]string{"ACCESS_SECRET": secret32}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tracing.OTLPEndpoint != "" || *cfg.Tracing.SampleRatio != 0.1 || cfg.Tracing.ServiceName != "authgateway" {
		t.Errorf("tracing defaults = %+v", cfg.Tracing)
	}
	for _, bad := range []string{"tracing: {otlp_endpoint: 'jaeger:4318'}", "tracing: {otlp_endpoint: 'http://j:4318', sample_ratio: 2}"} {
		_, err := Parse("gw.yaml", []byte(validYAML+bad+"\n"), env(map[string]string{"ACCESS_SECRET": secret32}))
		if err == nil || !strings.Contains(err.Error(), "tracing.") {
			t.Errorf("%s: err = %v, want a tracing problem", bad, err)
		}
	}
}
