package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/routing"
)

// Known values of enumerated keys.
var (
	strategyTypes = []string{"api_key", "jwt", "oauth2", "basic", "mtls"}
	// subjectSources are where an mtls strategy may read the subject.
	subjectSources = []string{"cn", "san_dns", "san_uri", "san_email"}
	// jwtAlgorithms are the algorithms the jwt strategy and token issuer
	// support: HMAC, and the public-key ones a provider may sign with.
	jwtAlgorithms = append([]string{"HS256", "HS384", "HS512"}, idp.Algorithms...)
	httpMethods   = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)

// MaxAccessTTL is the longest access-token lifetime allowed without allow_long_ttl.
const MaxAccessTTL = 15 * time.Minute

// MinHMACSecret is the shortest HMAC secret accepted, in bytes.
const MinHMACSecret = 32

// LineOf returns the line of a YAML path ("routes[1].strategies"), or of its
// nearest ancestor that has one, or 0.
func (c *Config) LineOf(path string) int {
	for path != "" {
		if n, ok := c.lines[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Problem builds a Problem for path, for errors found after Load (while
// building strategies from the config, say). When the value at path came
// from an unset ${VAR}, the message says so.
func (c *Config) Problem(path, format string, args ...any) Problem {
	msg := fmt.Sprintf(format, args...)
	if note := c.notes[path]; note != "" {
		msg += " (" + note + ")"
	}
	return Problem{File: c.Path, Line: c.LineOf(path), Path: path, Message: msg}
}

// Validate reports every problem of a provisioned config, each with its
// file, line and YAML path. It reads the config only: no file, no
// environment, no change to c. What only the files can tell (the secrets
// and keys they hold) LoadSecrets checks.
func (c *Config) Validate() []Problem {
	v := &validator{cfg: c}
	v.run()
	return v.problems
}

type validator struct {
	cfg      *Config
	problems []Problem
}

func (v *validator) errorf(path, format string, args ...any) {
	v.problems = append(v.problems, v.cfg.Problem(path, format, args...))
}

func (v *validator) run() {
	v.server()
	v.redis()
	v.tokens()
	for _, name := range sortedKeys(v.cfg.Strategies) {
		v.strategy(name, v.cfg.Strategies[name])
	}
	v.routes()
	v.rateLimits()
	v.log()
	v.tracing()
	if t := v.cfg.Tokens.IdentityTokenTTL; t <= 0 || t.D() > 5*time.Minute {
		v.errorf("tokens.identity_token_ttl", "must be between 1s and 5m")
	}
}

func (v *validator) server() {
	s := v.cfg.Server
	if s.Listen == "" {
		v.errorf("server.listen", "must not be empty")
	}
	for i, p := range s.TrustedProxies {
		if _, ok := parseTrusted(p); !ok {
			v.errorf(fmt.Sprintf("server.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", p)
		}
	}
	if s.TLS != nil {
		if s.TLS.CertFile == "" || s.TLS.KeyFile == "" {
			v.errorf("server.tls", "cert_file and key_file are both required")
		}
		switch s.TLS.MinVersion {
		case "1.2", "1.3":
		default:
			v.errorf("server.tls.min_version", "%q: want 1.2 or 1.3 (older versions are not offered)", s.TLS.MinVersion)
		}
	}
	if s.HTTPSOnly && s.TLS == nil {
		switch {
		case !s.BehindTLSProxy:
			v.errorf("server.https_only", "https_only without server.tls: configure tls, or set behind_tls_proxy: true if a trusted proxy terminates TLS")
		case len(s.TrustedProxies) == 0:
			v.errorf("server.behind_tls_proxy", "behind_tls_proxy needs trusted_proxies: only they may say the client used https (X-Forwarded-Proto)")
		}
	}
	if s.BehindTLSProxy && len(s.TrustedProxies) == 0 {
		v.errorf("server.behind_tls_proxy", "behind_tls_proxy needs trusted_proxies")
	}
	if s.MaxHeaderBytes <= 0 {
		v.errorf("server.max_header_bytes", "must be positive")
	}
	if s.ReadHeaderTimeout <= 0 {
		v.errorf("server.read_header_timeout", "must be positive")
	}
	if s.GCHeapFloor < 0 {
		v.errorf("server.gc_heap_floor", "must be a size in bytes, or 0 to turn the floor off")
	}
}

func (v *validator) tracing() {
	t := v.cfg.Tracing
	if t.OTLPEndpoint != "" {
		if u, err := url.Parse(t.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf("tracing.otlp_endpoint", "%q: want the collector's OTLP/HTTP URL, like http://jaeger:4318", t.OTLPEndpoint)
		}
	}
	if r := t.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		v.errorf("tracing.sample_ratio", "%v: want a ratio from 0 to 1", *r)
	}
}

// Warnings are what a valid config allows but an operator must hear about
// (serve logs them at start and on reload, validate prints them): an admin
// listener reachable from other hosts without an admin token (its
// dashboard can create API keys), an upstream whose certificate is not
// verified.
func (c *Config) Warnings() []Problem {
	var out []Problem
	if a := c.Server.AdminListen; a != "" && c.Server.AdminTokenFile == "" && !loopback(a) {
		out = append(out, c.Problem("server.admin_listen", "WARNING: the admin listener %q is not on loopback and server.admin_token_file is unset: anyone who reaches it can create and revoke API keys; set admin_token_file or listen on 127.0.0.1", a))
	}
	for i, r := range c.Routes {
		if r != nil && r.UpstreamTLS != nil && r.UpstreamTLS.InsecureSkipVerify {
			out = append(out, c.Problem(fmt.Sprintf("routes[%d].upstream_tls.insecure_skip_verify", i),
				"warning: route %q does not verify its upstream's certificate: anyone on the path to it can read and change its traffic, identity headers included", r.Name))
		}
	}
	return out
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (v *validator) redis() {
	r := v.cfg.Redis
	if r.URLFile != "" {
		if r.URL != "" {
			v.errorf("redis.url_file", "set url or url_file, not both")
		}
		return // the file's URL is checked when it is read
	}
	v.redisURL(r.URL)
}

// redisURL checks redis.url, written or read from url_file.
func (v *validator) redisURL(raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.errorf("redis.url", "not a valid URL") // the URL may hold a password: not echoed
		return
	}
	switch u.Scheme {
	case "redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel", "unix":
	default:
		v.errorf("redis.url", "scheme %q: want redis://, rediss://, redis+cluster:// or redis+sentinel://", u.Scheme)
	}
}

func (v *validator) tokens() {
	t := v.cfg.Tokens
	if t.AccessTTL <= 0 {
		v.errorf("tokens.access_ttl", "must be positive")
	} else if t.AccessTTL.D() > MaxAccessTTL && !t.AllowLongTTL {
		v.errorf("tokens.access_ttl", "%s is longer than 15m; short-lived access tokens limit the damage of a leak (set allow_long_ttl: true to override)", t.AccessTTL.D())
	}
	if t.RefreshTTL <= 0 {
		v.errorf("tokens.refresh_ttl", "must be positive")
	}
	v.sessions()
	seen := map[string]bool{}
	for i, k := range t.SigningKeys {
		path := fmt.Sprintf("tokens.signing_keys[%d]", i)
		if k.Kid == "" {
			v.errorf(path+".kid", "required: tokens name their key so keys can rotate")
		} else if seen[k.Kid] {
			v.errorf(path+".kid", "duplicate kid %q", k.Kid)
		}
		seen[k.Kid] = true
		if !slices.Contains(jwtAlgorithms, k.Algorithm) {
			v.errorf(path+".algorithm", "unknown algorithm %q (want one of %s)", k.Algorithm, strings.Join(jwtAlgorithms, ", "))
			continue
		}
		if strings.HasPrefix(k.Algorithm, "HS") {
			if k.SecretFile != "" && k.Secret != "" {
				v.errorf(path+".secret_file", "set secret or secret_file, not both")
			}
			if k.PrivateKeyFile != "" || k.PublicKeyFile != "" {
				v.errorf(path, "%s takes a secret, not a key file", k.Algorithm)
			}
			if k.SecretFile == "" { // the file's secret is checked when it is read
				v.hmacSecret(path, k.Algorithm, k.Secret)
			}
			continue
		}
		if k.Secret != "" || k.SecretFile != "" {
			v.errorf(path, "%s takes private_key_file or public_key_file, not a secret", k.Algorithm)
		}
		if (k.PrivateKeyFile == "") == (k.PublicKeyFile == "") {
			v.errorf(path, "%s needs exactly one of private_key_file or public_key_file", k.Algorithm)
		}
	}
	// A first key without its secret or key file is reported above; one
	// that only verifies cannot sign.
	if len(t.SigningKeys) > 0 && t.SigningKeys[0].PrivateKeyFile == "" && t.SigningKeys[0].PublicKeyFile != "" {
		v.errorf("tokens.signing_keys[0]", "the first key signs, so it needs a secret or private_key_file")
	}
}

// hmacSecret checks the secret of an HMAC signing key at path, written or
// read from secret_file.
func (v *validator) hmacSecret(path, alg, secret string) {
	switch {
	case secret == "":
		v.errorf(path+".secret", "required for %s: set secret or secret_file", alg)
	case len(secret) < MinHMACSecret:
		v.errorf(path+".secret", "HMAC secret is %d bytes; at least %d are required", len(secret), MinHMACSecret)
	}
}

func (v *validator) strategy(name string, s *Strategy) {
	path := "strategies." + name
	if s == nil {
		v.errorf(path, "empty strategy definition")
		return
	}
	v.foreignKeys(path, s)
	switch s.Type {
	case "api_key":
		v.apiKey(path, s)
	case "jwt":
		v.jwt(path, s)
	case "oauth2":
		v.oauth2(path, s)
	case "basic":
		v.basic(path, s)
	case "mtls":
		v.mtls(path, s)
	default:
		v.errorf(path+".type", "unknown strategy type %q (want one of %s)", s.Type, strings.Join(strategyTypes, ", "))
	}
}

func (v *validator) apiKey(path string, s *Strategy) {
	if len(s.Prefixes) == 0 {
		v.errorf(path+".prefixes", "at least one key prefix is required (e.g. [pk_live])")
	}
	for i, p := range s.Prefixes {
		if !validPrefix(p) {
			v.errorf(fmt.Sprintf("%s.prefixes[%d]", path, i), "prefix %q: use 2-32 characters of a-z, 0-9 and _", p)
		}
	}
	switch s.Store {
	case "file":
		if s.File == "" {
			v.errorf(path+".file", "required with store: file")
		}
	case "redis":
		if v.cfg.Redis.URL == "" && v.cfg.Redis.URLFile == "" {
			v.errorf(path+".store", "store: redis needs redis.url")
		}
	default:
		v.errorf(path+".store", "unknown store %q (want file or redis)", s.Store)
	}
}

func validPrefix(p string) bool {
	if len(p) < 2 || len(p) > 32 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (v *validator) jwt(path string, s *Strategy) {
	if s.Issuer == "" {
		v.errorf(path+".issuer", "required: every token's iss is checked against it")
	}
	if s.Audience == "" {
		v.errorf(path+".audience", "required: every token's aud is checked against it")
	}
	if len(s.Algorithms) == 0 {
		v.errorf(path+".algorithms", "required: pin the algorithms tokens may use (e.g. [HS256])")
	}
	hasHMAC := false
	for i, a := range s.Algorithms {
		if !slices.Contains(jwtAlgorithms, a) {
			v.errorf(fmt.Sprintf("%s.algorithms[%d]", path, i), "unknown algorithm %q (want one of %s)", a, strings.Join(jwtAlgorithms, ", "))
		}
		hasHMAC = hasHMAC || strings.HasPrefix(a, "HS")
	}
	switch {
	case s.Keys != "" && s.JWKSURL != "":
		v.errorf(path, "set keys: tokens or jwks_url, not both")
	case s.Keys == "tokens":
		if len(v.cfg.Tokens.SigningKeys) == 0 {
			v.errorf(path+".keys", "keys: tokens needs tokens.signing_keys")
		}
		for i, a := range s.Algorithms {
			if !slices.ContainsFunc(v.cfg.Tokens.SigningKeys, func(k SigningKey) bool { return k.Algorithm == a }) {
				v.errorf(fmt.Sprintf("%s.algorithms[%d]", path, i), "no key in tokens.signing_keys uses %s", a)
			}
		}
	case s.Keys != "":
		v.errorf(path+".keys", "unknown key source %q (want tokens, or set jwks_url)", s.Keys)
	case s.JWKSURL != "":
		v.httpURL(path+".jwks_url", s.JWKSURL)
		if hasHMAC {
			v.errorf(path+".algorithms", "HMAC algorithms cannot be verified with a JWKS of public keys")
		}
	default:
		v.errorf(path, "needs keys: tokens or jwks_url")
	}
}

func (v *validator) oauth2(path string, s *Strategy) {
	if s.ClientSecretFile != "" && s.ClientSecret != "" {
		v.errorf(path+".client_secret_file", "set client_secret or client_secret_file, not both")
	}
	if s.IssuerURL == "" && s.IntrospectionURL == "" && s.JWKSURL == "" {
		v.errorf(path, "needs issuer_url (OIDC discovery) or introspection_url / jwks_url")
	}
	for _, f := range []struct{ key, val string }{
		{"issuer_url", s.IssuerURL}, {"authorization_url", s.AuthorizationURL}, {"token_url", s.TokenURL},
		{"introspection_url", s.IntrospectionURL}, {"jwks_url", s.JWKSURL}, {"userinfo_url", s.UserinfoURL},
		{"redirect_url", s.RedirectURL},
	} {
		if f.val != "" {
			v.httpURL(path+"."+f.key, f.val)
		}
	}
	if s.ClientID == "" {
		v.errorf(path+".client_id", "required")
	}
	if (s.IntrospectionURL != "" || s.Login) && s.ClientSecret == "" && s.ClientSecretFile == "" {
		v.errorf(path+".client_secret", "required to authenticate to the provider: set client_secret or client_secret_file")
	}
	if s.Login && s.RedirectURL == "" {
		v.errorf(path+".redirect_url", "required with login: true")
	}
	if s.AllowUnverifiedEmail && !s.Login {
		v.errorf(path+".allow_unverified_email", "only applies with login: true (the browser login checks email_verified)")
	}
}

func (v *validator) basic(path string, s *Strategy) {
	if s.HtpasswdFile == "" {
		v.errorf(path+".htpasswd_file", "required: the htpasswd file of the users (make lines with `authgateway htpasswd -user NAME`)")
	}
	// The realm is sent quoted in WWW-Authenticate.
	if strings.ContainsAny(s.Realm, "\"\\") || hasControlChar(s.Realm) {
		v.errorf(path+".realm", "must not hold quotes, backslashes or control characters")
	}
	v.userRoles(path, s)
}

func (v *validator) mtls(path string, s *Strategy) {
	if !slices.Contains(subjectSources, s.SubjectFrom) {
		v.errorf(path+".subject_from", "unknown subject source %q (want one of %s)", s.SubjectFrom, strings.Join(subjectSources, ", "))
	}
	if t := v.cfg.Server.TLS; t == nil || t.ClientCAFile == "" {
		v.errorf(path+".type", "type: mtls needs server.tls.client_ca_file: the CA certificates client certificates are verified against")
	}
	for i, sub := range s.AllowedSubjects {
		if sub == "" {
			v.errorf(fmt.Sprintf("%s.allowed_subjects[%d]", path, i), "must not be empty")
		}
	}
	v.userRoles(path, s)
}

// foreignKeys refuses the keys of basic and mtls strategies on a strategy
// of another type, where they would silently do nothing (roles: written on
// an api_key strategy grants no role).
func (v *validator) foreignKeys(path string, s *Strategy) {
	if !slices.Contains(strategyTypes, s.Type) {
		return // the type is reported
	}
	for _, k := range []struct {
		key, types string
		set        bool
	}{
		{"htpasswd_file", "basic", s.HtpasswdFile != ""}, {"realm", "basic", s.Realm != ""},
		{"subject_from", "mtls", s.SubjectFrom != ""}, {"allowed_subjects", "mtls", len(s.AllowedSubjects) > 0},
		{"roles", "basic mtls", len(s.Roles) > 0}, {"user_roles", "basic mtls", len(s.UserRoles) > 0},
	} {
		if k.set && !strings.Contains(k.types, s.Type) {
			v.errorf(path+"."+k.key, "only applies to type: %s (this strategy is type: %s)", strings.ReplaceAll(k.types, " ", " or "), s.Type)
		}
	}
}

// userRoles checks the roles and user_roles of basic and mtls strategies.
func (v *validator) userRoles(path string, s *Strategy) {
	for _, user := range sortedKeys(s.UserRoles) {
		if user == "" {
			v.errorf(path+".user_roles", "a user name must not be empty")
		}
	}
}

func hasControlChar(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// hostLike matches "host:port/path" written without a scheme.
var hostLike = regexp.MustCompile(`^[A-Za-z0-9\[][^/:]*(:\d+)?(/.*)?$`)

func (v *validator) httpURL(path, raw string) *url.URL {
	return v.absoluteURL(path, raw, []string{"http", "https"})
}

// absoluteURL checks an absolute URL of one of schemes, with a host and no
// credentials; a scheme-less "host:port" gets a hint.
func (v *validator) absoluteURL(path, raw string, schemes []string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
		hint := ""
		if hostLike.MatchString(raw) {
			hint = fmt.Sprintf(" (did you mean %q?)", "http://"+raw)
		}
		v.errorf(path, "%q is not an absolute http(s) URL%s", raw, hint)
		return nil
	}
	if u.User != nil {
		v.errorf(path, "URL must not carry credentials")
		return nil
	}
	return u
}

func (v *validator) routes() {
	if len(v.cfg.Routes) == 0 {
		v.errorf("routes", "at least one route is required")
	}
	keys := newRouteKeys(v)
	names := map[string]int{}
	for i, r := range v.cfg.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if r == nil {
			v.errorf(path, "empty route")
			continue
		}
		if j, dup := names[r.Name]; dup && !r.nameDefaulted {
			v.errorf(path+".name", "duplicate route name %q (also routes[%d])", r.Name, j)
		}
		names[r.Name] = i
		if cp, err := CanonicalRoutePath(r.Path); err != nil {
			v.errorf(path+".path", "%v", err)
		} else {
			keys.add(i, r, cp)
		}
		v.routeExtras(path, r)
		for j, m := range r.Methods {
			if !slices.Contains(httpMethods, m) { // Provision wrote the known ones in upper case
				v.errorf(fmt.Sprintf("%s.methods[%d]", path, j), "unknown method %q", m)
			}
		}
		v.upstreams(path, r)
		switch {
		case r.Public && len(r.Strategies) > 0:
			v.errorf(path+".public", "a public route takes no strategies")
		case r.Public && (len(r.Roles) > 0 || len(r.Scopes) > 0):
			v.errorf(path+".public", "a public route cannot require roles or scopes")
		case r.Public && r.AllowIf != "":
			v.errorf(path+".allow_if", "a public route has no identity to check: drop allow_if or public: true")
		case !r.Public && len(r.Strategies) == 0:
			v.errorf(path+".strategies", "a route needs strategies, or public: true")
		}
		seen := map[string]bool{}
		for j, s := range r.Strategies {
			sp := fmt.Sprintf("%s.strategies[%d]", path, j)
			if _, ok := v.cfg.Strategies[s]; !ok {
				v.errorf(sp, "unknown strategy %q%s", s, suggestName(s, v.cfg.Strategies))
			}
			if seen[s] {
				v.errorf(sp, "strategy %q listed twice", s)
			}
			seen[s] = true
		}
		if rl := r.RateLimit; rl != nil {
			v.routeLimit(path+".rate_limit", rl, r.Public)
		}
		if r.CORS != nil {
			v.cors(path+".cors", r)
		}
		if r.IdentityToken {
			if keys := v.cfg.Tokens.SigningKeys; len(keys) == 0 || strings.HasPrefix(keys[0].Algorithm, "HS") {
				v.errorf(path+".identity_token", "needs an asymmetric first key in tokens.signing_keys (ES256, RS256, EdDSA, ...) so upstreams can verify assertions with /.well-known/jwks.json without holding a secret")
			}
		}
	}
}

func (v *validator) cors(path string, r *Route) {
	c := r.CORS
	if len(c.AllowedOrigins) == 0 {
		v.errorf(path+".allowed_origins", "at least one origin is required")
	}
	for i, o := range c.AllowedOrigins {
		p := fmt.Sprintf("%s.allowed_origins[%d]", path, i)
		if o == "*" {
			if c.AllowCredentials {
				v.errorf(p, `"*" cannot be combined with allow_credentials: list the origins`)
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || strings.Contains(o, "*") {
			v.errorf(p, "%q: want an exact origin like https://app.example.com (scheme://host[:port], no path, no wildcards)", o)
			continue
		}
		if strings.ToLower(o) != o {
			v.errorf(p, "%q: write origins in lower case (browsers send them so)", o)
		}
	}
	for i, m := range c.AllowedMethods {
		if !slices.Contains(httpMethods, m) { // Provision wrote the known ones in upper case
			v.errorf(fmt.Sprintf("%s.allowed_methods[%d]", path, i), "unknown method %q", m)
		}
	}
}

func (v *validator) routeLimit(path string, rl *RouteLimit, public bool) {
	if rl.Limit <= 0 {
		v.errorf(path+".limit", "must be positive")
	}
	if rl.Period <= 0 {
		v.errorf(path+".period", "must be a positive duration")
	}
	switch rl.By {
	case "subject":
		if public {
			v.errorf(path+".by", "a public route has no subject; use by: ip")
		}
	case "ip":
	default:
		v.errorf(path+".by", "unknown %q (want subject or ip)", rl.By)
	}
	if rl.OnRedisError != "allow" && rl.OnRedisError != "deny" {
		v.errorf(path+".on_redis_error", "unknown %q (want allow or deny)", rl.OnRedisError)
	}
	switch rl.Accuracy {
	case "exact":
		if rl.SyncInterval != 0 {
			v.errorf(path+".sync_interval", "only with accuracy: approximate (exact limits go to Redis on every request)")
		}
	case "approximate":
		if rl.SyncInterval <= 0 {
			v.errorf(path+".sync_interval", "must be a positive duration")
		} else if rl.Period > 0 && rl.SyncInterval >= rl.Period {
			v.errorf(path+".sync_interval", "%v must be shorter than the period (%v)", rl.SyncInterval.D(), rl.Period.D())
		}
	default:
		v.errorf(path+".accuracy", "unknown %q (want exact or approximate)", rl.Accuracy)
	}
}

func (v *validator) rateLimits() {
	af := v.cfg.RateLimits.AuthFailures
	if af.Limit <= 0 {
		v.errorf("rate_limits.auth_failures.limit", "must be positive")
	}
	if af.Period <= 0 {
		v.errorf("rate_limits.auth_failures.period", "must be a positive duration")
	}
	if af.OnRedisError != "allow" && af.OnRedisError != "deny" {
		v.errorf("rate_limits.auth_failures.on_redis_error", "unknown %q (want allow or deny)", af.OnRedisError)
	}
}

func (v *validator) log() {
	l := v.cfg.Log
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		v.errorf("log.level", "unknown level %q (want debug, info, warn or error)", l.Level)
	}
	if l.Format != "json" && l.Format != "text" {
		v.errorf("log.format", "unknown format %q (want json or text)", l.Format)
	}
}

// CanonicalRoutePath checks a configured route path and returns it without a
// trailing slash ("/" stays "/"). Route paths must already be in the canonical
// form requests are normalised to, or they could never match.
func CanonicalRoutePath(p string) (string, error) {
	return routing.CanonicalPrefix(p)
}

func suggestName(s string, m map[string]*Strategy) string {
	return suggest(s, sortedKeys(m))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (v *validator) sessions() {
	s, t := v.cfg.Sessions, v.cfg.Tokens
	for _, d := range []struct {
		key string
		val Duration
	}{{"refresh_before", s.RefreshBefore}, {"reuse_grace", s.ReuseGrace}, {"absolute_ttl", s.AbsoluteTTL}} {
		if d.val < 0 {
			v.errorf("sessions."+d.key, "must not be negative")
		}
	}
	if t.AccessTTL > 0 && s.RefreshBefore >= t.AccessTTL {
		v.errorf("sessions.refresh_before", "%s is not shorter than tokens.access_ttl (%s): every request would refresh", s.RefreshBefore.D(), t.AccessTTL.D())
	}
	if s.ReuseGrace.D() > 5*time.Minute {
		v.errorf("sessions.reuse_grace", "%s is longer than 5m: a stolen refresh token would be good for that long after its rotation", s.ReuseGrace.D())
	}
}
