package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/oauth2strategy"
	"github.com/authgateway/authgateway/internal/strategies"
)

// extraStrategies builds the strategy types that live outside package
// strategies (api_key, oauth2, jwt with jwks_url). Resources they hold are
// released with the generation.
func (a *App) extraStrategies(ctx context.Context, gen *generation) map[string]func(string, *config.Strategy) (strategies.Strategy, error) {
	deps := oauth2strategy.Deps{HTTPClient: providerClient(), Redis: a.Redis, Logger: a.Logger, OnCache: a.Metrics.CacheResult}
	return map[string]func(string, *config.Strategy) (strategies.Strategy, error){
		"api_key": func(name string, sc *config.Strategy) (strategies.Strategy, error) {
			return a.buildAPIKey(ctx, gen, name, sc)
		},
		"oauth2": func(name string, sc *config.Strategy) (strategies.Strategy, error) {
			// Discovery must not hold start-up or a reload for long: an
			// unreachable provider is retried lazily, failing closed.
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			s, err := oauth2strategy.New(dctx, name, sc, deps)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		"jwks": func(name string, sc *config.Strategy) (strategies.Strategy, error) {
			return oauth2strategy.NewJWKSJWT(name, sc, deps)
		},
	}
}

// KeyStore opens the key store of the api_key strategy name (also used by
// the `keys` commands). In Redis each strategy has a namespace of its own.
func KeyStore(name string, sc *config.Strategy, rc redis.UniversalClient, logger *slog.Logger) (apikey.Store, error) {
	switch sc.Store {
	case "redis":
		if rc == nil {
			return nil, fmt.Errorf("store: redis needs redis.url")
		}
		return apikey.NewRedisStore(rc, name, logger.With("strategy", name)), nil
	default:
		s, err := apikey.NewFileStore(sc.File)
		if err != nil {
			return nil, fmt.Errorf("opening key file: %w", err)
		}
		return s, nil
	}
}

func (a *App) buildAPIKey(ctx context.Context, gen *generation, name string, sc *config.Strategy) (strategies.Strategy, error) {
	store, err := KeyStore(name, sc, a.Redis, a.Logger)
	if err != nil {
		return nil, err
	}
	var lastUsed time.Duration // the verifier's default interval
	if a.dryRun {
		lastUsed = -1 // a use explain shows is not a use
	}
	v, err := apikey.NewVerifier(store, apikey.VerifierOptions{
		Prefixes: sc.Prefixes, Logger: a.Logger.With("component", "apikey", "strategy", name),
		OnCache:          func(hit bool) { a.Metrics.CacheResult("api_keys", hit) },
		LastUsedInterval: lastUsed,
	})
	if err != nil {
		return nil, err
	}
	// Run keeps the local cache honest: instant revocation on every replica
	// (Redis pub/sub or file watching) and batched last_used_at writes.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := v.Run(runCtx); err != nil && runCtx.Err() == nil {
			a.Logger.Error("api key watcher stopped", "strategy", name, "error", err)
		}
	})
	if _, ok := store.(*apikey.RedisStore); ok {
		wg.Go(func() { a.warnLegacyKeys(runCtx, name) })
	}
	gen.closers = append(gen.closers, func() {
		cancel()
		wg.Wait()
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer ccancel()
		_ = v.Close(cctx)
	})
	return strategies.NewAPIKey(name, sc.Header, v), nil
}

// warnLegacyKeys tells the operator, at start and at each reload, about keys
// still in the Redis layout that every strategy shared before namespaces:
// no strategy accepts them until `keys migrate` moves them, and their
// clients would otherwise just see 401s.
func (a *App) warnLegacyKeys(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := apikey.NewLegacyStore(a.Redis).Count(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.Logger.Warn("could not check for api keys in the shared redis layout of earlier versions", "strategy", name, "error", err)
		}
		return
	}
	if n > 0 {
		a.Logger.Warn("api keys in the shared redis layout of earlier versions are accepted by no strategy until migrated; move the keys made for this strategy with the command given",
			"strategy", name, "legacy_keys", n, "command", "authgateway keys migrate -strategy "+name)
	}
}
