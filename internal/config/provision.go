package config

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults: every default of the config is applied by Provision, from
// here, and nowhere else (a default applied twice is two defaults).
const (
	DefaultListen                  = ":8080"
	DefaultAdminListen             = "127.0.0.1:9090"
	DefaultTracingServiceName      = "authgateway"
	DefaultTracingSampleRatio      = 0.1
	DefaultReadHeaderTimeout       = 10 * time.Second
	DefaultIdleTimeout             = 120 * time.Second
	DefaultMaxHeaderBytes          = 32 << 10
	DefaultMaxBodyBytes            = 10 << 20
	DefaultUpstreamTimeout         = 30 * time.Second
	DefaultMaxIdleConnsPerUpstream = 1024
	DefaultShutdownTimeout         = 20 * time.Second
	DefaultTLSMinVersion           = "1.2"
	DefaultGCHeapFloor             = 32 << 20

	DefaultAccessTTL        = 15 * time.Minute
	DefaultRefreshTTL       = 168 * time.Hour
	DefaultIdentityTokenTTL = 60 * time.Second

	DefaultRefreshBefore = time.Minute
	DefaultReuseGrace    = 30 * time.Second
	DefaultAbsoluteTTL   = 24 * time.Hour

	DefaultAPIKeyHeader = "X-API-Key"
	DefaultAPIKeyStore  = "file"
	DefaultRolesClaim   = "roles"
	DefaultEmailClaim   = "email"
	DefaultLeeway       = 30 * time.Second
	// DefaultSessionCookie is the access cookie of browser sessions: the
	// login sets it, jwt strategies with keys: tokens read it.
	DefaultSessionCookie = "__Host-authgw_access"
	// DefaultCacheTTL is how long an oauth2 strategy caches introspection
	// answers.
	DefaultCacheTTL = 60 * time.Second

	DefaultAuthFailureLimit  = 10
	DefaultAuthFailurePeriod = time.Minute

	// DefaultBasicRealm names the Basic challenge of a basic strategy.
	DefaultBasicRealm = "authgateway"
	// DefaultSubjectFrom is where an mtls strategy reads the subject.
	DefaultSubjectFrom = "cn"

	DefaultLogLevel  = "info"
	DefaultLogFormat = "json"
)

// Default values of lists.
var (
	// DefaultLoginScopes are requested at login when scopes is unset.
	DefaultLoginScopes   = []string{"openid", "email", "profile"}
	defaultCORSMethods   = []string{"GET", "HEAD", "POST"}
	defaultCORSHeaders   = []string{"Authorization", "Content-Type"}
	defaultCORSMaxAge    = 10 * time.Minute
	defaultQuotaPolicy   = "allow" // a quota whose store fails lets requests through
	defaultFailurePolicy = "deny"  // the failure limit does not (no free guesses)
)

// Provision completes a decoded config: it applies every default where the
// file left a value unset, resolves relative file paths against the config
// file's directory, and derives what the gateway reads instead of the
// written form (canonical route paths, parsed upstream URLs and trusted
// proxies, methods in upper case). It reads no file and reports nothing: a
// value it cannot derive stays as written, for Validate to report.
// Provision is idempotent.
func (c *Config) Provision() {
	c.resolvePaths(baseDir(c.Path))
	c.provisionServer()
	t := &c.Tokens
	orDefault(c, "tokens.access_ttl", &t.AccessTTL, Duration(DefaultAccessTTL))
	orDefault(c, "tokens.refresh_ttl", &t.RefreshTTL, Duration(DefaultRefreshTTL))
	orDefault(c, "tokens.identity_token_ttl", &t.IdentityTokenTTL, Duration(DefaultIdentityTokenTTL))
	ss := &c.Sessions
	// With short access tokens (tests, demos) a quarter of their life.
	orDefault(c, "sessions.refresh_before", &ss.RefreshBefore, min(Duration(DefaultRefreshBefore), t.AccessTTL/4))
	orDefault(c, "sessions.reuse_grace", &ss.ReuseGrace, Duration(DefaultReuseGrace))
	orDefault(c, "sessions.absolute_ttl", &ss.AbsoluteTTL, Duration(DefaultAbsoluteTTL))
	orZero(&ss.PostLogoutRedirect, "/")
	if ss.TransparentRefresh == nil {
		on := true
		ss.TransparentRefresh = &on
	}
	for _, s := range c.Strategies {
		if s != nil {
			s.Provision()
		}
	}
	for _, r := range c.Routes {
		if r != nil {
			r.provision(c.Server.MaxBodyBytes)
		}
	}
	if c.RateLimits.AuthFailures == nil {
		c.RateLimits.AuthFailures = &FailureLimit{Limit: DefaultAuthFailureLimit, Period: Duration(DefaultAuthFailurePeriod)}
	}
	orZero(&c.RateLimits.AuthFailures.OnRedisError, defaultFailurePolicy)
	orZero(&c.Tracing.ServiceName, DefaultTracingServiceName)
	if c.Tracing.SampleRatio == nil {
		r := DefaultTracingSampleRatio
		c.Tracing.SampleRatio = &r
	}
	orDefault(c, "log.level", &c.Log.Level, DefaultLogLevel)
	orDefault(c, "log.format", &c.Log.Format, DefaultLogFormat)
	if c.Log.AuthEvents == nil {
		on := true
		c.Log.AuthEvents = &on
	}
}

func (c *Config) provisionServer() {
	s := &c.Server
	orDefault(c, "server.listen", &s.Listen, DefaultListen)
	orDefault(c, "server.admin_listen", &s.AdminListen, DefaultAdminListen)
	orDefault(c, "server.read_header_timeout", &s.ReadHeaderTimeout, Duration(DefaultReadHeaderTimeout))
	orDefault(c, "server.idle_timeout", &s.IdleTimeout, Duration(DefaultIdleTimeout))
	orDefault(c, "server.max_header_bytes", &s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	orDefault(c, "server.max_body_bytes", &s.MaxBodyBytes, DefaultMaxBodyBytes)
	orDefault(c, "server.upstream_timeout", &s.UpstreamTimeout, Duration(DefaultUpstreamTimeout))
	orDefault(c, "server.max_idle_conns_per_upstream", &s.MaxIdleConnsPerUpstream, DefaultMaxIdleConnsPerUpstream)
	orDefault(c, "server.shutdown_timeout", &s.ShutdownTimeout, Duration(DefaultShutdownTimeout))
	orDefault(c, "server.gc_heap_floor", &s.GCHeapFloor, DefaultGCHeapFloor)
	if s.TLS != nil {
		orZero(&s.TLS.MinVersion, DefaultTLSMinVersion)
	}
	s.trustedPrefixes = nil
	for _, p := range s.TrustedProxies {
		if pfx, ok := parseTrusted(p); ok {
			s.trustedPrefixes = append(s.trustedPrefixes, pfx)
		}
	}
}

// parseTrusted reads a trusted_proxies entry: a CIDR, or one address.
func parseTrusted(p string) (netip.Prefix, bool) {
	if pfx, err := netip.ParsePrefix(p); err == nil {
		return pfx.Masked(), true
	}
	if a, err := netip.ParseAddr(p); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), true
	}
	return netip.Prefix{}, false
}

// Provision applies the defaults of the strategy's type: the one place they
// live (config.Provision calls it for every strategy; code that builds a
// Strategy by hand calls it too). Idempotent.
func (s *Strategy) Provision() {
	switch s.Type {
	case "api_key":
		orZero(&s.Header, DefaultAPIKeyHeader)
		orZero(&s.Store, DefaultAPIKeyStore)
	case "jwt":
		s.claimDefaults()
		if s.Keys == "tokens" && s.JWKSURL == "" {
			orZero(&s.Cookie, DefaultSessionCookie)
		}
	case "basic":
		orZero(&s.Realm, DefaultBasicRealm)
	case "mtls":
		orZero(&s.SubjectFrom, DefaultSubjectFrom)
	case "oauth2":
		s.claimDefaults()
		if s.CacheTTL == nil {
			d := Duration(DefaultCacheTTL)
			s.CacheTTL = &d
		}
		if s.Login && len(s.Scopes) == 0 {
			s.Scopes = slices.Clone(DefaultLoginScopes)
		}
	}
}

// claimDefaults fills the claim names and clock leeway that token-checking
// strategies (jwt, oauth2) share.
func (s *Strategy) claimDefaults() {
	if len(s.RolesClaim) == 0 {
		s.RolesClaim = ClaimNames{DefaultRolesClaim}
	}
	orZero(&s.EmailClaim, DefaultEmailClaim)
	orZero(&s.Leeway, Duration(DefaultLeeway))
}

func (r *Route) provision(serverMaxBody int64) {
	if r.Name == "" {
		r.Name, r.nameDefaulted = r.Path, true
	}
	if cp, err := CanonicalRoutePath(r.Path); err == nil {
		r.CanonicalPath = cp
	}
	upperKnown(r.Methods)
	r.HostName = strings.TrimSuffix(strings.ToLower(r.Host), ".")
	if u, err := url.Parse(r.Upstream); err == nil && r.Upstream != "" {
		r.UpstreamURL = u
	}
	r.provisionUpstreams()
	orZero(&r.MaxBodyBytes, serverMaxBody)
	if rl := r.RateLimit; rl != nil {
		if rl.By == "" {
			rl.By = "subject"
			if r.Public {
				rl.By = "ip" // a public route has no subject
			}
		}
		orZero(&rl.OnRedisError, defaultQuotaPolicy)
		orZero(&rl.Accuracy, "exact")
		if rl.Accuracy == "approximate" {
			orZero(&rl.SyncInterval, Duration(defaultSyncInterval))
		}
	}
	if c := r.CORS; c != nil {
		if len(c.AllowedMethods) == 0 {
			c.AllowedMethods = slices.Clone(r.Methods)
			if len(c.AllowedMethods) == 0 {
				c.AllowedMethods = slices.Clone(defaultCORSMethods)
			}
		}
		upperKnown(c.AllowedMethods)
		if len(c.AllowedHeaders) == 0 {
			c.AllowedHeaders = slices.Clone(defaultCORSHeaders)
		}
		orZero(&c.MaxAge, Duration(defaultCORSMaxAge))
	}
}

// upperKnown writes the known HTTP methods of ms in upper case; an unknown
// one stays as written, for Validate to name.
func upperKnown(ms []string) {
	for i, m := range ms {
		if up := strings.ToUpper(m); slices.Contains(httpMethods, up) {
			ms[i] = up
		}
	}
}

// orDefault sets *field to def when the file did not give the key at path
// a value and the field is unset: a value written in the file, even a zero
// one ("admin_listen: \"\"" turns the admin listener off), stays.
func orDefault[T comparable](c *Config, path string, field *T, def T) {
	if !c.given[path] {
		orZero(field, def)
	}
}

// orZero sets *field to def when it is the zero value.
// defaultSyncInterval is rate_limit.sync_interval's default (approximate).
const defaultSyncInterval = 100 * time.Millisecond

func orZero[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
