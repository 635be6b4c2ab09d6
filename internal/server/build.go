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

	"github.com/authgateway/authgateway/internal/admin"
	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/h1"
	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/jwks"
	"github.com/authgateway/authgateway/internal/metrics"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/tokens"
	"github.com/authgateway/authgateway/internal/tracing"
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

// App is a gateway built from a config. What cannot change while running
// (listeners, the Redis client, the failure limit, the session store) is
// built once; everything a config load decides — the config itself, the
// route table, strategies, signing keys, TLS certificate, login and
// session endpoints — is one immutable generation, which Reload replaces
// whole behind one pointer.
type App struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Redis   redis.UniversalClient

	gen       atomic.Pointer[generation]
	reloadErr atomic.Pointer[string]
	reloadAt  atomic.Pointer[time.Time] // the last load or reload attempt
	// stats is the traffic the admin dashboard shows.
	stats    *admin.Stats
	reloadMu sync.Mutex
	failures *ratelimit.Limiter
	// failureWatch checks clients without failures without a Redis round
	// trip; nil without Redis. Start runs it.
	failureWatch *ratelimit.FailureWatch
	outages      *ratelimit.OutageLog              // Redis rate-limit store incidents, one log line each
	limiters     map[limiterKey]*ratelimit.Limiter // reused across reloads (memory counters survive)
	// sessions holds browser sessions and the access-token denylist for the
	// process (in memory without Redis, they must survive a reload); each
	// generation mints with its own keys through a view. nil without login.
	sessions  *session.Manager
	transport *http.Transport // one connection pool to the upstreams, across reloads
	// upstreamRT sends on transport (simple requests to plain-HTTP
	// upstreams on h1's connections), traced when tracing is on.
	upstreamRT http.RoundTripper
	closers    []func()
	ips        *ratelimit.IPResolver
	// Audit is the audit log (nil when audit.output is unset).
	Audit    *audit.Log
	eventLog io.Writer

	// started is the config the process was built from: what the
	// restart-only settings (listeners, Redis, ...) still come from.
	started *config.Config
	// restartKeys lists the loaded config's keys that wait for a restart.
	restartKeys atomic.Pointer[[]string]
	// idp is the one client for identity providers, and keySets their key
	// sets by URL: shared by the login and every strategy, across reloads.
	idp       *http.Client
	keySets   *jwks.Sets
	dryRun    bool
	startOnce sync.Once
	startErr  error
	stop      context.CancelFunc // ends what Start began
	stopped   chan struct{}      // closed when it has ended
	// tracing is the trace pipeline; nil when tracing is off (and in a
	// dry run).
	tracing *tracing.Tracing
	// denylistRead: a dry run reads the session denylist once, when a
	// decision first needs it.
	denylistRead sync.Once
}

type limiterKey struct {
	name   string
	limit  int64
	period time.Duration
	policy string
}

// Config returns the config currently served.
func (a *App) Config() *config.Config {
	if g := a.gen.Load(); g != nil {
		return g.cfg
	}
	return a.started
}

// Issuer returns the current generation's token issuer (nil without
// tokens.signing_keys).
func (a *App) Issuer() *tokens.Issuer {
	if g := a.gen.Load(); g != nil {
		return g.issuer
	}
	return nil
}

// Option adjusts Build.
type Option func(*App)

// WithEventLog sends the per-request auth events to w as JSON lines on the
// fast path (w should be the logger's own buffered writer).
func WithEventLog(w io.Writer) Option { return func(a *App) { a.eventLog = w } }

// DryRun builds the gateway for validate and explain, which must leave no
// trace: nothing is dialled or started by Build (no subscription, no
// watcher, no goroutine), no audit log is opened, and the Redis client
// refuses every command that writes (redisconn.ReadOnly). An explained
// decision may read what it needs (an API key's record, a quota's count,
// the session denylist): the gateway's answer depends on them. API key uses
// are not recorded; failures are not counted and quotas only peeked by the
// proxy itself (Gateway.Explain).
func DryRun() Option { return func(a *App) { a.dryRun = true } }

// Build constructs everything from cfg without listening, dialling or
// starting anything (Start does that); only a non-dry build's session store
// subscribes to Redis as it is built. Close releases it.
func Build(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ...Option) (_ *App, err error) {
	a := &App{Logger: logger, Metrics: metrics.New(), limiters: map[limiterKey]*ratelimit.Limiter{}, idp: idp.NewHTTPClient(), stats: admin.NewStats()}
	a.keySets = jwks.NewSets(a.idp, jwks.Options{OnCache: func(hit bool) { a.Metrics.CacheResult("jwks", hit) }})
	for _, o := range opts {
		o(a)
	}
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
		if a.dryRun {
			redisconn.ReadOnly(rc)
		} else {
			redisconn.CountErrors(rc, a.Metrics)
		}
		a.Redis = rc
		a.closers = append(a.closers, func() { _ = rc.Close() })
		a.outages = ratelimit.NewOutageLog(logger.With("component", "ratelimit"), 0)
	}
	if !a.dryRun {
		if a.Audit, err = audit.Open(cfg.Audit.Output); err != nil {
			return nil, config.Errors{cfg.Problem("audit.output", "%v", err)}
		}
		a.closers = append(a.closers, func() { _ = a.Audit.Close() })
	}
	if t := cfg.Tracing; t.OTLPEndpoint != "" && !a.dryRun {
		a.tracing, err = tracing.New(ctx, tracing.Options{
			Endpoint: t.OTLPEndpoint, ServiceName: t.ServiceName, SampleRatio: *t.SampleRatio, OnDrop: a.Metrics.SpanDropped,
		})
		if err != nil {
			return nil, config.Errors{cfg.Problem("tracing.otlp_endpoint", "%v", err)}
		}
		tr := a.tracing
		a.closers = append(a.closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tr.Shutdown(sctx)
		})
		tr.InstrumentRedis(a.Redis)
		a.idp.Transport = tr.Transport("idp", a.idp.Transport, true)
	}
	a.ips = ratelimit.NewIPResolver(cfg.Server.TrustedPrefixes())
	a.transport = proxy.NewTransport(proxy.TransportOptions{
		MaxIdleConnsPerHost:   cfg.Server.MaxIdleConnsPerUpstream,
		MaxConnsPerHost:       cfg.Server.MaxConnsPerUpstream,
		ResponseHeaderTimeout: cfg.Server.UpstreamTimeout.D(),
	})
	a.upstreamRT = a.tracing.Transport("upstream", h1.New(a.transport), false)
	a.failures, err = a.limiter(ratelimit.Options{
		Name:   authFailuresLimit,
		Limit:  cfg.RateLimits.AuthFailures.Limit,
		Period: cfg.RateLimits.AuthFailures.Period.D(),
	}, cfg.RateLimits.AuthFailures.OnRedisError)
	if err != nil {
		return nil, config.Errors{cfg.Problem("rate_limits.auth_failures", "%v", err)}
	}
	if a.Redis != nil && !a.dryRun {
		a.failureWatch = ratelimit.NewFailureWatch(a.failures, a.Redis, logger.With("component", "ratelimit"))
	}
	gen, err := a.buildGeneration(cfg)
	if err != nil {
		return nil, err
	}
	gen.refs.Store(1) // the App's own reference, released when replaced
	a.gen.Store(gen)
	a.Metrics.ConfigLoaded(cfg.Hash, nil)
	a.Metrics.RestartRequired(nil)
	now := time.Now()
	a.reloadAt.Store(&now)
	return a, nil
}

// Start begins what a built gateway runs in the background: the first
// generation's strategies (provider discovery, API key watchers) and the
// failure limit's watch of other replicas. It is called once (Run calls
// it too); a dry run is never started. An error is a configuration error
// found by starting (a provider naming another issuer).
func (a *App) Start(ctx context.Context) error {
	a.startOnce.Do(func() {
		// Subscriptions under it count their failures (package pubsub).
		ctx = redisconn.WithErrorCounter(ctx, a.Metrics)
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.stop, a.stopped = cancel, make(chan struct{})
		if w := a.failureWatch; w != nil {
			go func() { defer close(a.stopped); _ = w.Run(runCtx) }()
		} else {
			close(a.stopped)
		}
		if g := a.gen.Load(); g != nil {
			a.startErr = g.start(ctx)
		}
	})
	return a.startErr
}

// limiter returns the limiter of o and policy, reusing the one an earlier
// generation built (its memory counters survive a reload).
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

// Close releases what Build acquired and Start began. The current
// generation closes when its last request has ended.
func (a *App) Close() {
	if g := a.gen.Swap(nil); g != nil {
		g.release()
	}
	if a.stop != nil {
		a.stop()
		<-a.stopped
	}
	if a.sessions != nil {
		a.sessions.Close()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// ServeHTTP serves r on the current generation, which stays open until r
// ends: a WebSocket tunnel or a streamed response keeps the generation it
// started on.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := a.acquire()
	if g == nil {
		proxy.WriteError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer g.release()
	g.gateway.ServeHTTP(w, r)
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
	a.stats.Observe(ev)
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
