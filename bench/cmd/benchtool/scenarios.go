package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/tokens"
)

// Target kinds: which server a scenario measures.
const (
	targetBare    = "bare"    // httputil.ReverseProxy with proxy.NewTransport
	targetNginx   = "nginx"   // reference row
	targetGateway = "gateway" // authgateway serve on a generated config
)

// Request paths. Every gateway config has a public route on /public and, when
// a scenario protects it, an authenticated route on /api.
const (
	pathAPI    = "/api/items?page=2"
	pathPublic = "/public/items?page=2"
)

// scenario is one row of the results. Adding a scenario is one entry in
// scenarios(): say which server it runs, how to change the gateway's config,
// and which credentials to rotate through.
type scenario struct {
	name string
	desc string
	// target is targetBare, targetNginx or targetGateway.
	target string
	path   string
	// gateway edits the generated config (targetGateway only); the base has
	// the listener, log defaults and the public route.
	gateway func(ctx context.Context, e *env, c *gwConfig) error
	// creds mints the credentials to rotate through from the written config
	// (nil: requests carry none).
	creds func(ctx context.Context, e *env, cfgPath string) (*creds, error)
	// baseline names the bare-proxy row this scenario's added latency and
	// throughput are measured against: the one sent the same requests, or
	// the closest ("" = bare-proxy). Every scenario but nginx takes part in
	// the half-load latency measurement.
	baseline string
	// goal is issue 22's throughput target as a fraction of the baseline's
	// req/s (0: none; the row is a reference or a variant).
	goal float64
	// login, when set, makes the credentials once the gateway runs (login
	// sessions), instead of or after creds.
	login func(ctx context.Context, e *env, url, cfgPath string) (*creds, error)
	// credMode is how a credential line becomes a request: "" (the header's
	// value), credPaths or credBrowser (see load.go).
	credMode string
	// goLoad: the closed loop is benchtool closedloop (Go) instead of wrk
	// (implied by credBrowser, which wrk cannot drive).
	goLoad bool
	// coldPass: setup times a first pass over every credential right after
	// the start, and a second (warm) one, for the report's cold-cache table.
	coldPass bool
	// refreshEvery: browser sessions renew transparently this often
	// (access_ttl − refresh_before); 0 for none.
	refreshEvery time.Duration
	// optional scenarios run only when named in SCENARIOS (or SCENARIOS=all).
	optional bool
	// versus names the single-Redis scenario that this one (on a Redis
	// Cluster) is compared with in the report; "" for the others.
	versus string
}

// baselineName is the bare row this scenario's latency is compared with.
func (sc *scenario) baselineName() string {
	if sc.baseline != "" {
		return sc.baseline
	}
	return "bare-proxy"
}

// creds are the values of one request header, rotated through in order.
type creds struct {
	header string
	values []string
	// calls, when set, counts requests the gateway makes to a backing
	// service for these credentials (introspection): the harness reports
	// how many fell in warm-ups and in measured runs.
	calls *counter
}

// counter reads a running total kept by a server the scenario started.
type counter struct {
	what string
	read func() int64
}

func scenarios() []*scenario {
	return append([]*scenario{
		{name: "bare-proxy", target: targetBare, path: pathAPI,
			desc: "stock httputil.ReverseProxy (no BufferPool), Rewrite = SetURL + SetXForwarded, Transport = proxy.NewTransport: the baseline"},
		{name: "bare-proxy-bearer", target: targetBare, path: pathAPI,
			desc: "bare-proxy sent the requests of gw-jwt-hs256 (1000 HS256 tokens in Authorization, forwarded as is): the baseline for scenarios whose requests carry a credential",
			// The config is only written to mint the tokens from.
			gateway: jwtGateway("HS256"),
			creds:   mintCreds(1000)},
		{name: "bare-proxy-bearer-go", target: targetBare, path: pathAPI, goLoad: true,
			desc:    "bare-proxy-bearer driven by benchtool closedloop (Go, the same connections and pinning) instead of wrk: the baseline of the login-session rows, which only the Go generator can drive (it keeps their cookies)",
			gateway: jwtGateway("HS256"),
			creds:   mintCreds(1000)},
		{name: "bare-proxy-apikey", target: targetBare, path: pathAPI,
			desc: "bare-proxy sent the requests of gw-apikey-file (1000 keys rotating in X-API-Key, forwarded as is): the baseline of the API key and Basic rows (rotating a header costs the load generator too)",
			creds: func(ctx context.Context, e *env, _ string) (*creds, error) {
				keys, _, err := e.apiKeys(ctx)
				if err != nil {
					return nil, err
				}
				return &creds{header: "X-API-Key", values: keys}, nil
			}},
		{name: "bare-proxy-hosts", target: targetBare, path: pathAPI, credMode: credPaths,
			desc:  "bare-proxy sent the requests of gw-scale-routes (Host and path rotating over 5,000 pairs): its baseline",
			creds: scaleRouteCreds},
		{name: "nginx", target: targetNginx, path: pathAPI,
			desc: "nginx, 1 worker, proxy_pass with upstream keepalive, access_log to /dev/null: external reference"},
		{name: "gw-public", target: targetGateway, path: pathPublic,
			desc: "gateway, public route (no auth; routing, header stripping, auth-event log on)"},
		{name: "gw-public-nolog", target: targetGateway, path: pathPublic,
			desc: "gateway, public route, log.auth_events: false (the cost of the per-request log)",
			gateway: func(_ context.Context, _ *env, c *gwConfig) error {
				c.Log = map[string]any{"auth_events": false}
				return nil
			}},
		jwtScenario("gw-jwt-hs256", "HS256", 1000),
		withOptional(&scenario{name: "gw-jwt-hs256-nofloor", target: targetGateway, path: pathAPI,
			desc:     "gw-jwt-hs256 with server.gc_heap_floor: 0 (Go's default GC pacing): beside gw-jwt-hs256 at the same instants, what the heap goal floor buys at the p99",
			baseline: "bare-proxy-bearer",
			gateway: func(ctx context.Context, e *env, c *gwConfig) error {
				c.Server["gc_heap_floor"] = 0
				return protectWithJWT(e, c, "HS256")
			},
			creds: mintCreds(1000)}),
		traceScenario("gw-jwt-hs256-trace0.01", 0.01),
		withOptional(traceScenario("gw-jwt-hs256-trace1", 1)),
		jwtScenario("gw-jwt-es256", "ES256", 1000),
		jwtScenario("gw-jwt-rs256", "RS256", 1000),
		jwtScenario("gw-jwt-es256-uncached", "ES256", -1),
		withOptional(jwtScenario("gw-jwt-rs256-uncached", "RS256", -1)),
		ratelimitRedisScenario(false),
		ratelimitApproxScenario(),
		apiKeyScenario("gw-apikey-file", "file", false),
		basicScenario(),
		apiKeyScenario("gw-apikey-redis", "redis", false),
		oauth2Scenario("gw-oauth2-introspection"),
		{name: "gw-session-cookie", target: targetGateway, path: pathAPI, baseline: "bare-proxy-bearer", goal: goalAuth,
			desc:    "gw-jwt-hs256 with each token in the session cookie __Host-authgw_access (the jwt strategy's default cookie with keys: tokens) instead of Authorization",
			gateway: jwtGateway("HS256"),
			creds: func(ctx context.Context, e *env, cfgPath string) (*creds, error) {
				c, err := mintCreds(1000)(ctx, e, cfgPath)
				if err != nil {
					return nil, err
				}
				for i, v := range c.values {
					c.values[i] = sessionCookie + "=" + strings.TrimPrefix(v, "Bearer ")
				}
				c.header = "Cookie"
				return c, nil
			}},
		loginScenario("gw-session-login-refresh", refreshSessions, refreshAccessTTL, refreshRefreshBefore, false),
		sessionLoginControl(),
		loginScenario("gw-session-login-refresh-redis", refreshSessions, refreshAccessTTL, refreshRefreshBefore, true),
		authFailRedisScenario(false),
		{name: "gw-legacy-route", target: targetGateway, path: pathAPI,
			desc:     "legacy route: gw-jwt-hs256's 1000 tokens on a route with host, strip_prefix (the upstream gets /items) and three templated request_headers ({subject}, {roles}, {claims.email}) and an allow_if CEL policy (email domain or ops role)",
			baseline: "bare-proxy-bearer", goal: goalAuth,
			gateway: legacyRouteGateway,
			creds:   mintCreds(1000)},
		// The Redis-backed scenarios again on a 3-master Redis Cluster; the
		// report gives each as ratios to its single-Redis row.
		ratelimitRedisScenario(true),
		authFailRedisScenario(true),
		apiKeyScenario("gw-apikey-rediscluster", "redis", true),
	}, scaleScenarios()...)
}

// redisName is the part of a scenario name that says where Redis is.
func redisName(cluster bool) string {
	if cluster {
		return "rediscluster"
	}
	return "redis"
}

// onCluster marks sc as the Redis Cluster variant of the single-Redis
// scenario versus.
func onCluster(sc *scenario, versus string) *scenario {
	sc.versus = versus
	sc.goal = 0 // judged against its single-Redis row instead
	sc.desc += "; Redis is a " + strconv.Itoa(clusterMasters) + "-master Redis Cluster on loopback (redis+cluster://), pinned with the servers"
	return sc
}

// ratelimitRedisScenario: gw-jwt-hs256 plus a per-subject quota on Redis.
func ratelimitRedisScenario(cluster bool) *scenario {
	sc := &scenario{name: "gw-jwt-hs256-ratelimit-" + redisName(cluster), target: targetGateway, path: pathAPI,
		desc:     "gw-jwt-hs256 plus a per-subject rate_limit (never reached) on a local redis-server",
		baseline: "bare-proxy-bearer", goal: goalAuth,
		gateway: func(ctx context.Context, e *env, c *gwConfig) error {
			if err := jwtWithRedis(cluster)(ctx, e, c); err != nil {
				return err
			}
			c.Routes[len(c.Routes)-1]["rate_limit"] = map[string]any{"limit": 1_000_000_000, "period": "1m", "by": "subject"}
			return nil
		},
		creds: countRedis(mintCreds(1000), cluster)}
	if cluster {
		return onCluster(sc, "gw-jwt-hs256-ratelimit-redis")
	}
	return sc
}

// ratelimitApproxScenario: gw-jwt-hs256-ratelimit-redis with the quota's
// accuracy: approximate twin (counted locally, synced every 100ms).
func ratelimitApproxScenario() *scenario {
	sc := ratelimitRedisScenario(false)
	sc.name = "gw-jwt-hs256-ratelimit-approx-redis"
	sc.desc = "gw-jwt-hs256-ratelimit-redis with accuracy: approximate, sync_interval: 100ms (local counts, one pipelined sync per interval)"
	exact := sc.gateway
	sc.gateway = func(ctx context.Context, e *env, c *gwConfig) error {
		if err := exact(ctx, e, c); err != nil {
			return err
		}
		rl := c.Routes[len(c.Routes)-1]["rate_limit"].(map[string]any)
		rl["accuracy"], rl["sync_interval"] = "approximate", "100ms"
		return nil
	}
	return sc
}

// authFailRedisScenario: gw-jwt-hs256 with redis.url set and nothing else.
func authFailRedisScenario(cluster bool) *scenario {
	sc := &scenario{name: "gw-jwt-hs256-" + redisName(cluster) + "-authfail", target: targetGateway, path: pathAPI,
		desc:     "gw-jwt-hs256 with redis.url set and no route quota: the auth-failure limiter (and whatever else uses Redis) is Redis-backed, what every authenticated request costs with Redis configured",
		baseline: "bare-proxy-bearer", goal: goalAuth,
		gateway: jwtWithRedis(cluster),
		creds:   countRedis(mintCreds(1000), cluster)}
	if cluster {
		return onCluster(sc, "gw-jwt-hs256-redis-authfail")
	}
	return sc
}

// sessionCookie is the jwt strategy's default cookie with keys: tokens.
const sessionCookie = "__Host-authgw_access"

// countRedis adds the command count of the harness's Redis (the single
// redis-server, or the cluster) to mint's credentials: the report then
// gives Redis commands per request.
func countRedis(mint func(context.Context, *env, string) (*creds, error), cluster bool) func(context.Context, *env, string) (*creds, error) {
	return func(ctx context.Context, e *env, cfgPath string) (*creds, error) {
		c, err := mint(ctx, e, cfgPath)
		if err == nil {
			c.calls = e.redisCounter(cluster)
		}
		return c, err
	}
}

func withOptional(s *scenario) *scenario { s.optional = true; return s }

// Issue 22's throughput targets, as fractions of the baseline's req/s.
const (
	goalAuth  = 0.95 // every authenticated path
	goalBasic = 0.90 // Basic (cached)
	goalScale = 0.90 // the scale runs
)

// traceScenario is gw-jwt-hs256 with tracing on at ratio, exporting over
// OTLP/HTTP to the bench upstream, which discards the spans.
func traceScenario(name string, ratio float64) *scenario {
	sc := &scenario{name: name, target: targetGateway, path: pathAPI,
		desc:     fmt.Sprintf("gw-jwt-hs256 with tracing on, sample_ratio %g, spans exported over OTLP/HTTP (to the upstream, which discards them)", ratio),
		baseline: "bare-proxy-bearer",
		gateway: func(ctx context.Context, e *env, c *gwConfig) error {
			c.Tracing = map[string]any{"otlp_endpoint": e.upstream + otlpTracesPath, "sample_ratio": ratio}
			return protectWithJWT(e, c, "HS256")
		},
		creds: mintCreds(1000)}
	if ratio <= 0.01 {
		sc.goal = goalAuth // the "tracing at 1% sampling"
	}
	return sc
}

// jwtScenario protects /api with a jwt strategy verifying the gateway's own
// tokens signed with alg. n tokens are minted; n < 0 means MISS_TOKENS, more
// distinct tokens than the strategy's verified-token cache holds, so most
// requests pay for a full signature check.
func jwtScenario(name, alg string, n int) *scenario {
	desc := fmt.Sprintf("gateway, jwt strategy, %s, %d distinct tokens (after warm-up: verified-token cache hits)", alg, n)
	if n < 0 {
		desc = fmt.Sprintf("gateway, jwt strategy, %s, MISS_TOKENS distinct tokens rotated in order: mostly cache misses, full signature checks", alg)
	}
	sc := &scenario{
		name: name, target: targetGateway, path: pathAPI, desc: desc,
		baseline: "bare-proxy-bearer", goal: goalAuth,
		gateway: jwtGateway(alg),
		creds:   mintCreds(n),
	}
	if n < 0 {
		sc.goal = 0 // the cold path: no target of its own
	}
	return sc
}

// jwtGateway is a scenario's gateway edit: protectWithJWT with alg.
func jwtGateway(alg string) func(context.Context, *env, *gwConfig) error {
	return func(_ context.Context, e *env, c *gwConfig) error { return protectWithJWT(e, c, alg) }
}

// jwtWithRedis is gw-jwt-hs256's config with redis.url set to the
// harness's redis-server or, with cluster, its Redis Cluster.
func jwtWithRedis(cluster bool) func(context.Context, *env, *gwConfig) error {
	return func(ctx context.Context, e *env, c *gwConfig) error {
		if err := protectWithJWT(e, c, "HS256"); err != nil {
			return err
		}
		url, err := e.redisFor(ctx, cluster)
		if err != nil {
			return err
		}
		c.Redis = map[string]any{"url": url}
		return nil
	}
}

// protectWithJWT adds a signing key for alg and a route /api guarded by a
// jwt strategy that verifies the gateway's own tokens and wants role "user".
func protectWithJWT(e *env, c *gwConfig, alg string) error {
	key, err := e.signingKey(alg)
	if err != nil {
		return err
	}
	c.Tokens = map[string]any{
		"issuer": benchIssuer, "audience": benchAudience,
		// Tokens minted at the start must outlive a long ROUNDS/DURATION run.
		"access_ttl": "2h", "allow_long_ttl": true,
		"signing_keys": []any{key},
	}
	c.Strategies["jwt"] = map[string]any{
		"type": "jwt", "issuer": benchIssuer, "audience": benchAudience,
		"algorithms": []string{alg}, "keys": "tokens", "roles_claim": "roles", "leeway": "30s",
	}
	c.Routes = append(c.Routes, map[string]any{
		"name": "api", "path": "/api", "upstream": e.upstream,
		"strategies": []string{"jwt"}, "roles": []string{"user"},
	})
	return nil
}

// legacyRouteGateway is gw-jwt-hs256 with /api made a legacy route
// (DESIGN.md, "Routes that fit real deployments"): on the host the load
// generator names (wrk sends the URL's 127.0.0.1:port), prefix stripped,
// the app's own identity headers rendered from the verified token.
func legacyRouteGateway(_ context.Context, e *env, c *gwConfig) error {
	if err := protectWithJWT(e, c, "HS256"); err != nil {
		return err
	}
	rt := c.Routes[len(c.Routes)-1]
	rt["host"] = "127.0.0.1"
	rt["strip_prefix"] = true
	rt["request_headers"] = map[string]string{
		"X-WEBAUTH-USER": "{subject}",
		"X-User-Roles":   "{roles}",
		"X-User-Email":   "{claims.email}",
	}
	// Every bench token's email is @example.com, so the policy admits all
	// and each request pays for evaluating it.
	rt["allow_if"] = `identity.email.endsWith("@example.com") || "ops" in identity.roles`
	return nil
}

const (
	benchIssuer   = "bench.authgateway.test"
	benchAudience = "bench"
)

// mintCreds mints n access tokens exactly as `authgateway token -config F`
// does (config.Load, tokens.NewIssuer, Issuer.Access: iss, aud, sub, iat,
// nbf, exp, jti, type=access, typ at+jwt, kid), for subjects user-0..n-1
// with a realistic mix of claims. n < 0 means e.missTokens.
func mintCreds(n int) func(context.Context, *env, string) (*creds, error) {
	return func(ctx context.Context, e *env, cfgPath string) (*creds, error) {
		if n < 0 {
			n = e.missTokens
		}
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", cfgPath, err)
		}
		iss, err := tokens.NewIssuer(cfg.Tokens)
		if err != nil {
			return nil, fmt.Errorf("building issuer: %w", err)
		}
		values := make([]string, n)
		g, ctx := errgroup.WithContext(ctx)
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			g.Go(func() error {
				for i := w; i < n; i += workers {
					if err := ctx.Err(); err != nil {
						return err
					}
					c := tokens.AccessClaims{
						Subject: "user-" + strconv.Itoa(i),
						Email:   "user-" + strconv.Itoa(i) + "@example.com",
						Roles:   []string{"user"},
						Scopes:  []string{"items:read"},
					}
					if i%10 == 0 {
						c.Roles = append(c.Roles, "admin")
						c.Scopes = append(c.Scopes, "items:write", "billing:read")
					}
					tok, _, _, err := iss.Access(c)
					if err != nil {
						return fmt.Errorf("minting token: %w", err)
					}
					values[i] = "Bearer " + tok
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		return &creds{header: "Authorization", values: values}, nil
	}
}

// gwConfig is the generated gateway config (see internal/config for keys).
type gwConfig struct {
	Server     map[string]any            `yaml:"server"`
	Redis      map[string]any            `yaml:"redis,omitempty"`
	Tokens     map[string]any            `yaml:"tokens,omitempty"`
	Strategies map[string]map[string]any `yaml:"strategies,omitempty"`
	Routes     []map[string]any          `yaml:"routes"`
	Log        map[string]any            `yaml:"log,omitempty"`
	Tracing    map[string]any            `yaml:"tracing,omitempty"`
	Sessions   map[string]any            `yaml:"sessions,omitempty"`
}

// baseConfig is what every gateway scenario starts from: the gateway as it
// ships (log defaults: one auth event per request), no admin listener, and a
// public route.
func baseConfig(listen, upstream string) *gwConfig {
	return &gwConfig{
		Server:     map[string]any{"listen": listen, "admin_listen": ""},
		Strategies: map[string]map[string]any{},
		Routes: []map[string]any{
			{"name": "public", "path": "/public", "upstream": upstream, "public": true},
		},
	}
}

// signingKey returns the tokens.signing_keys entry for alg, writing the
// secret or private key into the temp dir the first time.
func (e *env) signingKey(alg string) (map[string]any, error) {
	if k, ok := e.keys[alg]; ok {
		return k, nil
	}
	kid := "bench-" + alg
	path := filepath.Join(e.dir, kid+".pem")
	var (
		der  []byte
		err  error
		kind = "PRIVATE KEY"
	)
	switch alg {
	case "HS256":
		secret := make([]byte, 48)
		_, _ = rand.Read(secret)
		path = filepath.Join(e.dir, kid+".secret")
		if err := os.WriteFile(path, []byte(base64.RawURLEncoding.EncodeToString(secret)), 0o600); err != nil {
			return nil, err
		}
		k := map[string]any{"kid": kid, "algorithm": alg, "secret_file": path}
		e.keys[alg] = k
		return k, nil
	case "ES256":
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err == nil {
			der, err = x509.MarshalPKCS8PrivateKey(k)
		}
	case "RS256":
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			der, err = x509.MarshalPKCS8PrivateKey(k)
		}
	default:
		return nil, fmt.Errorf("no key generator for %s", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	k := map[string]any{"kid": kid, "algorithm": alg, "private_key_file": path}
	e.keys[alg] = k
	return k, nil
}
