package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// NewRedis returns a limiter whose counters live in Redis, shared by every
// replica that uses the same Options.Name on the same Redis.
//
// It does no I/O: ulule's store loads its Lua scripts when it is built, and
// doing that here would keep the gateway from starting while Redis is down,
// whatever OnStoreError says. The store is built on first use instead (that
// call costs three round trips, every later one costs one: a single EVALSHA,
// atomic in Redis, so concurrent replicas never over-admit).
func NewRedis(client redis.UniversalClient, opts Options) (*Limiter, error) {
	if client == nil {
		return nil, fmt.Errorf("rate limiter %q: redis client is nil", opts.Name)
	}
	l, err := newLimiter(opts)
	if err != nil {
		return nil, err
	}
	l.redis = &redisStore{
		client:    client,
		prefix:    keyPrefix(opts.Name),
		sem:       make(chan struct{}, 1),
		deadlines: honoursDeadlines(client),
	}
	return l, nil
}

// redisStore builds ulule's Redis store on first use.
type redisStore struct {
	client redis.UniversalClient
	prefix string
	// deadlines: the client bounds every call by its context's deadline.
	deadlines bool
	// sem admits one builder at a time. Others wait for it no longer than
	// their context allows, so a hung Redis cannot make requests queue.
	sem   chan struct{}
	store atomic.Pointer[builtStore]
}

type builtStore struct{ limiter.Store }

var errNoStore = errors.New("redis store not built yet")

// built is the store if it has been built, else nil. No I/O.
func (s *redisStore) built() limiter.Store {
	if b := s.store.Load(); b != nil {
		return b.Store
	}
	return nil
}

// honoursDeadlines reports whether client bounds its calls by context
// deadlines: pool waits, dials, reads and writes, and retry back-offs.
// Unknown client types are assumed not to.
func honoursDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

func (s *redisStore) load(ctx context.Context) (limiter.Store, error) {
	if st := s.built(); st != nil {
		return st, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errNoStore, ctx.Err())
	}
	defer func() { <-s.sem }()
	if st := s.built(); st != nil {
		return st, nil
	}
	// ulule uses context.Background() here; the caller bounds the wait.
	st, err := ulredis.NewStoreWithOptions(s.client, limiter.StoreOptions{Prefix: s.prefix})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoStore, err)
	}
	s.store.Store(&builtStore{st})
	return st, nil
}
