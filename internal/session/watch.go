package session

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
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
	// synced counts completed (re)syncs (tests wait on it).
	synced atomic.Int64
}

func (w *watcher) run(ctx context.Context) {
	backoff := watchStartBackoff
	for ctx.Err() == nil {
		live, err := w.once(ctx)
		w.deny.markDown(w.now())
		if ctx.Err() != nil {
			return
		}
		if live {
			w.log.Warn("session revocation subscription lost; reconnecting", "error", err)
			backoff = watchStartBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// once runs one subscription until it fails; live reports whether it got
// as far as serving.
func (w *watcher) once(ctx context.Context) (live bool, err error) {
	ps := w.rb.c.Subscribe(ctx, DenyChannel)
	defer ps.Close()
	// Receive does not watch ctx; closing the subscription unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	msg, err := ps.ReceiveTimeout(ctx, watchSubscribeWait)
	if err != nil {
		return false, err
	}
	if sub, ok := msg.(*redis.Subscription); !ok || sub.Kind != "subscribe" {
		return false, fmt.Errorf("unexpected first pubsub message %T", msg)
	}
	// Subscribed first, loaded second: nothing published in between is lost.
	if err := w.load(ctx); err != nil {
		return false, err
	}

	var lastSeen atomic.Int64
	lastSeen.Store(time.Now().UnixNano())
	pingDone := make(chan struct{})
	defer close(pingDone)
	go w.keepAlive(ctx, ps, &lastSeen, pingDone)

	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return true, err
		}
		lastSeen.Store(time.Now().UnixNano())
		switch m := msg.(type) {
		case *redis.Message:
			if ref, ok := parseDenyMessage(m.Payload); ok {
				w.deny.add([]AccessRef{ref})
			}
		case *redis.Subscription:
			if m.Kind == "subscribe" { // go-redis re-subscribed under us
				if err := w.load(ctx); err != nil {
					return true, err
				}
			}
		}
	}
}

// keepAlive pings the subscription connection, closes it when pongs stop
// coming (a dead connection would otherwise look like a quiet channel), and
// resyncs the set periodically.
func (w *watcher) keepAlive(ctx context.Context, ps *redis.PubSub, lastSeen *atomic.Int64, done <-chan struct{}) {
	ping := time.NewTicker(watchPingInterval)
	defer ping.Stop()
	resync := time.NewTicker(w.resync)
	defer resync.Stop()
	for {
		select {
		case <-done:
			return
		case <-ping.C:
			if time.Since(time.Unix(0, lastSeen.Load())) > 3*watchPingInterval {
				_ = ps.Close()
				return
			}
			_ = ps.Ping(ctx)
			w.deny.prune()
		case <-resync.C:
			if err := w.load(ctx); err != nil {
				w.log.Warn("session revocation resync failed", "error", err)
			}
		}
	}
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
	w.synced.Add(1)
	return nil
}
