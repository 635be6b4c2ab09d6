// Package server assembles a running gateway from a config: stores, strategies,
// the route table, the main and admin listeners, live reload, and their
// lifecycle.
package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/jwks"
	"github.com/authgateway/authgateway/internal/metrics"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/builtin"
	"github.com/authgateway/authgateway/internal/tokens"
)

// NewLogger builds the structured logger the config asks for.
func NewLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// App is a gateway built from a config. The parts that cannot change while
// running (listeners, Redis) are built once; the route table, strategies and
// signing keys are rebuilt by Reload and swapped atomically.
type App struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Gateway *proxy.Gateway
	Issuer  *tokens.Issuer // nil without tokens.signing_keys
	Redis   redis.UniversalClient

	cfg       atomic.Pointer[config.Config]
	reloadErr atomic.Pointer[string]
	reloadMu  sync.Mutex
	failures  *ratelimit.Limiter
	outages   *ratelimit.OutageLog              // Redis rate-limit store incidents, one log line each
	limiters  map[limiterKey]*ratelimit.Limiter // reused across reloads (memory counters survive)
	current   *generation
	sessions  *sessions
	closers   []func()
	ips       *ratelimit.IPResolver
	cert      certificate
	// Audit is the audit log (nil when audit.output is unset).
	Audit    *audit.Log
	asserter *tokens.Asserter
	eventLog io.Writer

	// started is the config the process was built from: what the
	// restart-only settings (listeners, Redis, ...) still come from.
	started *config.Config
	// restartKeys lists the loaded config's keys that wait for a restart.
	restartKeys atomic.Pointer[[]string]
	// idp is the one client for identity providers, and keySets their key
	// sets by URL: shared by the login and every strategy, across reloads.
	idp     *http.Client
	keySets *jwks.Sets
	dryRun  bool
}

// generation is what one config load built and a reload replaces.
type generation struct {
	table   *proxy.Table
	closers []func()
}

func (g *generation) close() {
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i]()
	}
}

type limiterKey struct {
	name   string
	limit  int64
	period time.Duration
	policy string
}

// Config returns the config currently served.
func (a *App) Config() *config.Config { return a.cfg.Load() }

// Option adjusts Build.
type Option func(*App)

// WithEventLog sends the per-request auth events to w as JSON lines on the
// fast path (w should be the logger's own buffered writer).
func WithEventLog(w io.Writer) Option { return func(a *App) { a.eventLog = w } }

// DryRun builds the gateway for explain, whose decisions must leave no
// trace: API key uses are not recorded (last_used_at) and no audit log is
// opened. Failures are not counted and quotas only peeked by the proxy
// itself (Gateway.Explain).
func DryRun() Option { return func(a *App) { a.dryRun = true } }

// Build constructs everything from cfg without listening. Close releases it.
func Build(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ...Option) (_ *App, err error) {
	a := &App{Logger: logger, Metrics: metrics.New(), limiters: map[limiterKey]*ratelimit.Limiter{}, idp: idp.NewHTTPClient()}
	a.keySets = jwks.NewSets(a.idp, jwks.Options{OnCache: func(hit bool) { a.Metrics.CacheResult("jwks", hit) }})
	for _, o := range opts {
		o(a)
	}
	a.cfg.Store(cfg)
	a.started = cfg
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if cfg.Redis.URL != "" {
		rc, err := redisconn.New(cfg.Redis.URL)
		if err != nil {
			return nil, fmt.Errorf("connecting to redis: %w", err)
		}
		a.Redis = rc
		a.closers = append(a.closers, func() { _ = rc.Close() })
		a.outages = ratelimit.NewOutageLog(logger.With("component", "ratelimit"), 0)
	}
	if len(cfg.Tokens.SigningKeys) > 0 {
		iss, err := tokens.NewIssuer(cfg.Tokens)
		if err != nil {
			return nil, config.Errors{cfg.Problem("tokens.signing_keys", "%v", err)}
		}
		a.Issuer = iss
		a.asserter = tokens.NewAsserter(iss.Keys, cfg.Tokens.Issuer, cfg.Tokens.IdentityTokenTTL.D())
	}
	if cfg.Server.TLS != nil {
		if err := a.cert.load(cfg.Server.TLS); err != nil {
			return nil, config.Errors{cfg.Problem("server.tls", "%v", err)}
		}
	}
	if !a.dryRun {
		if a.Audit, err = audit.Open(cfg.Audit.Output); err != nil {
			return nil, config.Errors{cfg.Problem("audit.output", "%v", err)}
		}
		a.closers = append(a.closers, func() { _ = a.Audit.Close() })
	}
	a.ips = ratelimit.NewIPResolver(cfg.Server.TrustedPrefixes())
	// Sessions (login, refresh families, the access-token denylist) come
	// first: the jwt strategy checks the denylist.
	if a.sessions, err = a.buildSessions(ctx); err != nil {
		return nil, err
	}
	a.failures, err = a.limiter(ratelimit.Options{
		Name:   authFailuresLimit,
		Limit:  cfg.RateLimits.AuthFailures.Limit,
		Period: cfg.RateLimits.AuthFailures.Period.D(),
	}, cfg.RateLimits.AuthFailures.OnRedisError)
	if err != nil {
		return nil, config.Errors{cfg.Problem("rate_limits.auth_failures", "%v", err)}
	}
	var failures proxy.FailureLimiter = a.failures
	if a.Redis != nil {
		// Clients without failures are checked without a Redis round trip.
		w := ratelimit.NewFailureWatch(a.failures, a.Redis, logger.With("component", "ratelimit"))
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(wctx) }()
		a.closers = append(a.closers, func() { cancel(); <-done })
		failures = w
	}
	gen, err := a.buildGeneration(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.current = gen
	popts := proxy.Options{
		Logger:       logger.With("component", "proxy"),
		IPResolver:   a.ips,
		AuthFailures: failures,
		Transport: proxy.NewTransport(proxy.TransportOptions{
			MaxIdleConnsPerHost:   cfg.Server.MaxIdleConnsPerUpstream,
			MaxConnsPerHost:       cfg.Server.MaxConnsPerUpstream,
			ResponseHeaderTimeout: cfg.Server.UpstreamTimeout.D(),
		}),
		Endpoints:  a.endpoints(),
		AuthEvents: *cfg.Log.AuthEvents,
		Observer:   a.observe,
	}
	if cfg.Log.Format == "json" {
		popts.EventLog = a.eventLog
	}
	if a.asserter != nil {
		popts.Asserter = a.asserter
	}
	a.Gateway = proxy.New(gen.table, popts)
	a.Metrics.ConfigLoaded(cfg.Hash, nil)
	a.Metrics.RestartRequired(nil)
	return a, nil
}

func (a *App) endpoints() map[string]http.Handler {
	endpoints := map[string]http.Handler{}
	if a.sessions != nil {
		for path, h := range a.sessions.Endpoints {
			endpoints[path] = h
		}
	}
	if a.Issuer != nil {
		endpoints["/.well-known/jwks.json"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			jwks, ok := a.Issuer.Keys.JWKS()
			if !ok {
				proxy.WriteError(w, http.StatusNotFound, "not found")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "public, max-age=300")
			_, _ = w.Write(jwks)
		})
	}
	return endpoints
}

// buildGeneration builds the strategies and route table of cfg.
func (a *App) buildGeneration(ctx context.Context, cfg *config.Config) (*generation, error) {
	gen := &generation{}
	deps := strategies.Deps{Logger: a.Logger, HTTPClient: a.idp, KeySets: a.keySets, Redis: a.Redis, OnCache: a.Metrics.CacheResult, DryRun: a.dryRun}
	if a.Issuer != nil {
		deps.Tokens = &strategies.GatewayTokens{Keys: a.Issuer.Keys, Issuer: cfg.Tokens.Issuer, AccessTTL: cfg.Tokens.AccessTTL.D()}
	}
	if a.sessions != nil {
		deps.Revocations = a.sessions.Revocations
	}
	strats, err := builtin.Build(cfg, deps)
	if err != nil {
		return nil, err
	}
	gen.closers = append(gen.closers, strats.Close)
	if err := strats.Start(ctx, cfg); err != nil {
		gen.close()
		return nil, err
	}
	table, err := a.buildTable(cfg, strats)
	if err != nil {
		gen.close()
		return nil, err
	}
	gen.table = table
	return gen, nil
}

func (a *App) limiter(o ratelimit.Options, policy string) (*ratelimit.Limiter, error) {
	key := limiterKey{o.Name, o.Limit, o.Period, policy}
	if l, ok := a.limiters[key]; ok {
		return l, nil
	}
	p, err := ratelimit.ParsePolicy(policy)
	if err != nil {
		return nil, err
	}
	o.OnStoreError = p
	var l *ratelimit.Limiter
	if a.Redis != nil {
		o.Outages = a.outages
		l, err = ratelimit.NewRedis(a.Redis, o)
	} else {
		l, err = ratelimit.NewMemory(o)
	}
	if err != nil {
		return nil, err
	}
	a.limiters[key] = l
	return l, nil
}

func (a *App) buildTable(cfg *config.Config, strats map[string]strategies.Strategy) (*proxy.Table, error) {
	routes := make([]*proxy.Route, 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		rt := &proxy.Route{
			Name: rc.Name, Prefix: rc.CanonicalPath, Methods: rc.Methods,
			Upstream: rc.UpstreamURL, Public: rc.Public,
			Roles: rc.Roles, Scopes: rc.Scopes, PassCredentials: rc.PassCredentials,
			MaxBodyBytes: rc.MaxBodyBytes, Timeout: rc.Timeout.D(), IdentityToken: rc.IdentityToken,
		}
		if c := rc.CORS; c != nil {
			rt.CORS = proxy.NewCORSPolicy(c.AllowedOrigins, c.AllowedMethods, c.AllowedHeaders, c.ExposedHeaders, c.AllowCredentials, c.MaxAge.D())
		}
		for _, name := range rc.Strategies {
			rt.Chain = append(rt.Chain, strategies.Named{Name: name, Strategy: strats[name]})
			if sc := cfg.Strategies[name]; sc.Type == "oauth2" && sc.Login {
				rt.Login = "/auth/login"
			}
		}
		if rl := rc.RateLimit; rl != nil {
			l, err := a.limiter(ratelimit.Options{Name: "route:" + rc.Name, Limit: rl.Limit, Period: rl.Period.D()}, rl.OnRedisError)
			if err != nil {
				return nil, config.Errors{cfg.Problem(fmt.Sprintf("routes[%d].rate_limit", i), "%v", err)}
			}
			rt.Limit, rt.LimitByIP = l, rl.By == "ip"
		}
		routes = append(routes, rt)
	}
	t, err := proxy.TableOptions{CaseSensitiveUpstreams: cfg.Server.CaseSensitiveUpstreams}.NewTable(routes)
	if err != nil {
		return nil, config.Errors{cfg.Problem("routes", "%v", err)}
	}
	return t, nil
}

// Close releases what Build acquired.
func (a *App) Close() {
	if a.current != nil {
		a.current.close()
		a.current = nil
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Ready reports whether the gateway can serve: Redis answers if configured
// (on a cluster, every master). An error wrapping redisconn.ErrDegraded
// means some cluster masters answer: the gateway serves what does not live
// on the others, and the error says what does.
func (a *App) Ready(ctx context.Context) error {
	if a.Redis == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return redisconn.Check(ctx, a.Redis, a.redisParts()...)
}

// observe feeds each request's event to the metrics and the audit log.
func (a *App) observe(ev *proxy.Event) {
	a.Metrics.Observe(ev)
	if a.Audit == nil {
		return
	}
	var name string
	switch ev.Outcome.Class() {
	case proxy.ClassSuccess:
		name = audit.AuthSuccess
	case proxy.ClassAuthFailure:
		name = audit.AuthFailure
	case proxy.ClassRateLimited:
		name = audit.AuthRateLimited
	case proxy.ClassRefused:
		name = audit.RequestRefused
	default:
		return
	}
	a.Audit.Write(audit.Event{
		Time: ev.Start.UTC(), Event: name, Route: ev.Route, Method: ev.Method, Path: ev.Path,
		ClientIP: ev.ClientIP.String(), Strategy: ev.Strategy, Subject: ev.Subject,
		TokenID: ev.TokenID, RequestID: ev.RequestID, Status: ev.Status, Reason: ev.Reason,
	})
}
