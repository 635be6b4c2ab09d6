package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/headertmpl"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/builtin"
	"github.com/authgateway/authgateway/internal/tokens"
)

// generation is everything one config load built: immutable once
// published, served while it is current and until the last request that
// started on it has ended, then closed. A reload builds a whole new one.
type generation struct {
	cfg     *config.Config
	gateway *proxy.Gateway // the pipeline: route table, strategies, endpoints
	strats  builtin.Set
	issuer  *tokens.Issuer   // nil without tokens.signing_keys
	cert    *tls.Certificate // nil without server.tls
	// clientCAs verify client certificates (mtls strategies); nil without
	// server.tls.client_ca_file. Read again with each generation.
	clientCAs *x509.CertPool
	// upstreams are the routes' target pools and own transports (routes
	// with several targets, https or h2c upstreams): health checks run
	// from start until the generation closes.
	upstreams generationUpstreams
	// limiters are the generation's own (approximate quotas, whose
	// flushers run until the generation closes).
	limiters []*ratelimit.Limiter

	// refs counts the App's reference while the generation is current and
	// one per request in flight on it; at zero it is closed, and can never
	// be acquired again.
	refs atomic.Int64
}

// acquire returns the current generation with a reference held for the
// caller (release it), or nil once the App is closed. A generation whose
// last reference went while it was being loaded is skipped: the current
// pointer had already moved on.
func (a *App) acquire() *generation {
	for {
		g := a.gen.Load()
		if g == nil || g.tryAcquire() {
			return g
		}
	}
}

func (g *generation) tryAcquire() bool {
	for {
		n := g.refs.Load()
		if n <= 0 {
			return false // closed (or closing): never used again
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops one reference; the last one closes the generation.
func (g *generation) release() {
	if g.refs.Add(-1) == 0 {
		g.close()
	}
}

// close stops what the generation runs: its strategies, and its
// limiters' flushers (after a last sync of their counts).
func (g *generation) close() {
	g.upstreams.close()
	g.strats.Close()
	for _, l := range g.limiters {
		l.Close()
	}
}

// start begins what the generation's strategies run (Starter) and the
// health checks of its upstreams.
func (g *generation) start(ctx context.Context) error {
	if err := g.strats.Start(ctx, g.cfg); err != nil {
		return err
	}
	g.upstreams.start(ctx)
	return nil
}

// buildGeneration builds, from cfg, everything a config load decides,
// without starting it. Restart-only settings (the token issuer's name,
// audience and lifetimes, ...) come from the config the process started
// with; everything else from cfg.
func (a *App) buildGeneration(cfg *config.Config) (_ *generation, err error) {
	g := &generation{cfg: cfg}
	if len(cfg.Tokens.SigningKeys) > 0 {
		if g.issuer, err = tokens.NewIssuer(a.tokenSettings(cfg)); err != nil {
			return nil, config.Errors{cfg.Problem("tokens.signing_keys", "%v", err)}
		}
		if g.issuer.Keys.Signer() == nil {
			return nil, config.Errors{cfg.Problem("tokens.signing_keys", "no signing key")}
		}
	}
	if cfg.Server.TLS != nil && a.started.Server.TLS != nil {
		cert, err := tls.X509KeyPair(cfg.Server.TLS.CertPEM, cfg.Server.TLS.KeyPEM)
		if err != nil {
			return nil, config.Errors{cfg.Problem("server.tls", "loading TLS certificate: %v", err)}
		}
		g.cert = &cert
	}
	if t := cfg.Server.TLS; t != nil && t.ClientCAFile != "" {
		g.clientCAs = x509.NewCertPool()
		if !g.clientCAs.AppendCertsFromPEM(t.ClientCAPEM) {
			return nil, config.Errors{cfg.Problem("server.tls.client_ca_file", "no PEM certificate in %s", t.ClientCAFile)}
		}
	}
	lh, err := a.buildLogin(cfg, g)
	if err != nil {
		return nil, err
	}
	var loginEndpoints map[string]http.Handler
	if lh != nil {
		loginEndpoints = lh.Endpoints()
	}
	deps := strategies.Deps{Logger: a.Logger, HTTPClient: a.idp, KeySets: a.keySets, Redis: a.Redis, OnCache: a.Metrics.CacheResult, DryRun: a.dryRun,
		ClientCAs: g.clientCAs}
	if g.issuer != nil {
		deps.Tokens = &strategies.GatewayTokens{Keys: g.issuer.Keys, Issuer: g.issuer.Issuer, AccessTTL: g.issuer.AccessTTL}
	}
	if a.sessions != nil {
		deps.Revocations = a.sessions
	}
	if g.strats, err = builtin.Build(cfg, deps); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	table, err := a.buildTable(cfg, g)
	if err != nil {
		return nil, err
	}
	popts := proxy.Options{
		Logger:       a.Logger.With("component", "proxy"),
		IPResolver:   a.ips,
		AuthFailures: a.failureLimiter(),
		Transport:    a.upstreamRT,
		Endpoints:    g.endpoints(loginEndpoints),
		AuthEvents:   *a.started.Log.AuthEvents,
		Observer:     a.observe,
		Tracing:      a.tracing,
	}
	if a.started.Log.Format == "json" {
		popts.EventLog = a.eventLog
	}
	if lh != nil {
		popts.Sessions = lh
	}
	if g.issuer != nil {
		popts.Asserter = tokens.NewAsserter(g.issuer.Keys, g.issuer.Issuer, a.started.Tokens.IdentityTokenTTL.D())
	}
	g.gateway = proxy.New(table, popts)
	return g, nil
}

// failureLimiter is the auth-failure limit the gateways count against:
// with Redis, through the watch of other replicas' failures.
func (a *App) failureLimiter() proxy.FailureLimiter {
	if a.failureWatch != nil {
		return a.failureWatch
	}
	return a.failures
}

// tokenSettings are cfg's signing keys with the restart-only settings of
// the tokens section as the process started.
func (a *App) tokenSettings(cfg *config.Config) config.Tokens {
	t, s := cfg.Tokens, a.started.Tokens
	t.Issuer, t.Audience, t.AccessTTL, t.RefreshTTL, t.IdentityTokenTTL = s.Issuer, s.Audience, s.AccessTTL, s.RefreshTTL, s.IdentityTokenTTL
	return t
}

// endpoints are the gateway's own handlers: the login's, and the public
// keys of the generation's signing keys.
func (g *generation) endpoints(login map[string]http.Handler) map[string]http.Handler {
	endpoints := maps.Clone(login)
	if endpoints == nil {
		endpoints = map[string]http.Handler{}
	}
	if g.issuer != nil {
		keys := g.issuer.Keys
		endpoints["/.well-known/jwks.json"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			jwks, ok := keys.JWKS()
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

func (a *App) buildTable(cfg *config.Config, g *generation) (*proxy.Table, error) {
	strats := g.strats
	policies, err := compilePolicies(cfg)
	if err != nil {
		return nil, err
	}
	routes := make([]*proxy.Route, 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		rt := &proxy.Route{
			Name: rc.Name, Prefix: rc.CanonicalPath, Methods: rc.Methods, Public: rc.Public,
			Roles: rc.Roles, Scopes: rc.Scopes, PassCredentials: rc.PassCredentials,
			MaxBodyBytes: rc.MaxBodyBytes, Timeout: rc.Timeout.D(), IdentityToken: rc.IdentityToken,
			Policy: policies[i],
		}
		if err := routeExtras(rt, rc); err != nil {
			return nil, config.Errors{cfg.Problem(fmt.Sprintf("routes[%d].request_headers", i), "%v", err)}
		}
		if err := a.routeUpstreams(cfg, i, rt, &g.upstreams); err != nil {
			return nil, err
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
			l, err := a.routeLimiter(g, "route:"+rc.Name, rl)
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

// signingAlgorithms are the algorithms of cfg's signing keys, in order.
func signingAlgorithms(cfg *config.Config) []string {
	var algs []string
	for _, k := range cfg.Tokens.SigningKeys {
		if !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	return algs
}

// routeExtras fills in the host, prefix stripping and header rules of a
// route (DESIGN.md, "Routes that fit real deployments"), compiling its
// request_headers templates.
func routeExtras(rt *proxy.Route, rc *config.Route) error {
	rt.Host, rt.PreserveHost, rt.StripPrefix = rc.HostName, rc.PreserveHost, rc.StripPrefix
	for _, name := range slices.Sorted(maps.Keys(rc.RequestHeaders)) {
		t, err := headertmpl.Parse(rc.RequestHeaders[name])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rt.RequestHeaders = append(rt.RequestHeaders, proxy.HeaderTemplate{Name: http.CanonicalHeaderKey(name), Template: t})
	}
	rt.RemoveRequestHeaders = rc.RemoveRequestHeaders
	if len(rc.ResponseHeaders) > 0 {
		rt.ResponseHeaders = http.Header{}
		for name, v := range rc.ResponseHeaders {
			rt.ResponseHeaders.Set(name, v)
		}
	}
	return nil
}

// routeLimiter is a route's quota. An approximate one (with Redis) belongs
// to g: its local counts and flusher live as long as the generation, and
// its last sync hands its counts to the next one through Redis.
func (a *App) routeLimiter(g *generation, name string, rl *config.RouteLimit) (*ratelimit.Limiter, error) {
	o := ratelimit.Options{Name: name, Limit: rl.Limit, Period: rl.Period.D()}
	if rl.Accuracy != "approximate" || a.Redis == nil {
		// Without Redis, counts are in this process anyway: exact.
		return a.limiter(o, rl.OnRedisError)
	}
	p, err := ratelimit.ParsePolicy(rl.OnRedisError)
	if err != nil {
		return nil, err
	}
	o.OnStoreError, o.Outages = p, a.outages
	o.Approximate, o.SyncInterval = true, rl.SyncInterval.D()
	o.OnSync = func(err error) { a.Metrics.RateLimitSync(name, err) }
	l, err := ratelimit.NewRedis(a.Redis, o)
	if err != nil {
		return nil, err
	}
	g.limiters = append(g.limiters, l)
	return l, nil
}
