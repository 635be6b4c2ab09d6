package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/pubsub"
)

// FailureWatch puts a Redis-backed auth-failure limiter in front of every
// authenticated request without a Redis round trip for clients that have not
// failed: each counted failure is also published, every replica remembers the
// client keys it heard of for one window, and only those are checked in Redis
// (exactly, as before). A client with no failure anywhere cannot be over the
// limit, so skipping the check for it changes no decision.
//
// Whenever the subscription is not known to be live (starting, Redis down,
// reconnecting) and for one whole window after it (re)connects — failures
// may have been counted while this replica was not listening — every check
// goes to Redis, with the limiter's store error policy.
type FailureWatch struct {
	l       *Limiter
	client  redis.UniversalClient
	channel string
	logger  *slog.Logger

	mu         sync.RWMutex
	marked     map[string]time.Time // client key -> end of its window here
	live       bool
	exactUntil time.Time
}

// maxMarked bounds the remembered keys; past it the watch falls back to
// checking every request in Redis for a window (a flood of failing addresses
// must not grow memory).
const maxMarked = 100_000

// NewFailureWatch wraps a Redis limiter l. Run must be running for the fast
// path to be used; until then every check asks Redis.
func NewFailureWatch(l *Limiter, client redis.UniversalClient, logger *slog.Logger) *FailureWatch {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FailureWatch{l: l, client: client, channel: keyPrefix(l.name) + ":events", logger: logger, marked: map[string]time.Time{}}
}

// Peek reports whether key is over the limit; see the type's doc for when
// it asks Redis.
func (w *FailureWatch) Peek(ctx context.Context, key string) Result {
	now := time.Now()
	w.mu.RLock()
	exact := !w.live || now.Before(w.exactUntil)
	until, marked := w.marked[key]
	w.mu.RUnlock()
	if exact || (marked && now.Before(until)) {
		return w.l.Peek(ctx, key)
	}
	return Result{Limit: w.l.rate.Limit, Remaining: w.l.rate.Limit}
}

// Add counts a failure in Redis and tells every replica about the key.
func (w *FailureWatch) Add(ctx context.Context, key string) Result {
	res := w.l.Add(ctx, key)
	w.mark(key, time.Now())
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.l.timeout)
	defer cancel()
	if err := w.client.Publish(pctx, w.channel, key).Err(); err != nil {
		// The others will not hear of it: they are exact-mode only if their
		// own subscription broke. Logged; the count itself is in Redis.
		w.logger.Warn("publishing auth failure", "error", err)
	}
	return res
}

func (w *FailureWatch) mark(key string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.marked) >= maxMarked {
		clear(w.marked)
		w.exactUntil = now.Add(w.l.rate.Period)
	}
	w.marked[key] = now.Add(w.l.rate.Period)
}

func (w *FailureWatch) setLive(live bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if live && !w.live {
		w.exactUntil = time.Now().Add(w.l.rate.Period)
	}
	w.live = live
}

func (w *FailureWatch) prune(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, until := range w.marked {
		if !now.Before(until) {
			delete(w.marked, k)
		}
	}
}

// Run listens for other replicas' failures until ctx ends, reconnecting
// with backoff (internal/pubsub). It returns nil when ctx ends.
func (w *FailureWatch) Run(ctx context.Context) error {
	lastPrune := time.Now()
	pubsub.Run(ctx, w.client, w.channel, pubsub.Handler{
		// Every (re)subscription may follow a gap in which failures were
		// published unheard: start a window of exact checks.
		Subscribed: func(context.Context) error {
			w.setLive(false)
			w.setLive(true)
			return nil
		},
		Message: func(payload string) {
			now := time.Now()
			w.mark(payload, now)
			if now.Sub(lastPrune) > w.l.rate.Period {
				w.prune(now)
				lastPrune = now
			}
		},
		Down: func() { w.setLive(false) },
	}, pubsub.Options{Logger: w.logger})
	return nil
}
