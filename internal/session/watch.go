package session

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/authgateway/authgateway/internal/pubsub"
)

const (
	watchPingInterval   = time.Second
	watchSubscribeWait  = 5 * time.Second
	watchStartBackoff   = 100 * time.Millisecond
	watchMaxBackoff     = 5 * time.Second
	watchResyncDeadline = 5 * time.Second
)

// watcher keeps a Denylist current from Redis: it subscribes to DenyChannel,
// loads the whole deny set after every (re)subscription (messages published
// while it was not listening are in the set), applies each message, and
// re-reads the set every resync interval in case one was lost.
type watcher struct {
	rb     *redisBackend
	deny   *Denylist
	log    *slog.Logger
	now    func() time.Time
	resync time.Duration
}

func (w *watcher) run(ctx context.Context) {
	pubsub.Run(ctx, w.rb.c, DenyChannel, pubsub.Handler{
		// Loaded after every (re)subscription: revocations published while
		// not listening are in the set.
		Subscribed: w.load,
		Message: func(payload string) {
			if ref, ok := parseDenyMessage(payload); ok {
				w.deny.add([]AccessRef{ref})
			}
		},
		Down: func() { w.deny.markDown(w.now()) },
		Tick: func(ctx context.Context) {
			w.deny.prune()
			if err := w.load(ctx); err != nil {
				w.log.Warn("session revocation resync failed", "error", err)
			}
		},
		TickInterval: w.resync,
	}, pubsub.Options{
		PingInterval: watchPingInterval, SubscribeWait: watchSubscribeWait,
		StartBackoff: watchStartBackoff, MaxBackoff: watchMaxBackoff, Logger: w.log,
	})
}

// load merges the whole deny set into the local map and marks it current.
func (w *watcher) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, watchResyncDeadline)
	defer cancel()
	refs, err := w.rb.load(ctx)
	if err != nil {
		return fmt.Errorf("loading revoked tokens: %w", err)
	}
	w.deny.add(refs)
	w.deny.markUp()
	return nil
}
