// Package apikey is the api_key strategy: machines authenticate with an API
// key in a header, checked against the strategy's key store (package
// internal/apikey) through a verifier with a local cache.
package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	keys "github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
)

// closeTimeout bounds the last write of recorded uses at Close.
const closeTimeout = 2 * time.Second

// Strategy authenticates machines by an API key in a header; safe for
// concurrent use.
type Strategy struct {
	name     string
	header   string
	store    keys.Store
	verifier *keys.Verifier
	redis    redis.UniversalClient
	log      *slog.Logger

	stop func() // set by Start: ends what it began
}

// New builds the api_key strategy named name: it opens the key store (the
// key file is read here) and the verifier in front of it. Start begins
// watching for revocations.
func New(name string, sc *config.Strategy, deps strategies.Deps) (strategies.Strategy, error) {
	log := deps.Log("apikey", name)
	store, err := Store(name, sc, deps.Redis, log)
	if err != nil {
		return nil, err
	}
	var lastUsed time.Duration // the verifier's default interval
	if deps.DryRun {
		lastUsed = -1 // a use explain shows is not a use
	}
	v, err := keys.NewVerifier(store, keys.VerifierOptions{
		Prefixes: sc.Prefixes, Logger: log, OnCache: deps.CacheHook("api_keys"), Now: deps.Now,
		LastUsedInterval: lastUsed,
	})
	if err != nil {
		return nil, err
	}
	return &Strategy{name: name, header: http.CanonicalHeaderKey(sc.Header), store: store, verifier: v,
		redis: deps.Redis, log: log}, nil
}

// Store opens the key store of the api_key strategy name (also used by
// the `keys` commands). In Redis each strategy has a namespace of its own;
// logger (tagged with the strategy by the caller) reports its incidents.
func Store(name string, sc *config.Strategy, rc redis.UniversalClient, logger *slog.Logger) (keys.Store, error) {
	switch sc.Store {
	case "redis":
		if rc == nil {
			return nil, fmt.Errorf("store: redis needs redis.url")
		}
		return keys.NewRedisStore(rc, name, logger), nil
	default:
		s, err := keys.NewFileStore(sc.File)
		if err != nil {
			return nil, fmt.Errorf("opening key file: %w", err)
		}
		return s, nil
	}
}

// Start keeps the local cache honest until Close: instant revocation on
// every replica (Redis pub/sub or file watching) and batched last_used_at
// writes. With a Redis store it also warns of keys still in the layout of
// earlier versions.
func (s *Strategy) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.verifier.Run(runCtx); err != nil && runCtx.Err() == nil {
			s.log.Error("api key watcher stopped", "error", err)
		}
	})
	if _, ok := s.store.(*keys.RedisStore); ok {
		wg.Go(func() { s.warnLegacyKeys(runCtx) })
	}
	s.stop = func() {
		cancel()
		wg.Wait()
		cctx, ccancel := context.WithTimeout(context.Background(), closeTimeout)
		defer ccancel()
		_ = s.verifier.Close(cctx)
	}
	return nil
}

// Close ends what Start began and writes the last recorded uses.
func (s *Strategy) Close() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// warnLegacyKeys tells the operator, at start and at each reload, about keys
// still in the Redis layout that every strategy shared before namespaces:
// no strategy accepts them until `keys migrate` moves them, and their
// clients would otherwise just see 401s.
func (s *Strategy) warnLegacyKeys(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := keys.NewLegacyStore(s.redis).Count(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("could not check for api keys in the shared redis layout of earlier versions", "error", err)
		}
		return
	}
	if n > 0 {
		s.log.Warn("api keys in the shared redis layout of earlier versions are accepted by no strategy until migrated; move the keys made for this strategy with the command given",
			"legacy_keys", n, "command", "authgateway keys migrate -strategy "+s.name)
	}
}

// Challenge is the WWW-Authenticate challenge for a 401.
func (s *Strategy) Challenge() string { return `ApiKey realm="authgateway", header="` + s.header + `"` }

// CredentialHeaders are removed before forwarding.
func (s *Strategy) CredentialHeaders() []string { return []string{s.header} }

// CredentialCookie implements proxy.CredentialCarrier.
func (s *Strategy) CredentialCookie() string { return "" }

// Authenticate implements strategies.Strategy. A header that is present but
// empty or repeated is an invalid credential (it counts as a failure); an
// absent one is not this strategy's.
func (s *Strategy) Authenticate(ctx context.Context, r *http.Request) (*strategies.Identity, error) {
	vals, ok := r.Header[s.header]
	if !ok {
		return nil, strategies.ErrNoCredentials
	}
	if len(vals) != 1 || vals[0] == "" {
		return nil, strategies.Invalid(strategies.ReasonMalformedKey, nil)
	}
	rec, err := s.verifier.Verify(ctx, vals[0])
	switch {
	case err == nil:
	case errors.Is(err, keys.ErrMalformed):
		return nil, strategies.Invalid(strategies.ReasonMalformedKey, nil)
	case errors.Is(err, keys.ErrUnknown):
		return nil, strategies.Invalid(strategies.ReasonUnknownKey, nil)
	case errors.Is(err, keys.ErrExpired):
		return nil, strategies.Invalid(strategies.ReasonExpired, nil)
	case errors.Is(err, keys.ErrRevoked):
		return nil, strategies.Invalid(strategies.ReasonRevoked, nil)
	default:
		return nil, err // technical: fail closed
	}
	return &strategies.Identity{
		Subject: rec.Name, ClientID: rec.ID, TokenID: rec.ID,
		Roles: rec.Roles, Scopes: rec.Scopes, ExpiresAt: rec.ExpiresAt,
		DeferredClaims: rec, // built on first use, once per cached record
	}, nil
}

var (
	_ strategies.Strategy = (*Strategy)(nil)
	_ strategies.Starter  = (*Strategy)(nil)
	_ strategies.Closer   = (*Strategy)(nil)
)
