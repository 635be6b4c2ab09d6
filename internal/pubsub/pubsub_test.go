package pubsub

import (
	"context"
	"strings"
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

// TestRunFollowsFailover: after a failover that leaves the old master up
// (SENTINEL FAILOVER, demoting it to a replica), the subscription must move
// to the new master. go-redis leaves it on the demoted node, which answers
// pings but never hears what is published on the master: every message
// would be lost, silently, until the connection broke.
func TestRunFollowsFailover(t *testing.T) {
	sen := redistest.StartSentinel(t)
	newClient := func() redis.UniversalClient {
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: redistest.SentinelMaster,
			SentinelAddrs: []string{sen.Sentinels[0].Addr(), sen.Sentinels[1].Addr(), sen.Sentinels[2].Addr()}})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	sub, pub := newClient(), newClient()
	var subscribed atomic.Int64
	got := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		Run(ctx, sub, "test:events", Handler{
			Subscribed: func(context.Context) error { subscribed.Add(1); return nil },
			Message:    func(p string) { got <- p },
		}, Options{PingInterval: 200 * time.Millisecond, StartBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	}()
	poll.True(t, 10*time.Second, "first subscription", func() bool { return subscribed.Load() == 1 })

	sen.Failover()
	// Published on the new master until one arrives.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := pub.Publish(context.Background(), "test:events", "after").Err(); err != nil {
			t.Logf("publish: %v", err)
		}
		select {
		case p := <-got:
			if p != "after" {
				t.Fatalf("payload %q", p)
			}
			if subscribed.Load() < 2 {
				t.Error("delivered without a new subscription (Subscribed not called again: no resync)")
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing published on the new master reached the subscription within 10s of the failover")
		}
	}
}

// TestProbeChannelSlot: a probe channel hashes to its channel's slot (the
// hash tag of the channel, or the whole name), so on a cluster probes are
// published on the node the subscription is on.
func TestProbeChannelSlot(t *testing.T) {
	for _, tc := range []struct{ channel, tag string }{
		{"authgw:{session}:deny:events", "{session}"},
		{"authgw:{apikey:a%2Fb}:events", "{apikey:a%2Fb}"},
		{"authgateway:ratelimit:auth_failures:events", "{authgateway:ratelimit:auth_failures:events}"},
	} {
		p := probeChannel(tc.channel)
		if !strings.HasPrefix(p, "authgw:pubsub:probe:"+tc.tag+":") || p == probeChannel(tc.channel) {
			t.Errorf("probeChannel(%q) = %q; want a fresh name with the tag %s", tc.channel, p, tc.tag)
		}
	}
}
