// Package config loads, expands and validates the gateway's YAML configuration.
//
// Loading is, each step once: read the file → parse into a YAML node tree →
// expand ${VAR} and ${VAR:-default} in scalar values (never in keys, so an
// environment value cannot add structure) → check for unknown keys and
// values of the wrong shape → decode onto the zero Config → Provision
// (every default, applied in provision.go and nowhere else; relative paths
// resolved against the config file's directory) → Validate (pure: reads
// the config only) → LoadSecrets (reads the *_file secrets, key files and
// TLS files). Every problem of every step is reported at once, each with
// its file and line.
package config

import (
	"net/netip"
	"net/url"
	"time"
)

// Config is the whole gateway configuration.
type Config struct {
	Server     Server               `yaml:"server"`
	Redis      Redis                `yaml:"redis"`
	Tokens     Tokens               `yaml:"tokens"`
	Sessions   Sessions             `yaml:"sessions"`
	Strategies map[string]*Strategy `yaml:"strategies"`
	Routes     []*Route             `yaml:"routes"`
	RateLimits RateLimits           `yaml:"rate_limits"`
	Log        Log                  `yaml:"log"`
	Audit      Audit                `yaml:"audit"`
	Tracing    Tracing              `yaml:"tracing"`

	// Path is the file the config was loaded from. Relative file paths in
	// the config were resolved against its directory by Load.
	Path string `yaml:"-"`
	// Hash is the SHA-256 hex of the file's bytes (reported by /readyz).
	Hash string `yaml:"-"`
	// lines maps a YAML path ("routes[1].strategies") to its line, for errors.
	lines map[string]int
	// given holds the YAML paths the file gave a value: Provision leaves
	// those as written, zero or not.
	given map[string]bool
	// notes maps a YAML path to what to add to any problem there: which
	// ${VAR} its value referred to was unset.
	notes map[string]string
	// relative maps a file key whose value was a relative path to that
	// value as written (resolvePaths made it absolute).
	relative map[string]string
}

// Server configures the listeners and the limits that protect them.
type Server struct {
	// Listen is the main listener address. Default ":8080".
	Listen string `yaml:"listen"`
	// AdminListen serves /healthz, /readyz and /metrics. Default "127.0.0.1:9090"; "" disables.
	AdminListen string `yaml:"admin_listen"`
	// TLS, when set, makes Listen serve HTTPS.
	TLS *TLS `yaml:"tls"`
	// HTTPSOnly refuses to start without tls, unless BehindTLSProxy says a
	// trusted proxy terminates TLS; then requests a trusted proxy forwarded
	// with X-Forwarded-Proto other than https are redirected (308). Default false.
	HTTPSOnly bool `yaml:"https_only"`
	// BehindTLSProxy: TLS is terminated by a proxy in trusted_proxies.
	BehindTLSProxy bool `yaml:"behind_tls_proxy"`
	// TrustedProxies are the peers (CIDRs or addresses) whose X-Forwarded-For,
	// X-Forwarded-Proto and X-Original-* headers are believed. Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`

	// ReadHeaderTimeout bounds how long a client may take to send headers (slowloris). Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes caps request header size. Default 32 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes caps request bodies unless a route overrides it. Default 10 MiB; -1 = no limit.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// UpstreamTimeout bounds the wait for an upstream's response headers (504 after). Default 30s.
	UpstreamTimeout Duration `yaml:"upstream_timeout"`
	// MaxIdleConnsPerUpstream sizes the keep-alive pool to each upstream. Default 1024.
	MaxIdleConnsPerUpstream int `yaml:"max_idle_conns_per_upstream"`
	// MaxConnsPerUpstream caps concurrent connections to one upstream. Default 0 (no cap).
	MaxConnsPerUpstream int `yaml:"max_conns_per_upstream"`
	// ShutdownTimeout is how long in-flight requests may take to drain on SIGTERM. Default 20s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// CaseSensitiveUpstreams says every upstream matches paths
	// case-sensitively. Default false: a request whose path, compared
	// case-insensitively, matches another route than its exact spelling is
	// refused with 400, and route paths that differ only in case are a
	// config error. True turns both off.
	CaseSensitiveUpstreams bool `yaml:"case_sensitive_upstreams"`
	// GCHeapFloor, in bytes, is how far the heap may at least grow past
	// what the last collection left live before the next one (package
	// gcfloor; four times a live heap of more than a quarter of it, up to
	// twice it, as a large heap takes longer to mark), until the live heap
	// and stacks are that large themselves: fewer collections under load,
	// a lower p99, however much the caches hold. Default 32 MiB
	// (33554432); 0 turns it off, and so does GOGC in the environment.
	// Process-wide, read at start.
	GCHeapFloor int64 `yaml:"gc_heap_floor"`
	// AdminTokenFile names the file holding the admin token: when set,
	// the dashboard and admin API need it (a login form setting a cookie,
	// or Authorization: Bearer). Default unset: the admin listener must then
	// be on loopback, or validate warns.
	AdminTokenFile string `yaml:"admin_token_file"`
	// AdminToken is AdminTokenFile's content (LoadSecrets).
	AdminToken string `yaml:"-"`

	trustedPrefixes []netip.Prefix
}

// TrustedPrefixes returns TrustedProxies parsed (set by Provision).
func (s *Server) TrustedPrefixes() []netip.Prefix { return s.trustedPrefixes }

// TLS configures HTTPS on the main listener.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// RedirectHTTP, when set, is a plain-HTTP listener answering 308 to https.
	RedirectHTTP string `yaml:"redirect_http"`
	// HSTS adds Strict-Transport-Security to every response.
	HSTS bool `yaml:"hsts"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// ClientCAFile, when set, makes the listener ask clients for a
	// certificate (never require one): mtls strategies verify it against
	// the CA certificates this PEM file holds. Default unset: no request.
	ClientCAFile string `yaml:"client_ca_file"`
	// CertPEM and KeyPEM are the contents of CertFile and KeyFile, and
	// ClientCAPEM that of ClientCAFile (read by LoadSecrets).
	CertPEM, KeyPEM, ClientCAPEM []byte `yaml:"-"`
}

// Redis points at the shared state store.
type Redis struct {
	// URL is redis://, rediss://, redis+cluster:// or redis+sentinel://; empty = in-memory state.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
}

// Tokens configures the gateway as a token issuer.
type Tokens struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// AccessTTL is the lifetime of access tokens the gateway mints. Default 15m; more needs AllowLongTTL.
	AccessTTL Duration `yaml:"access_ttl"`
	// RefreshTTL is the lifetime of refresh tokens. Default 168h.
	RefreshTTL   Duration     `yaml:"refresh_ttl"`
	AllowLongTTL bool         `yaml:"allow_long_ttl"`
	SigningKeys  []SigningKey `yaml:"signing_keys"`
	// IdentityTokenTTL is the lifetime of X-Auth-Token assertions. Default 60s.
	IdentityTokenTTL Duration `yaml:"identity_token_ttl"`
}

// Sessions configures the browser sessions of the login (oauth2 with
// login: true): how they refresh, how long they may live.
type Sessions struct {
	// TransparentRefresh: a request whose access cookie is missing, expired
	// or expires within RefreshBefore, with a valid refresh cookie, on a
	// route whose strategies read the session cookie, is served: the
	// session rotates in that request and the new cookies ride on its
	// response. Default true.
	TransparentRefresh *bool `yaml:"transparent_refresh"`
	// RefreshBefore is how long before its access token expires a session
	// is refreshed transparently. Default 1m, or a quarter of
	// tokens.access_ttl when that is less; must be shorter than access_ttl.
	RefreshBefore Duration `yaml:"refresh_before"`
	// ReuseGrace: a refresh token presented again within this after it
	// rotated gets the same successor (tabs, parallel requests); later
	// reuse revokes the whole family. Default 30s; "0s" = any reuse revokes.
	ReuseGrace Duration `yaml:"reuse_grace"`
	// AbsoluteTTL ends a session this long after its login, whatever
	// refreshes happen. Default 24h; "0s" = no bound beyond refresh_ttl of
	// inactivity.
	AbsoluteTTL Duration `yaml:"absolute_ttl"`
	// UpdateOnRefresh: at every rotation re-read the user's roles and email
	// from the provider (its refresh token, kept sealed in the session
	// store, then userinfo); the provider refusing ends the session.
	// Default false.
	UpdateOnRefresh bool `yaml:"update_on_refresh"`
	// ProviderLogout: /auth/logout also ends the provider's session
	// (RP-initiated logout at its end_session_endpoint, with id_token_hint,
	// post_logout_redirect_uri and state). Default false.
	ProviderLogout bool `yaml:"provider_logout"`
	// PostLogoutRedirect is where the browser lands after logout: a path of
	// this gateway, or a URL on one of the login's allowed_redirect_hosts.
	// The provider must know it as a post-logout redirect URI (absolute,
	// from the login's redirect_url origin). Default "/".
	PostLogoutRedirect string `yaml:"post_logout_redirect"`
	// BackchannelLogout serves POST /auth/backchannel-logout: a logout
	// token of the provider ends the sessions of its sid or sub on every
	// replica. Default false.
	BackchannelLogout bool `yaml:"backchannel_logout"`
}

// TransparentRefreshOn reports TransparentRefresh with its default.
func (s Sessions) TransparentRefreshOn() bool {
	return s.TransparentRefresh == nil || *s.TransparentRefresh
}

// SigningKey is one of the gateway's signing keys; the first signs, all verify.
type SigningKey struct {
	Kid       string `yaml:"kid"`
	Algorithm string `yaml:"algorithm"`
	// Secret is the HMAC secret (HS*), at least 32 bytes.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// PrivateKeyFile is a PEM private key for RS*/PS*/ES*/EdDSA.
	PrivateKeyFile string `yaml:"private_key_file"`
	// PublicKeyFile is a PEM public key: the key then only verifies.
	PublicKeyFile string `yaml:"public_key_file"`
	// KeyPEM is the content of PrivateKeyFile or PublicKeyFile (read by
	// LoadSecrets).
	KeyPEM []byte `yaml:"-"`
}

// Strategy is one named authentication strategy. Which fields apply depends on Type.
type Strategy struct {
	// Type is api_key, jwt, oauth2, basic or mtls.
	Type string `yaml:"type"`

	// api_key: Header carrying the key (default X-API-Key); accepted Prefixes;
	// Store file|redis (default file); File path for the file store.
	Header   string   `yaml:"header"`
	Prefixes []string `yaml:"prefixes"`
	Store    string   `yaml:"store"`
	File     string   `yaml:"file"`

	// jwt: Issuer and Audience required in every token; Algorithms pinned;
	// Keys "tokens" (tokens.signing_keys) or JWKSURL; claim names; Leeway (default 30s).
	Issuer      string     `yaml:"issuer"`
	Audience    string     `yaml:"audience"`
	Algorithms  []string   `yaml:"algorithms"`
	Keys        string     `yaml:"keys"`
	JWKSURL     string     `yaml:"jwks_url"`
	RolesClaim  ClaimNames `yaml:"roles_claim"` // one dotted claim or a list (union)
	ScopesClaim string     `yaml:"scopes_claim"`
	EmailClaim  string     `yaml:"email_claim"`
	Leeway      Duration   `yaml:"leeway"`
	// Cookie is the session cookie the jwt strategy also reads the access token
	// from (browser sessions). Default "__Host-authgw_access" when keys: tokens.
	Cookie string `yaml:"cookie"`

	// oauth2: provider endpoints (IssuerURL → OIDC discovery, or explicit URLs).
	IssuerURL        string    `yaml:"issuer_url"`
	AuthorizationURL string    `yaml:"authorization_url"`
	TokenURL         string    `yaml:"token_url"`
	IntrospectionURL string    `yaml:"introspection_url"`
	UserinfoURL      string    `yaml:"userinfo_url"`
	ClientID         string    `yaml:"client_id"`
	ClientSecret     string    `yaml:"client_secret"`
	ClientSecretFile string    `yaml:"client_secret_file"`
	CacheTTL         *Duration `yaml:"cache_ttl"`
	Scopes           []string  `yaml:"scopes"`
	RedirectURL      string    `yaml:"redirect_url"`
	Login            bool      `yaml:"login"`
	// AllowedRedirectHosts are hosts the post-login `rd` may point at besides this gateway.
	AllowedRedirectHosts []string `yaml:"allowed_redirect_hosts"`
	// AllowUnverifiedEmail (with login: true) lets users sign in whose email
	// the provider states unverified (email_verified false; the session then
	// has no email), and keeps an email the provider says nothing about.
	// Default false: the first are refused, the second sign in without an
	// email. A stated-unverified email never reaches the session.
	AllowUnverifiedEmail bool `yaml:"allow_unverified_email"`

	// basic: HtpasswdFile is an Apache htpasswd file of bcrypt hashes
	// (required; watched: edits apply at once); Realm names the Basic
	// challenge (default "authgateway").
	HtpasswdFile string `yaml:"htpasswd_file"`
	Realm        string `yaml:"realm"`
	// mtls: SubjectFrom is where the subject is read from the verified
	// client certificate: cn (default), san_dns, san_uri or san_email;
	// AllowedSubjects, when set, are the only subjects accepted.
	SubjectFrom     string   `yaml:"subject_from"`
	AllowedSubjects []string `yaml:"allowed_subjects"`
	// basic, mtls: Roles are given to every user; UserRoles adds roles
	// per user (subject). Default none.
	Roles     []string            `yaml:"roles"`
	UserRoles map[string][]string `yaml:"user_roles"`
}

// Route maps a path prefix to an upstream and the rules that guard it.
type Route struct {
	Name       string   `yaml:"name"`
	Path       string   `yaml:"path"`
	Methods    []string `yaml:"methods"`
	Upstream   string   `yaml:"upstream"`
	Strategies []string `yaml:"strategies"`
	// Roles: any of. Scopes: all of.
	Roles  []string `yaml:"roles"`
	Scopes []string `yaml:"scopes"`
	Public bool     `yaml:"public"`
	// PassCredentials forwards the credential headers (Authorization, the API
	// key header) to the upstream. Default false: the upstream gets identity
	// headers instead.
	PassCredentials bool        `yaml:"pass_credentials"`
	RateLimit       *RouteLimit `yaml:"rate_limit"`
	MaxBodyBytes    int64       `yaml:"max_body_bytes"`
	Timeout         Duration    `yaml:"timeout"`
	CORS            *CORS       `yaml:"cors"`
	// IdentityToken adds X-Auth-Token: a short-lived JWT signed with
	// tokens.signing_keys stating the identity, so the upstream can check the
	// request came through the gateway (verify with /.well-known/jwks.json).
	IdentityToken bool `yaml:"identity_token"`

	// Routes that fit real deployments (DESIGN.md). Host: "" (default) for
	// every host, an exact name, or "*.example.com" for exactly one more
	// label; compared case-insensitively, port and a trailing dot ignored.
	Host string `yaml:"host"`
	// PreserveHost sends the client's Host to the upstream. Default false:
	// the upstream URL's host.
	PreserveHost bool `yaml:"preserve_host"`
	// StripPrefix forwards the path without the route's path ("/legacy/a" as
	// "/a", "/legacy" as "/") and sets X-Forwarded-Prefix. Default false.
	StripPrefix bool `yaml:"strip_prefix"`
	// RequestHeaders are set on the forwarded request, values being
	// identity templates ({subject}, {claims.a.b}, ...); inbound copies of
	// each name are deleted first. Default none.
	RequestHeaders map[string]string `yaml:"request_headers"`
	// RemoveRequestHeaders are deleted from the forwarded request. Default none.
	RemoveRequestHeaders []string `yaml:"remove_request_headers"`
	// ResponseHeaders are set on every answer to the client on this route,
	// the upstream's and the gateway's own (401, 403, 405, 502, ...).
	// Default none.
	ResponseHeaders map[string]string `yaml:"response_headers"`
	// HostName is Host in lower case without a trailing dot (set by Provision).
	HostName string `yaml:"-"`

	// AllowIf is a CEL expression over identity, request and now, checked
	// after roles and scopes: false or an evaluation error is 403
	// (README.md, "Policies (allow_if)"). Default "": no policy. Compiled
	// when the config loads; not on public routes.
	AllowIf string `yaml:"allow_if"`
	// CanonicalPath is Path in the form the route table uses (set by Load).
	CanonicalPath string `yaml:"-"`
	// UpstreamURL is Upstream parsed (set by Load).
	UpstreamURL *url.URL `yaml:"-"`

	// Upstreams, instead of Upstream, are several instances of one app
	// (upstreams.go): round robin over the healthy ones.
	Upstreams []string `yaml:"upstreams"`
	// HealthCheck probes each target; nil: targets are only ejected
	// passively, when they refuse connections.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// UpstreamTLS verifies https upstreams with a private CA and presents
	// a client certificate (mTLS).
	UpstreamTLS *UpstreamTLS `yaml:"upstream_tls"`
	// UpstreamURLs is Upstreams parsed (set by Provision).
	UpstreamURLs []*url.URL `yaml:"-"`

	nameDefaulted bool // Name is the path: Provision named the route
}

// CORS is a route's cross-origin policy; the gateway answers preflights.
type CORS struct {
	// AllowedOrigins are exact origins ("https://app.example.com"), or "*"
	// (not with AllowCredentials). No wildcards inside an origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedMethods default to the route's methods, else GET, HEAD, POST.
	AllowedMethods []string `yaml:"allowed_methods"`
	// AllowedHeaders the browser may send (default Authorization, Content-Type).
	AllowedHeaders   []string `yaml:"allowed_headers"`
	ExposedHeaders   []string `yaml:"exposed_headers"`
	AllowCredentials bool     `yaml:"allow_credentials"`
	// MaxAge of a preflight answer in the browser's cache. Default 10m.
	MaxAge Duration `yaml:"max_age"`
}

// Audit is the separate audit log of security events.
type Audit struct {
	// Output is "" (off, the default), "stdout", "stderr" or a file path
	// (appended to, created 0600).
	Output string `yaml:"output"`
}

// Tracing exports OpenTelemetry traces over OTLP/HTTP.
type Tracing struct {
	// OTLPEndpoint is the collector's OTLP/HTTP URL (http://jaeger:4318);
	// spans go to its /v1/traces. Default unset: tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// ServiceName is the traces' service.name. Default "authgateway".
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the share of new traces recorded, 0 to 1; a trusted
	// proxy's sampled traceparent is followed whatever it is. Default 0.1.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// RouteLimit is a per-route request quota.
type RouteLimit struct {
	Limit  int64    `yaml:"limit"`
	Period Duration `yaml:"period"`
	// By is subject (the authenticated identity; default) or ip.
	By string `yaml:"by"`
	// OnRedisError is allow (default for quotas) or deny.
	OnRedisError string `yaml:"on_redis_error"`
	// Accuracy is exact (default: one atomic Redis operation per request)
	// or approximate (counted locally, synced every SyncInterval; the limit
	// may be overshot by what the replicas admit in about one interval).
	Accuracy string `yaml:"accuracy"`
	// SyncInterval is how often approximate counts are synced to Redis.
	// Default 100ms; must be shorter than Period.
	SyncInterval Duration `yaml:"sync_interval"`
}

// RateLimits holds the gateway-wide limits.
type RateLimits struct {
	// AuthFailures limits failed authentications per client IP. Default 10 per 1m.
	AuthFailures *FailureLimit `yaml:"auth_failures"`
}

// FailureLimit is the auth-failure limit.
type FailureLimit struct {
	Limit  int64    `yaml:"limit"`
	Period Duration `yaml:"period"`
	// OnRedisError is deny (default: an attacker must not gain unlimited guesses
	// by overloading Redis) or allow.
	OnRedisError string `yaml:"on_redis_error"`
}

// Log configures the structured log.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
	// AuthEvents logs one event per request (default true).
	AuthEvents *bool `yaml:"auth_events"`
}

// Duration is a time.Duration that reads Go durations plus a "d" suffix for days.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
