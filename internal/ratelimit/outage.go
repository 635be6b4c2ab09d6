package ratelimit

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultOutageReminder is how often OutageLog repeats that an outage goes
// on, when NewOutageLog is given no interval.
const DefaultOutageReminder = 30 * time.Second

// OutageLog reports a store's outages as incidents rather than a line per
// request: the first failed call at once, then at most one reminder per
// interval with the number of calls that failed since, and the first call
// that succeeds again. One OutageLog is shared by every limiter on a store,
// so an outage is one incident however many limits meet it. A nil
// *OutageLog reports nothing.
type OutageLog struct {
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time
	// down is read on every successful call; the rest is guarded by mu.
	down atomic.Bool

	mu    sync.Mutex
	since time.Time // start of the incident
	last  time.Time // last line written
	count int64     // calls failed since the last line
}

// NewOutageLog returns an OutageLog writing to logger; interval <= 0 means
// DefaultOutageReminder.
func NewOutageLog(logger *slog.Logger, interval time.Duration) *OutageLog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = DefaultOutageReminder
	}
	return &OutageLog{logger: logger, interval: interval, now: time.Now}
}

// failed records a store call of limiter name that failed with err.
func (o *OutageLog) failed(name string, policy Policy, err error) {
	if o == nil {
		return
	}
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.count++
	if !o.down.Load() {
		o.down.Store(true)
		o.since, o.last, o.count = now, now, 0
		o.logger.Error("rate limit store outage: Redis is not answering; limits with on_redis_error: deny refuse requests (503), those with allow pass them uncounted",
			slog.String("limit", name), slog.String("on_redis_error", policy.String()), slog.String("error", err.Error()))
		return
	}
	if now.Sub(o.last) >= o.interval {
		o.logger.Error("rate limit store outage continues",
			slog.Duration("for", now.Sub(o.since).Round(time.Second)), slog.Int64("failed_calls", o.count),
			slog.String("limit", name), slog.String("error", err.Error()))
		o.last, o.count = now, 0
	}
}

// succeeded records a store call that worked: it ends an incident.
func (o *OutageLog) succeeded() {
	if o == nil || !o.down.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down.Load() {
		return
	}
	o.down.Store(false)
	o.logger.Warn("rate limit store outage over: Redis answers again",
		slog.Duration("lasted", o.now().Sub(o.since).Round(time.Millisecond)), slog.Int64("failed_calls_since_last_line", o.count))
	o.count = 0
}
