package server

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/config"
)

// restartBase is a config that every case of TestRestartKeys edits once.
const restartBase = `server:
  listen: "127.0.0.1:8080"
  admin_listen: "127.0.0.1:9090"
  max_body_bytes: 1000
  trusted_proxies: ["10.0.0.0/8"]
  tls: {cert_file: c.pem, key_file: k.pem, min_version: "1.2"}
tokens:
  issuer: i
  audience: a
  signing_keys: [{kid: k1, algorithm: HS256, secret_file: s}]
strategies:
  jwt: {type: jwt, issuer: i, audience: a, algorithms: [HS256], keys: tokens}
  idp: {type: oauth2, issuer_url: "https://idp.example", client_id: gw, client_secret: x, login: true, redirect_url: "https://gw.example/auth/callback"}
routes:
  - {name: api, path: /api, upstream: "http://127.0.0.1:9000", strategies: [jwt], roles: [reader]}
log: {level: info}
`

func TestRestartKeys(t *testing.T) {
	dir := t.TempDir()
	// Parsing reads the files (not what they hold beyond the secret).
	for name, content := range map[string]string{"s": strings.Repeat("k", 40), "c.pem": "c", "k.pem": "k", "c2.pem": "c", "k2.pem": "k"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	parse := func(t *testing.T, y string) *config.Config {
		t.Helper()
		cfg, err := config.Parse(filepath.Join(dir, "gw.yaml"), []byte(y), os.LookupEnv)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		return cfg
	}
	started := parse(t, restartBase)
	// Login turned on after start waits for the session store a restart builds.
	noLogin := parse(t, strings.Replace(restartBase, "login: true, ", "", 1))
	if got := restartKeys(noLogin, started); !slices.Equal(got, []string{"strategies.idp.login"}) {
		t.Errorf("login on: restartKeys = %q, want strategies.idp.login", got)
	}
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"listen", `listen: "127.0.0.1:8080"`, `listen: "127.0.0.1:8081"`, []string{"server.listen"}},
		{"admin listen", `admin_listen: "127.0.0.1:9090"`, `admin_listen: ""`, []string{"server.admin_listen"}},
		{"trusted proxies", `["10.0.0.0/8"]`, `["10.0.0.0/8", "192.168.0.0/16"]`, []string{"server.trusted_proxies"}},
		{"tls min version", `min_version: "1.2"`, `min_version: "1.3"`, []string{"server.tls.min_version"}},
		{"tls off", "  tls: {cert_file: c.pem, key_file: k.pem, min_version: \"1.2\"}\n", "", []string{"server.tls"}},
		{"log level", "level: info", "level: debug", []string{"log.level"}},
		{"token issuer", "issuer: i\n  audience", "issuer: j\n  audience", []string{"tokens.issuer"}},
		// What a reload applies.
		{"certificate files", "cert_file: c.pem, key_file: k.pem", "cert_file: c2.pem, key_file: k2.pem", nil},
		{"body limit", "max_body_bytes: 1000", "max_body_bytes: 2000", nil},
		{"route roles", "roles: [reader]", "roles: [admin]", nil},
		{"jwt leeway", "keys: tokens}", "keys: tokens, leeway: 1m}", nil},
		{"signing key kid", "kid: k1", "kid: k2", nil},
		// The login is rebuilt with the rest (issue 15): its settings, and
		// turning it off.
		{"login redirect", "redirect_url: \"https://gw.example/auth/callback\"", "redirect_url: \"https://gw2.example/auth/callback\"", nil},
		{"login client secret", "client_secret: x,", "client_secret: y,", nil},
		{"login off", "login: true, ", "", nil},
		{"nothing", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(restartBase, tt.old) {
				t.Fatalf("base config lacks %q", tt.old)
			}
			got := restartKeys(started, parse(t, strings.Replace(restartBase, tt.old, tt.new, 1)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("restartKeys = %q, want %q", got, tt.want)
			}
		})
	}
}
