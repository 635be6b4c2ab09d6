package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/routing"
)

// Known values of enumerated keys.
var (
	strategyTypes = []string{"api_key", "jwt", "oauth2"}
	// jwtAlgorithms are the algorithms the jwt strategy and token issuer
	// support: HMAC, and the public-key ones a provider may sign with.
	jwtAlgorithms = append([]string{"HS256", "HS384", "HS512"}, idp.Algorithms...)
	httpMethods   = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)

// MaxAccessTTL is the longest access-token lifetime allowed without allow_long_ttl.
const MaxAccessTTL = 15 * time.Minute

// MinHMACSecret is the shortest HMAC secret accepted, in bytes.
const MinHMACSecret = 32

func defaults() *Config {
	return &Config{
		Server: Server{
			Listen:                  ":8080",
			AdminListen:             "127.0.0.1:9090",
			ReadHeaderTimeout:       Duration(10 * time.Second),
			IdleTimeout:             Duration(120 * time.Second),
			MaxHeaderBytes:          32 << 10,
			MaxBodyBytes:            10 << 20,
			UpstreamTimeout:         Duration(30 * time.Second),
			MaxIdleConnsPerUpstream: 1024,
			ShutdownTimeout:         Duration(20 * time.Second),
		},
		Tokens: Tokens{
			AccessTTL:        Duration(15 * time.Minute),
			RefreshTTL:       Duration(168 * time.Hour),
			IdentityTokenTTL: Duration(60 * time.Second),
		},
		Log: Log{Level: "info", Format: "json"},
	}
}

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

type validator struct {
	cfg      *Config
	file     string
	lines    map[string]int
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
	v.sharedKeyStores()
	v.routes()
	v.rateLimits()
	v.log()
	if t := v.cfg.Tokens.IdentityTokenTTL; t <= 0 || t.D() > 5*time.Minute {
		v.errorf("tokens.identity_token_ttl", "must be between 1s and 5m")
	}
}

func (v *validator) server() {
	s := &v.cfg.Server
	if s.Listen == "" {
		v.errorf("server.listen", "must not be empty")
	}
	for i, p := range s.TrustedProxies {
		path := fmt.Sprintf("server.trusted_proxies[%d]", i)
		if pfx, err := netip.ParsePrefix(p); err == nil {
			s.trustedPrefixes = append(s.trustedPrefixes, pfx.Masked())
		} else if a, err := netip.ParseAddr(p); err == nil {
			s.trustedPrefixes = append(s.trustedPrefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			v.errorf(path, "%q is not an IP address or CIDR", p)
		}
	}
	if s.TLS != nil {
		if s.TLS.CertFile == "" || s.TLS.KeyFile == "" {
			v.errorf("server.tls", "cert_file and key_file are both required")
		}
		switch s.TLS.MinVersion {
		case "":
			s.TLS.MinVersion = "1.2"
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
}

func (v *validator) redis() {
	r := &v.cfg.Redis
	if r.URLFile != "" {
		if r.URL != "" {
			v.errorf("redis.url_file", "set url or url_file, not both")
		}
		r.URL, _ = v.readSecret("redis.url_file", r.URLFile)
	}
	if r.URL == "" {
		return
	}
	u, err := url.Parse(r.URL)
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

// readSecret reads a *_file secret (its trailing newline trimmed); ok is
// false, and the problem reported, when it cannot be read or is empty.
func (v *validator) readSecret(path, file string) (secret string, ok bool) {
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.errorf(path, "no such file: %s", v.cfg.describeFile(path, file))
		return "", false
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named already
		}
		v.errorf(path, "reading %s: %v", v.cfg.describeFile(path, file), err)
		return "", false
	}
	secret = strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		v.errorf(path, "the file is empty: %s", v.cfg.describeFile(path, file))
		return "", false
	}
	return secret, true
}

func (v *validator) tokens() {
	t := &v.cfg.Tokens
	if t.AccessTTL <= 0 {
		v.errorf("tokens.access_ttl", "must be positive")
	} else if t.AccessTTL.D() > MaxAccessTTL && !t.AllowLongTTL {
		v.errorf("tokens.access_ttl", "%s is longer than 15m; short-lived access tokens limit the damage of a leak (set allow_long_ttl: true to override)", t.AccessTTL.D())
	}
	if t.RefreshTTL <= 0 {
		v.errorf("tokens.refresh_ttl", "must be positive")
	}
	seen := map[string]bool{}
	for i := range t.SigningKeys {
		k := &t.SigningKeys[i]
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
			read := true
			if k.SecretFile != "" {
				if k.Secret != "" {
					v.errorf(path+".secret_file", "set secret or secret_file, not both")
				}
				k.Secret, read = v.readSecret(path+".secret_file", k.SecretFile)
			}
			if k.PrivateKeyFile != "" || k.PublicKeyFile != "" {
				v.errorf(path, "%s takes a secret, not a key file", k.Algorithm)
			}
			switch {
			case !read: // reported by readSecret
			case k.Secret == "":
				v.errorf(path+".secret", "required for %s: set secret or secret_file", k.Algorithm)
			case len(k.Secret) < MinHMACSecret:
				v.errorf(path+".secret", "HMAC secret is %d bytes; at least %d are required", len(k.Secret), MinHMACSecret)
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

func (v *validator) strategy(name string, s *Strategy) {
	path := "strategies." + name
	if s == nil {
		v.errorf(path, "empty strategy definition")
		return
	}
	switch s.Type {
	case "api_key":
		v.apiKey(path, s)
	case "jwt":
		v.jwt(path, s)
	case "oauth2":
		v.oauth2(path, s)
	default:
		v.errorf(path+".type", "unknown strategy type %q (want one of %s)", s.Type, strings.Join(strategyTypes, ", "))
	}
}

func (v *validator) apiKey(path string, s *Strategy) {
	if s.Header == "" {
		s.Header = "X-API-Key"
	}
	if s.Store == "" {
		s.Store = "file"
	}
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

// sharedKeyStores refuses two api_key strategies that read one key store
// and accept one prefix: a key made for either would be accepted by both,
// with the other's routes, roles and X-Auth-Strategy. Sharing a key file
// with distinct prefixes is fine: a key's prefix then says whose it is
// (the gateway refuses a prefix its strategy does not list before any
// lookup, and `keys` shows and changes only the strategy's prefixes). In
// Redis every strategy has a namespace of its own, named after it, so two
// strategies never share one.
func (v *validator) sharedKeyStores() {
	type keyFile struct {
		name, path string
		info       os.FileInfo // nil: the file does not exist (yet)
		prefixes   []string
	}
	var files []keyFile
	for _, name := range sortedKeys(v.cfg.Strategies) {
		s := v.cfg.Strategies[name]
		if s == nil || s.Type != "api_key" || s.Store != "file" || s.File == "" {
			continue
		}
		// Paths are absolute here (resolvePaths made relative ones relative
		// to the config file's directory); a link or a second spelling of
		// the same file is the same store too.
		f := keyFile{name: name, path: filepath.Clean(s.File), prefixes: s.Prefixes}
		if abs, err := filepath.Abs(f.path); err == nil {
			f.path = abs
		}
		if info, err := os.Stat(f.path); err == nil {
			f.info = info
		}
		for _, o := range files {
			same := o.path == f.path || (o.info != nil && f.info != nil && os.SameFile(o.info, f.info))
			if !same {
				continue
			}
			if p := firstShared(o.prefixes, f.prefixes); p != "" {
				v.errorf("strategies."+name+".file", "strategy %s reads the same key file with prefix %q: a key made for either would be accepted by both; give each strategy its own file, or prefixes of its own", o.name, p)
			}
		}
		files = append(files, f)
	}
}

// firstShared returns the first of a that b holds too, or "".
func firstShared(a, b []string) string {
	for _, p := range a {
		if slices.Contains(b, p) {
			return p
		}
	}
	return ""
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

// claimDefaults fills the claim names and clock leeway that token-checking
// strategies (jwt, oauth2) share.
func claimDefaults(s *Strategy) {
	if s.RolesClaim == "" {
		s.RolesClaim = "roles"
	}
	if s.EmailClaim == "" {
		s.EmailClaim = "email"
	}
	if s.Leeway == 0 {
		s.Leeway = Duration(30 * time.Second)
	}
}

func (v *validator) jwt(path string, s *Strategy) {
	claimDefaults(s)
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
		if s.Cookie == "" {
			s.Cookie = "__Host-authgw_access"
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
	claimDefaults(s)
	read := true
	if s.ClientSecretFile != "" {
		if s.ClientSecret != "" {
			v.errorf(path+".client_secret_file", "set client_secret or client_secret_file, not both")
		}
		s.ClientSecret, read = v.readSecret(path+".client_secret_file", s.ClientSecretFile)
	}
	if s.CacheTTL == nil {
		d := Duration(60 * time.Second)
		s.CacheTTL = &d
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
	if (s.IntrospectionURL != "" || s.Login) && s.ClientSecret == "" && read {
		v.errorf(path+".client_secret", "required to authenticate to the provider: set client_secret or client_secret_file")
	}
	if s.Login && s.RedirectURL == "" {
		v.errorf(path+".redirect_url", "required with login: true")
	}
	if s.AllowUnverifiedEmail && !s.Login {
		v.errorf(path+".allow_unverified_email", "only applies with login: true (the browser login checks email_verified)")
	}
}

// hostLike matches "host:port/path" written without a scheme.
var hostLike = regexp.MustCompile(`^[A-Za-z0-9\[][^/:]*(:\d+)?(/.*)?$`)

func (v *validator) httpURL(path, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
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
	byPath := map[string]int{}
	byFold := map[string]int{} // FoldPrefix of each path, unless upstreams are case-sensitive
	names := map[string]int{}
	for i, r := range v.cfg.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if r == nil {
			v.errorf(path, "empty route")
			continue
		}
		if r.Name == "" {
			r.Name = r.Path
		} else if j, dup := names[r.Name]; dup {
			v.errorf(path+".name", "duplicate route name %q (also routes[%d])", r.Name, j)
		}
		names[r.Name] = i
		if cp, err := CanonicalRoutePath(r.Path); err != nil {
			v.errorf(path+".path", "%v", err)
		} else {
			r.CanonicalPath = cp
			fold := routing.FoldPrefix(cp)
			if j, dup := byPath[cp]; dup {
				v.errorf(path+".path", "duplicate path %q (also routes[%d])", r.Path, j)
			} else if j, dup := byFold[fold]; dup && !v.cfg.Server.CaseSensitiveUpstreams {
				v.errorf(path+".path", "path %q differs only in case from routes[%d].path %q: an upstream that ignores case cannot tell them apart (set server.case_sensitive_upstreams: true if no upstream does)",
					r.Path, j, v.cfg.Routes[j].Path)
			}
			byPath[cp] = i
			byFold[fold] = i
		}
		for j, m := range r.Methods {
			up := strings.ToUpper(m)
			if !slices.Contains(httpMethods, up) {
				v.errorf(fmt.Sprintf("%s.methods[%d]", path, j), "unknown method %q", m)
			}
			r.Methods[j] = up
		}
		if r.Upstream == "" {
			v.errorf(path+".upstream", "required: where to forward the route's requests")
		} else if u := v.httpURL(path+".upstream", r.Upstream); u != nil {
			if u.RawQuery != "" || u.Fragment != "" {
				v.errorf(path+".upstream", "must not have a query or fragment")
			}
			r.UpstreamURL = u
		}
		switch {
		case r.Public && len(r.Strategies) > 0:
			v.errorf(path+".public", "a public route takes no strategies")
		case r.Public && (len(r.Roles) > 0 || len(r.Scopes) > 0):
			v.errorf(path+".public", "a public route cannot require roles or scopes")
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
		if r.MaxBodyBytes == 0 {
			r.MaxBodyBytes = v.cfg.Server.MaxBodyBytes
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
	if len(c.AllowedMethods) == 0 {
		c.AllowedMethods = r.Methods
		if len(c.AllowedMethods) == 0 {
			c.AllowedMethods = []string{"GET", "HEAD", "POST"}
		}
	}
	for i, m := range c.AllowedMethods {
		c.AllowedMethods[i] = strings.ToUpper(m)
		if !slices.Contains(httpMethods, c.AllowedMethods[i]) {
			v.errorf(fmt.Sprintf("%s.allowed_methods[%d]", path, i), "unknown method %q", m)
		}
	}
	if len(c.AllowedHeaders) == 0 {
		c.AllowedHeaders = []string{"Authorization", "Content-Type"}
	}
	if c.MaxAge == 0 {
		c.MaxAge = Duration(10 * time.Minute)
	}
}

func (v *validator) routeLimit(path string, rl *RouteLimit, public bool) {
	if rl.Limit <= 0 {
		v.errorf(path+".limit", "must be positive")
	}
	if rl.Period <= 0 {
		v.errorf(path+".period", "must be a positive duration")
	}
	if rl.By == "" {
		rl.By = "subject"
		if public {
			rl.By = "ip"
		}
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
	if rl.OnRedisError == "" {
		rl.OnRedisError = "allow"
	}
	if rl.OnRedisError != "allow" && rl.OnRedisError != "deny" {
		v.errorf(path+".on_redis_error", "unknown %q (want allow or deny)", rl.OnRedisError)
	}
}

func (v *validator) rateLimits() {
	af := v.cfg.RateLimits.AuthFailures
	if af == nil {
		af = &FailureLimit{Limit: 10, Period: Duration(time.Minute)}
		v.cfg.RateLimits.AuthFailures = af
	}
	if af.Limit <= 0 {
		v.errorf("rate_limits.auth_failures.limit", "must be positive")
	}
	if af.Period <= 0 {
		v.errorf("rate_limits.auth_failures.period", "must be a positive duration")
	}
	if af.OnRedisError == "" {
		af.OnRedisError = "deny"
	}
	if af.OnRedisError != "allow" && af.OnRedisError != "deny" {
		v.errorf("rate_limits.auth_failures.on_redis_error", "unknown %q (want allow or deny)", af.OnRedisError)
	}
}

func (v *validator) log() {
	l := &v.cfg.Log
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		v.errorf("log.level", "unknown level %q (want debug, info, warn or error)", l.Level)
	}
	if l.Format != "json" && l.Format != "text" {
		v.errorf("log.format", "unknown format %q (want json or text)", l.Format)
	}
	if l.AuthEvents == nil {
		t := true
		l.AuthEvents = &t
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
