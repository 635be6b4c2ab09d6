// Package server assembles a running gateway from a config: stores, strategies,
// the route table, the main and admin listeners, and their lifecycle.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/strategies"
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

// App is a gateway built from one config.
type App struct {
	Config  *config.Config
	Logger  *slog.Logger
	Gateway *proxy.Gateway
	Issuer  *tokens.Issuer // nil without tokens.signing_keys
	Redis   redis.UniversalClient

	closers []func()
}

// Build constructs everything from cfg without listening. Close releases it.
func Build(ctx context.Context, cfg *config.Config, logger *slog.Logger) (_ *App, err error) {
	a := &App{Config: cfg, Logger: logger}
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
	}
	if len(cfg.Tokens.SigningKeys) > 0 {
		iss, err := tokens.NewIssuer(cfg.Tokens)
		if err != nil {
			return nil, config.Errors{cfg.Problem("tokens.signing_keys", "%v", err)}
		}
		a.Issuer = iss
	}
	deps := strategies.Deps{Logger: logger, HTTPClient: providerClient()}
	if a.Issuer != nil {
		deps.TokenKeys = a.Issuer.Keys
	}
	// Sessions (login, refresh families, the access-token denylist) come
	// first: the jwt strategy checks the denylist.
	sess, err := a.buildSessions(ctx)
	if err != nil {
		return nil, err
	}
	if sess != nil {
		deps.Revocations = sess.Revocations
	}
	strats, err := strategies.Build(cfg, deps)
	if err != nil {
		return nil, err
	}
	table, err := a.buildTable(strats)
	if err != nil {
		return nil, err
	}
	failures, err := a.limiter(ratelimit.Options{
		Name:   "auth_failures",
		Limit:  cfg.RateLimits.AuthFailures.Limit,
		Period: cfg.RateLimits.AuthFailures.Period.D(),
	}, cfg.RateLimits.AuthFailures.OnRedisError)
	if err != nil {
		return nil, config.Errors{cfg.Problem("rate_limits.auth_failures", "%v", err)}
	}
	endpoints := map[string]http.Handler{}
	if sess != nil {
		for path, h := range sess.Endpoints {
			endpoints[path] = h
		}
	}
	if a.Issuer != nil {
		if jwks, ok := a.Issuer.Keys.JWKS(); ok {
			endpoints["/.well-known/jwks.json"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "public, max-age=300")
				_, _ = w.Write(jwks)
			})
		}
	}
	a.Gateway = proxy.New(table, proxy.Options{
		Logger:       logger.With("component", "proxy"),
		IPResolver:   ratelimit.NewIPResolver(cfg.Server.TrustedPrefixes()),
		AuthFailures: failures,
		Transport: proxy.NewTransport(proxy.TransportOptions{
			MaxIdleConnsPerHost:   cfg.Server.MaxIdleConnsPerUpstream,
			MaxConnsPerHost:       cfg.Server.MaxConnsPerUpstream,
			ResponseHeaderTimeout: cfg.Server.UpstreamTimeout.D(),
		}),
		Endpoints:  endpoints,
		AuthEvents: *cfg.Log.AuthEvents,
	})
	return a, nil
}

func (a *App) limiter(o ratelimit.Options, policy string) (*ratelimit.Limiter, error) {
	p, err := ratelimit.ParsePolicy(policy)
	if err != nil {
		return nil, err
	}
	o.OnStoreError = p
	if a.Redis != nil {
		return ratelimit.NewRedis(a.Redis, o)
	}
	return ratelimit.NewMemory(o)
}

func (a *App) buildTable(strats map[string]strategies.Strategy) (*proxy.Table, error) {
	cfg := a.Config
	routes := make([]*proxy.Route, 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		rt := &proxy.Route{
			Name: rc.Name, Prefix: rc.CanonicalPath, Methods: rc.Methods,
			Upstream: rc.UpstreamURL, Public: rc.Public,
			Roles: rc.Roles, Scopes: rc.Scopes, PassCredentials: rc.PassCredentials,
			MaxBodyBytes: rc.MaxBodyBytes, Timeout: rc.Timeout.D(),
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
	t, err := proxy.NewTable(routes)
	if err != nil {
		return nil, config.Errors{cfg.Problem("routes", "%v", err)}
	}
	return t, nil
}

// providerClient is the HTTP client for identity providers: bounded in time
// and never following redirects (a redirect could point key fetching or
// introspection anywhere).
func providerClient() *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Close releases what Build acquired.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Ready reports whether the gateway can serve: Redis answers if configured.
func (a *App) Ready(ctx context.Context) error {
	if a.Redis == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// AdminHandler serves /healthz, /readyz (and /metrics once wired).
func (a *App) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		status, code, detail := "ready", http.StatusOK, ""
		if err := a.Ready(r.Context()); err != nil {
			status, code, detail = "not_ready", http.StatusServiceUnavailable, "redis unreachable"
		}
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, `{"status":%q,"config_hash":%q,"detail":%q}`+"\n", status, a.Config.Hash, detail)
	})
	return mux
}

// Run serves until ctx is done, then drains in-flight requests for up to
// server.shutdown_timeout.
func (a *App) Run(ctx context.Context) error {
	s := a.Config.Server
	main := &http.Server{
		Addr:              s.Listen,
		Handler:           a.Gateway,
		ReadHeaderTimeout: s.ReadHeaderTimeout.D(),
		IdleTimeout:       s.IdleTimeout.D(),
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelDebug),
	}
	servers := []*http.Server{main}
	if s.AdminListen != "" {
		servers = append(servers, &http.Server{
			Addr: s.AdminListen, Handler: a.AdminHandler(),
			ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second,
		})
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		ln, err := listen(srv.Addr)
		if err != nil {
			for _, other := range servers {
				_ = other.Close()
			}
			return err
		}
		a.Logger.Info("listening", "addr", ln.Addr().String(), "admin", srv != main)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
		a.Logger.Info("shutting down", "drain_timeout", s.ShutdownTimeout.D().String())
	case runErr = <-errc:
		a.Logger.Error("server failed", "error", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout.D())
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			a.Logger.Warn("shutdown incomplete", "error", err)
		}
	}
	return runErr
}
