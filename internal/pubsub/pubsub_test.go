package pubsub

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// TestRunLifecycle: messages arrive; a killed connection is re-subscribed
// and reported through Subscribed (so the user resyncs); Redis going away is
// reported through Down; Run returns when its context ends.
func TestRunLifecycle(t *testing.T) {
	s := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	var subscribed, down atomic.Int64
	got := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, c, "test:events", Handler{
			Subscribed: func(context.Context) error { subscribed.Add(1); return nil },
			Message:    func(p string) { got <- p },
			Down:       func() { down.Add(1) },
		}, Options{PingInterval: 100 * time.Millisecond, StartBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	}()
	poll.True(t, 10*time.Second, "first subscription", func() bool { return subscribed.Load() == 1 })
	if err := c.Publish(context.Background(), "test:events", "hello").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != "hello" {
			t.Fatalf("payload %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered")
	}

	// Kill the subscription's connection: it comes back, and says so.
	if err := c.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 10*time.Second, "re-subscription", func() bool { return subscribed.Load() >= 2 })

	// Redis gone: Down is called; back: subscribed again.
	s.Stop()
	poll.True(t, 10*time.Second, "down", func() bool { return down.Load() >= 1 })
	n := subscribed.Load()
	s.Restart()
	poll.True(t, 10*time.Second, "subscription after restart", func() bool { return subscribed.Load() > n })

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
