package config

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestValidateIsPure: Validate reads the provisioned config and nothing
// else: it changes no field, reads no file (a secret file that does not
// exist is LoadSecrets' problem, not Validate's), and says the same twice.
func TestValidateIsPure(t *testing.T) {
	y := `server:
  tls: {cert_file: missing-cert.pem, key_file: missing-key.pem}
redis: {url_file: missing-redis-url}
tokens:
  issuer: i
  audience: a
  signing_keys: [{kid: k1, algorithm: HS256, secret_file: missing-secret}]
strategies:
  idp: {type: oauth2, issuer_url: "https://idp.example", client_id: gw, client_secret_file: missing-client-secret, login: true, redirect_url: "https://gw.example/cb"}
  keys: {type: api_key, prefixes: [pk_a], file: keys.yaml}
routes:
  - {path: /api, upstream: "http://127.0.0.1:9000", strategies: [idp], methods: [get], cors: {allowed_origins: ["https://a.example"]}}
`
	dir := t.TempDir()
	cfg := decodeOnly(t, filepath.Join(dir, "gw.yaml"), y)
	cfg.Provision()
	before := snapshot(cfg)
	if ps := cfg.Validate(); len(ps) != 0 {
		t.Fatalf("Validate = %v, want no problem (only the files are missing)", ps)
	}
	if !reflect.DeepEqual(snapshot(cfg), before) {
		t.Error("Validate changed the config")
	}
	if ps := cfg.Validate(); len(ps) != 0 {
		t.Errorf("second Validate = %v", ps)
	}
	// The files are LoadSecrets' to read, and each missing one is named.
	ps := cfg.LoadSecrets()
	var got []string
	for _, p := range ps {
		got = append(got, p.Path)
	}
	want := []string{"redis.url_file", "tokens.signing_keys[0].secret_file", "strategies.idp.client_secret_file", "server.tls.cert_file", "server.tls.key_file"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadSecrets problems at %q, want %q", got, want)
	}
}

// TestProvisionAppliesEachDefaultOnce: an unset key gets its default, a
// key written with a zero value keeps it, and a second Provision changes
// nothing.
func TestProvisionAppliesEachDefaultOnce(t *testing.T) {
	y := `server:
  admin_listen: ""
  listen:
  upstream_timeout: 0s
strategies:
  idp: {type: oauth2, issuer_url: "https://idp.example", client_id: gw, client_secret: s, cache_ttl: 0s}
  idp2: {type: oauth2, issuer_url: "https://idp.example", client_id: gw, client_secret: s, login: true, redirect_url: "https://gw.example/cb"}
  jwt: {type: jwt, issuer: i, audience: a, algorithms: [HS256], keys: tokens}
  keys: {type: api_key, prefixes: [pk_a], file: keys.yaml}
routes:
  - {path: /api, upstream: "http://127.0.0.1:9000", strategies: [jwt], rate_limit: {limit: 1, period: 1m}}
`
	cfg := decodeOnly(t, "gw.yaml", y)
	cfg.Provision()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"admin_listen written empty", cfg.Server.AdminListen, ""},
		{"listen null", cfg.Server.Listen, DefaultListen},
		{"upstream_timeout written 0s", cfg.Server.UpstreamTimeout.D(), time.Duration(0)},
		{"shutdown_timeout unset", cfg.Server.ShutdownTimeout.D(), DefaultShutdownTimeout},
		{"cache_ttl written 0s", cfg.Strategies["idp"].CacheTTL.D(), time.Duration(0)},
		{"cache_ttl unset", cfg.Strategies["idp2"].CacheTTL.D(), DefaultCacheTTL},
		{"login scopes unset", strings.Join(cfg.Strategies["idp2"].Scopes, " "), "openid email profile"},
		{"roles claim", strings.Join(cfg.Strategies["jwt"].RolesClaim, ","), DefaultRolesClaim},
		{"session cookie", cfg.Strategies["jwt"].Cookie, DefaultSessionCookie},
		{"api key header", cfg.Strategies["keys"].Header, DefaultAPIKeyHeader},
		{"route name", cfg.Routes[0].Name, "/api"},
		{"route body limit", cfg.Routes[0].MaxBodyBytes, int64(DefaultMaxBodyBytes)},
		{"quota by", cfg.Routes[0].RateLimit.By, "subject"},
		{"auth failures", cfg.RateLimits.AuthFailures.Limit, int64(DefaultAuthFailureLimit)},
		{"auth events", *cfg.Log.AuthEvents, true},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	before := snapshot(cfg)
	cfg.Provision()
	if !reflect.DeepEqual(snapshot(cfg), before) {
		t.Error("a second Provision changed the config")
	}
}

// decodeOnly is Parse's decoding, without Provision, Validate and
// LoadSecrets.
func decodeOnly(t *testing.T, path, y string) *Config {
	t.Helper()
	cfg, l, err := decode(path, []byte(y), env(nil))
	if err != nil || len(l.problems) > 0 {
		t.Fatalf("decoding: %v %v", err, l.problems)
	}
	return cfg
}

// snapshot is what a config holds, for comparison: its exported fields and
// the trusted proxies derived from them.
func snapshot(c *Config) string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return string(b) + fmt.Sprint(c.Server.TrustedPrefixes())
}
