package config

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/routing"
)

// fuzzBroken are configs that are wrong in one way each, for the corpus:
// YAML syntax, types, structure, env references, and each validation rule.
var fuzzBroken = []string{
	"",
	"~",
	"[]",
	"routes:\n",
	"routes: [~]\n",
	"routes: [{path: /, upstream: \"http://x\", public: true}\n",
	"routes:\n\t- path: /\n",
	"routes: &a [*a]\n",
	"a: &a [*a, *a, *a, *a]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n",
	"server: {listen: ${L}}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"server:\n  listen: ${L:-:9000}\n  max_header_bytes: ${N:-lots}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"server:\n  listen: \"${L\"\nroutes: [{path: /, upstream: \"$${X}\", public: true}]\n",
	"routes: [{path: /, upstream: \"${U:-http://${H}}\", public: true}]\n",
	"routes:\n  - {path: /api, upstream: \"http://x\", public: true}\n  - {path: /api/, upstream: \"http://y\", public: true}\n",
	"routes:\n  - {path: /a/../b, upstream: \"http://x\", public: true}\n  - {path: \"/a%2Fb\", upstream: \"http://x\", public: true}\n",
	"routes:\n  - {path: \"/caf%c3%a9\", upstream: \"http://x\", public: true}\n  - {path: \"/%61\", upstream: \"http://x\", public: true}\n",
	"routes: [{path: /, upstream: \"http://u:p@x\", public: true}]\n",
	"routes: [{path: /, upstream: \"http://x/base?q=1#f\", public: true}]\n",
	"routes: [{path: /, upstream: \"http:/x\", public: true}]\n",
	"routes: [{path: /, upstream: \"//x\", public: true}]\n",
	"routes: [{path: /, upstream: \"http://[::1]:80/p\", public: true, methods: [get, FETCH]}]\n",
	"routes: [{path: /, upstream: \"http://x\", strategies: []}]\n",
	"routes: [{path: /, upstream: \"http://x\", public: true, roles: [admin]}]\n",
	"routes: [{path: /, upstream: \"http://x\", public: true, rate_limit: {limit: 0, period: 0s, by: subject}}]\n",
	"routes: [{path: /, upstream: \"http://x\", public: true, cors: {allowed_origins: [\"*\"], allow_credentials: true}}]\n",
	"routes: [{path: /, upstream: \"http://x\", public: true, cors: {allowed_origins: [\"https://*.example.com\", \"https://A.example\", \"null\"]}}]\n",
	"routes: [{path: /, upstream: \"http://x\", public: true, identity_token: true}]\n",
	"server: {https_only: true}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"server: {https_only: true, behind_tls_proxy: true, trusted_proxies: [\"10.0.0.0/33\", \"::ffff:10.0.0.1\"]}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"server: {tls: {cert_file: c, min_version: \"1.1\"}}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"server: {max_header_bytes: -1, read_header_timeout: -1s, idle_timeout: 1d}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"redis: {url: \"http://x\"}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"redis: {url: \"redis://:pw@x:6379/0\", url_file: f}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"tokens: {access_ttl: 16m, refresh_ttl: 0s, identity_token_ttl: 10m}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"tokens:\n  signing_keys:\n    - {kid: k, algorithm: HS256, secret: short}\n    - {kid: k, algorithm: none}\n    - {algorithm: RS256, secret: x}\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"strategies:\n  j: {type: jwt, issuer: a, audience: b, algorithms: [HS256], jwks_url: \"https://idp/jwks\"}\n  k: {type: api_key, prefixes: [\"bad prefix\"]}\n  o: {type: oauth2, login: true}\n  n: ~\n  s: {type: saml}\nroutes: [{path: /, upstream: \"http://x\", strategies: [j, j, nope]}]\n",
	"routes: [{path: /, upstream: \"http://x\", public: true, unknown: 1}]\nservr: {}\n",
	"server:\n  listen: :1\n  listen: :2\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n",
	"routes: [{path: /, upstream: \"http://x\", public: yes, max_body_bytes: 1e99}]\n",
	"<<: {routes: [{path: /, upstream: \"http://x\", public: true}]}\n",
	"routes: !!map {}\n",
	"\xff\xfe\x00r\x00o\x00u\x00t\x00e\x00s\x00",
}

// fuzzEnv is the environment of the fuzzed configs: a valid secret, a
// secret file, and nothing else.
func fuzzEnv(dir string) func(string) (string, bool) {
	secretFile := filepath.Join(dir, "access-secret")
	_ = os.WriteFile(secretFile, []byte(secret32+"\n"), 0o600)
	return env(map[string]string{
		"ACCESS_SECRET": secret32, "ACCESS_SECRET_FILE": secretFile,
		"API_KEYS_FILE": filepath.Join(dir, "api-keys.yaml"), "REDIS_URL": "", "L": ":8080",
	})
}

// FuzzConfigParse: Parse never panics, fails with Errors that name the file,
// and a config it accepts holds only what validation promises: canonical
// route paths (what requests are normalised to), absolute http(s) upstream
// URLs without credentials, strategies that exist, and the security rules.
func FuzzConfigParse(f *testing.F) {
	examples, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2]) // cut mid-way
	}
	f.Add([]byte(validYAML))
	for _, s := range fuzzBroken {
		f.Add([]byte(s))
	}
	lookup := fuzzEnv(f.TempDir())
	f.Fuzz(func(t *testing.T, data []byte) {
		// A *_file value may name any path; keep the fuzzer off devices
		// (reading /dev/zero never ends) — the operator writes the config.
		for _, dev := range []string{"/dev", "/proc", "/sys"} {
			if bytes.Contains(data, []byte(dev)) {
				t.Skip()
			}
		}
		cfg, err := Parse("f.yaml", data, lookup)
		if err != nil {
			checkProblems(t, err)
			if _, err2 := Parse("f.yaml", data, lookup); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("second Parse = %v, first = %v: not deterministic", err2, err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		checkAccepted(t, cfg)
	})
}

func checkProblems(t *testing.T, err error) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error %T %v is not a non-empty Errors", err, err)
	}
	for _, p := range errs {
		if p.File != "f.yaml" || p.Message == "" || p.Line < 0 {
			t.Fatalf("problem %+v: want file f.yaml, a line >= 0 and a message", p)
		}
	}
	if err.Error() == "" {
		t.Fatal("empty error text")
	}
}

func checkAccepted(t *testing.T, cfg *Config) {
	t.Helper()
	if len(cfg.Routes) == 0 {
		t.Fatal("accepted a config without routes")
	}
	// Routes on one host and path: disjoint methods (GET counts as HEAD),
	// at most one without methods.
	type served struct {
		methods map[string]bool
		rest    bool
	}
	seen := map[string]*served{}
	for i, r := range cfg.Routes {
		if r == nil {
			t.Fatalf("routes[%d] is nil", i)
		}
		cp, err := CanonicalRoutePath(r.Path)
		if err != nil || cp != r.CanonicalPath {
			t.Fatalf("routes[%d].path %q: CanonicalPath %q, canonical form %q, %v", i, r.Path, r.CanonicalPath, cp, err)
		}
		// The table matches normalised request paths: a route path must
		// be one, or no request could ever reach it.
		if p, q, err := routing.Normalize(cp); err != nil || p != cp || q != "" {
			t.Fatalf("routes[%d] canonical path %q normalises to %q, %q, %v", i, cp, p, q, err)
		}
		if cp != "/" && strings.HasSuffix(cp, "/") {
			t.Fatalf("routes[%d] canonical path %q ends in /", i, cp)
		}
		key := r.HostName + " " + cp
		sv := seen[key]
		if sv == nil {
			sv = &served{methods: map[string]bool{}}
			seen[key] = sv
		}
		if len(r.Methods) == 0 {
			if sv.rest {
				t.Fatalf("routes[%d]: a second route without methods on %q accepted", i, key)
			}
			sv.rest = true
		}
		ms := slices.Clone(r.Methods)
		if slices.Contains(ms, "GET") {
			ms = append(ms, "HEAD")
		}
		slices.Sort(ms)
		for _, m := range slices.Compact(ms) {
			if sv.methods[m] {
				t.Fatalf("routes[%d]: method %s on %q served twice", i, m, key)
			}
			sv.methods[m] = true
		}
		// One upstream, or a list of them (upstreams), never both nor none.
		targets := r.UpstreamURLs
		if r.UpstreamURL != nil {
			targets = []*url.URL{r.UpstreamURL}
		}
		if len(targets) == 0 || (r.UpstreamURL != nil && len(r.Upstreams) > 0) {
			t.Fatalf("routes[%d]: upstream %q and upstreams %q accepted", i, r.Upstream, r.Upstreams)
		}
		for _, u := range targets {
			if u == nil || !slices.Contains(upstreamSchemes, u.Scheme) || u.Host == "" || u.User != nil ||
				u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
				t.Fatalf("routes[%d] upstream %q accepted as %#v", i, r.Upstream, u)
			}
		}
		if r.Public != (len(r.Strategies) == 0) {
			t.Fatalf("routes[%d]: public %v with strategies %q", i, r.Public, r.Strategies)
		}
		for _, s := range r.Strategies {
			if cfg.Strategies[s] == nil {
				t.Fatalf("routes[%d] names undefined strategy %q", i, s)
			}
		}
		for _, m := range r.Methods {
			if !slices.Contains(httpMethods, m) {
				t.Fatalf("routes[%d]: method %q accepted", i, m)
			}
		}
		if c := r.CORS; c != nil && c.AllowCredentials && slices.Contains(c.AllowedOrigins, "*") {
			t.Fatalf("routes[%d]: CORS \"*\" with credentials accepted", i)
		}
		if r.IdentityToken && (len(cfg.Tokens.SigningKeys) == 0 || strings.HasPrefix(cfg.Tokens.SigningKeys[0].Algorithm, "HS")) {
			t.Fatalf("routes[%d]: identity_token without an asymmetric first signing key", i)
		}
	}
	tk := cfg.Tokens
	if tk.AccessTTL <= 0 || (tk.AccessTTL.D() > MaxAccessTTL && !tk.AllowLongTTL) {
		t.Fatalf("access_ttl %s accepted", tk.AccessTTL.D())
	}
	for i, k := range tk.SigningKeys {
		if strings.HasPrefix(k.Algorithm, "HS") && len(k.Secret) < MinHMACSecret {
			t.Fatalf("signing_keys[%d]: %d-byte HMAC secret accepted", i, len(k.Secret))
		}
	}
	s := cfg.Server
	if s.HTTPSOnly && s.TLS == nil && !(s.BehindTLSProxy && len(s.TrustedProxies) > 0) {
		t.Fatal("https_only accepted without tls or a trusted TLS proxy")
	}
	if len(s.TrustedPrefixes()) != len(s.TrustedProxies) {
		t.Fatalf("trusted_proxies %q parsed to %v", s.TrustedProxies, s.TrustedPrefixes())
	}
	if s.MaxHeaderBytes <= 0 || s.ReadHeaderTimeout <= 0 {
		t.Fatalf("server limits accepted: max_header_bytes %d, read_header_timeout %s", s.MaxHeaderBytes, s.ReadHeaderTimeout.D())
	}
	if af := cfg.RateLimits.AuthFailures; af == nil || af.Limit <= 0 || af.Period <= 0 {
		t.Fatalf("auth_failures limit %+v accepted", af)
	}
}
