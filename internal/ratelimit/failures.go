package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"strings"
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
// reconnecting) every check goes to Redis, with the limiter's store error
// policy. Failures may have been counted while this replica was not
// listening, so after each (re)subscription it scans Redis for the live
// counters and marks their clients; only once that is done does it skip
// Redis for the others. It scans a single node, a Sentinel-managed master
// or every master of a cluster; where it cannot (a ring client, a scan
// error or a master down, more counters than it remembers) it checks every
// request in Redis for one whole window instead.
//
// On a cluster the counters are spread over the masters by client key, and
// the channel lives on the master of its own name's slot (see
// internal/pubsub): while that master is down the watch is not live, and
// every check goes to the master of its key, as without the watch.
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
	return &FailureWatch{l: l, client: client, channel: NoticeChannel(l.name), logger: logger, marked: map[string]time.Time{}}
}

// NoticeChannel is the channel on which the FailureWatch of the limiter
// named name publishes and hears failures.
func NoticeChannel(name string) string { return keyPrefix(name) + ":events" }

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
	if res.StoreError != nil {
		// Redis is not answering (the limiter reports the outage): a
		// publish would fail too, once per failed attempt.
		return res
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.l.timeout)
	defer cancel()
	if err := pubsub.Publish(pctx, w.client, w.channel, key); err != nil {
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
		w.exactWindowLocked(now)
	}
	w.marked[key] = now.Add(w.l.rate.Period)
}

// setDown makes every check exact until the next resume.
func (w *FailureWatch) setDown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.live = false
}

// resume goes live after a (re)subscription. With the counted keys found by
// a scan (seeded), those clients are marked and the others skip Redis at
// once; without them, every check stays exact for one window.
func (w *FailureWatch) resume(keys []string, seeded bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if seeded && len(w.marked)+len(keys) <= maxMarked {
		for _, k := range keys {
			// A whole window from now: at least the counter's own lifetime.
			w.marked[k] = now.Add(w.l.rate.Period)
		}
	} else {
		w.exactWindowLocked(now)
	}
	w.live = true
}

// exactWindowLocked sends every check to Redis for one window from now (or
// longer, if one is already running). w.mu must be held.
func (w *FailureWatch) exactWindowLocked(now time.Time) {
	if until := now.Add(w.l.rate.Period); until.After(w.exactUntil) {
		w.exactUntil = until
	}
}

// scanTimeout bounds the scan after a (re)subscription; past it the watch
// falls back to a window of exact checks.
const scanTimeout = 5 * time.Second

// countedKeys lists the client keys that have a failure counter in Redis
// now: one SCAN of the node, or of every master of a cluster. It reports
// false when it could not list them all (a master down, too many keys, a
// client kind it cannot scan).
func (w *FailureWatch) countedKeys(ctx context.Context) ([]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	prefix := keyPrefix(w.l.name) + ":"
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, strings.TrimPrefix(it.Val(), prefix))
			n := len(keys)
			mu.Unlock()
			if n > maxMarked {
				return errTooManyKeys
			}
		}
		return it.Err()
	}
	var err error
	switch c := w.client.(type) {
	case *redis.Client: // a single node or a Sentinel-managed master
		err = scan(ctx, c)
	case *redis.ClusterClient:
		// A key being migrated may be listed twice; marking is idempotent.
		err = c.ForEachMaster(ctx, scan)
	default:
		return nil, false
	}
	if err != nil {
		if !errors.Is(err, errTooManyKeys) {
			w.logger.Warn("listing auth failure counters; checking every request in Redis for one window", "error", err)
		}
		return nil, false
	}
	return keys, true
}

var errTooManyKeys = errors.New("more auth failure counters than the watch remembers")

// globEscape quotes the characters special to Redis MATCH patterns.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s)
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
		// published unheard: catch up from Redis (subscribed first, so a
		// failure counted after the scan started is heard).
		Subscribed: func(ctx context.Context) error {
			w.setDown() // exact while catching up
			keys, seeded := w.countedKeys(ctx)
			w.resume(keys, seeded)
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
		Down: w.setDown,
	}, pubsub.Options{Logger: w.logger})
	return nil
}
