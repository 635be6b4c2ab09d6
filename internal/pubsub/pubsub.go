// Package pubsub keeps a Redis subscription alive for the gateway's
// cross-replica invalidations (API key evictions, session revocations,
// auth-failure notices) and tells its user when what it heard may be
// incomplete.
//
// go-redis reconnects a subscription silently and drops what was published
// in between, and its Receive neither watches the context nor notices a dead
// connection on a quiet channel. Run therefore closes the subscription when
// the context ends, pings it and closes it when pongs stop, treats every
// (re)subscription confirmation as "you may have missed messages", and
// reconnects with backoff. It also checks, with a probe published through
// the client, that the subscription hears what is published where writes go
// (see probe): after a Sentinel failover it may not.
//
// On Redis Cluster a (classic) message published on any node reaches the
// subscribers of every node, but go-redis subscribes on the master that
// serves the channel name's hash slot. Publish sends there too, so a
// channel named with the hash tag of the data it announces lives, with its
// publisher and its subscribers, on that data's master: a master that is
// down takes down only the parts whose data it holds.
package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/redisconn"
)

// Handler receives a subscription's events. Every field is optional.
type Handler struct {
	// Subscribed runs after each (re)subscription: messages published while
	// not subscribed are lost, so resync or flush here. An error ends the
	// connection (it is retried).
	Subscribed func(ctx context.Context) error
	// Message runs for each message's payload.
	Message func(payload string)
	// Down runs when a connection that was subscribed is lost, and when a
	// subscription attempt fails.
	Down func()
	// Tick runs every TickInterval while subscribed (periodic resync).
	Tick         func(ctx context.Context)
	TickInterval time.Duration
}

// Options tunes Run; zero values take the defaults.
type Options struct {
	PingInterval  time.Duration // default 1s; the connection is closed after 3 missed
	ProbeInterval time.Duration // default 1s; see probe
	SubscribeWait time.Duration // default 5s
	StartBackoff  time.Duration // default 100ms
	MaxBackoff    time.Duration // default 5s
	Logger        *slog.Logger
}

// Publish publishes payload on channel through the node Run subscribes at:
// on a cluster, the master of the channel name's slot (go-redis would send
// a PUBLISH to a random master, which may be one that is down while the
// subscribers' master is up). On other clients it is a plain PUBLISH.
func Publish(ctx context.Context, client redis.UniversalClient, channel, payload string) error {
	cmd := redis.NewIntCmd(ctx, "publish", channel, payload)
	cmd.SetFirstKeyPos(1) // route by the channel name, as a key
	_ = client.Process(ctx, cmd)
	return cmd.Err()
}

// Run subscribes to channel and dispatches to h until ctx ends, reconnecting
// with backoff. It returns when ctx is done.
func Run(ctx context.Context, client redis.UniversalClient, channel string, h Handler, o Options) {
	if o.PingInterval <= 0 {
		o.PingInterval = time.Second
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = time.Second
	}
	if o.SubscribeWait <= 0 {
		o.SubscribeWait = 5 * time.Second
	}
	if o.StartBackoff <= 0 {
		o.StartBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	backoff := o.StartBackoff
	for ctx.Err() == nil {
		live, err := once(ctx, client, channel, h, o)
		if h.Down != nil {
			h.Down()
		}
		if ctx.Err() != nil {
			return
		}
		if c := redisconn.ErrorCounterFrom(ctx); c != nil {
			c.RedisError(redisconn.ComponentPubSub) // lost, or never got going
		}
		if live {
			o.Logger.Warn("subscription lost; reconnecting", "channel", channel, "error", err)
			backoff = o.StartBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

// once runs one subscription until it fails; live reports whether it got as
// far as the first confirmation.
func once(ctx context.Context, client redis.UniversalClient, channel string, h Handler, o Options) (live bool, err error) {
	p := &probe{channel: probeChannel(channel)}
	// The probe channel rides on the same connection (on a cluster, the
	// node of the first channel's slot, which is the probe's slot too).
	ps := client.Subscribe(ctx, channel, p.channel)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	msg, err := ps.ReceiveTimeout(ctx, o.SubscribeWait)
	if err != nil {
		return false, err
	}
	if sub, ok := msg.(*redis.Subscription); !ok || sub.Kind != "subscribe" || sub.Channel != channel {
		return false, fmt.Errorf("unexpected first pubsub message %v", msg)
	}
	// Subscribed first, resynced second: nothing published in between is lost.
	if h.Subscribed != nil {
		if err := h.Subscribed(ctx); err != nil {
			return false, err
		}
	}

	var lastSeen atomic.Int64
	lastSeen.Store(time.Now().UnixNano())
	done := make(chan struct{})
	defer close(done)
	go keepAlive(ctx, client, channel, ps, p, &lastSeen, done, h, o)

	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return true, err
		}
		lastSeen.Store(time.Now().UnixNano())
		switch m := msg.(type) {
		case *redis.Message:
			if m.Channel == p.channel {
				p.heard()
			} else if h.Message != nil {
				h.Message(m.Payload)
			}
		case *redis.Subscription:
			// go-redis re-subscribed under us (the probe channel's
			// confirmation is not news).
			if m.Kind == "subscribe" && m.Channel == channel && h.Subscribed != nil {
				if err := h.Subscribed(ctx); err != nil {
					return true, err
				}
			}
		}
	}
}

// probe checks that the subscription hears what is published where writes
// go. A connection can stay up on a node that no longer does: after a
// Sentinel failover that demoted the old master (SENTINEL FAILOVER, or an
// old master that came back), go-redis moves its command connections to
// the new master but leaves subscriptions where they are, and a replica
// does not pass on what the master publishes. Pings still work there, so
// every ProbeInterval a probe is published through the client (to the
// current master) on a channel of this connection's own; one that is not
// heard within three intervals closes the subscription, and Run subscribes
// again on the current master (and the user resyncs).
type probe struct {
	channel string
	// pending is when the oldest probe not heard yet was published (Unix
	// nanoseconds), 0 if none.
	pending atomic.Int64
}

// probeChannel is a channel name of one subscription to channel alone, in
// channel's hash slot: on a cluster the probes are published on the node
// the subscription is on, not passed over the cluster bus.
func probeChannel(channel string) string {
	tag := channel
	if i := strings.IndexByte(channel, '{'); i >= 0 {
		if j := strings.IndexByte(channel[i+1:], '}'); j > 0 {
			tag = channel[i+1 : i+1+j]
		}
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "authgw:pubsub:probe:{" + tag + "}:" + hex.EncodeToString(b)
}

func (p *probe) heard() { p.pending.Store(0) }

// stale reports whether a probe has gone unheard for longer than limit.
func (p *probe) stale(now time.Time, limit time.Duration) bool {
	at := p.pending.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) > limit
}

// send publishes a probe unless one is pending. A probe that could not be
// published (the master is down) is not waited for.
func (p *probe) send(ctx context.Context, client redis.UniversalClient, timeout time.Duration) {
	now := time.Now().UnixNano()
	if !p.pending.CompareAndSwap(0, now) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := Publish(ctx, client, p.channel, "probe"); err != nil {
		p.pending.CompareAndSwap(now, 0)
	}
}

// keepAlive pings the connection and closes it when pongs stop coming (a
// dead connection would otherwise look like a quiet channel) or when its
// probes are not heard (see probe), and runs Tick.
func keepAlive(ctx context.Context, client redis.UniversalClient, channel string, ps *redis.PubSub, p *probe, lastSeen *atomic.Int64, done <-chan struct{}, h Handler, o Options) {
	ping := time.NewTicker(o.PingInterval)
	defer ping.Stop()
	probes := time.NewTicker(o.ProbeInterval)
	defer probes.Stop()
	var tick <-chan time.Time
	if h.Tick != nil && h.TickInterval > 0 {
		t := time.NewTicker(h.TickInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-done:
			return
		case <-ping.C:
			if time.Since(time.Unix(0, lastSeen.Load())) > 3*o.PingInterval {
				_ = ps.Close()
				return
			}
			_ = ps.Ping(ctx)
		case <-probes.C:
			if p.stale(time.Now(), 3*o.ProbeInterval) {
				o.Logger.Warn("subscription no longer hears the master (a failover?); subscribing again", "channel", channel)
				_ = ps.Close()
				return
			}
			p.send(ctx, client, o.ProbeInterval)
		case <-tick:
			h.Tick(ctx)
		}
	}
}
