package ratelimit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// manualApprox is an approximate limiter whose flusher never fires within
// a test (the test syncs it): a one-hour window synced every 59 minutes.
func manualApprox(t *testing.T, c redis.UniversalClient, name string, limit int64, policy Policy) *Limiter {
	t.Helper()
	l := newRedisLimiter(t, c, Options{Name: name, Limit: limit, Period: time.Hour, Approximate: true,
		SyncInterval: 59 * time.Minute, OnStoreError: policy, Timeout: 2 * time.Second})
	t.Cleanup(l.Close)
	return l
}

// overshootBound drives two replicas in sync rounds: in each round every
// replica is asked perRound times, then each syncs (in turn, the order
// alternating). The window admits at least limit and at most
// limit + (replicas-1)·perRound: what the other replica admits in one
// interval, no more.
func overshootBound(t *testing.T, clients func() redis.UniversalClient) {
	ctx := context.Background()
	for _, tt := range []struct{ limit, perRound int64 }{{100, 30}, {100, 7}, {37, 50}, {10, 1}} {
		t.Run(fmt.Sprintf("limit %d, %d per round", tt.limit, tt.perRound), func(t *testing.T) {
			name := fmt.Sprintf("route:bound-%d-%d", tt.limit, tt.perRound)
			reps := []*Limiter{manualApprox(t, clients(), name, tt.limit, DenyOnError), manualApprox(t, clients(), name, tt.limit, DenyOnError)}
			var total int64
			for round := 0; round < 1000; round++ {
				var admitted int64
				for _, l := range reps {
					for range tt.perRound {
						r := l.Take(ctx, "tenant")
						if r.StoreError != nil {
							t.Fatal(r.StoreError)
						}
						if !r.Reached {
							admitted++
						}
					}
				}
				if round%2 == 1 {
					slices.Reverse(reps)
				}
				for _, l := range reps {
					l.approx.sync()
				}
				total += admitted
				if admitted == 0 {
					break
				}
			}
			bound := tt.limit + int64(len(reps)-1)*tt.perRound
			if total < tt.limit || total > bound {
				t.Errorf("admitted %d; want within [limit %d, limit + (replicas-1) × per-interval %d]", total, tt.limit, bound)
			}
			t.Logf("admitted %d (limit %d, bound %d)", total, tt.limit, bound)
		})
	}
}

func TestApproximateOvershootBound(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		s := redistest.Start(t)
		overshootBound(t, func() redis.UniversalClient { return newClient(t, s.Addr()) })
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t, 3)
		overshootBound(t, func() redis.UniversalClient {
			rc, err := redisconn.New(c.URL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rc.Close() })
			return rc
		})
	})
}

// TestApproximateSyncIsOneRoundTrip: a sync sends the counts of every key
// hit since the last one in one pipeline, and nothing for the keys not hit.
func TestApproximateSyncIsOneRoundTrip(t *testing.T) {
	s := redistest.Start(t)
	c := newClient(t, s.Addr())
	hook := &countHook{}
	c.AddHook(hook)
	l := manualApprox(t, c, "route:rt", 1000, DenyOnError)
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d", "e"}
	for _, k := range append(keys, "idle") {
		l.Take(ctx, k) // first hits: exact, one call each
	}
	hook.take()
	for range 3 {
		for _, k := range keys {
			if r := l.Take(ctx, k); r.Reached || r.StoreError != nil {
				t.Fatalf("Take(%s) = %+v", k, r)
			}
		}
	}
	if got := hook.take(); len(got) != 0 {
		t.Fatalf("local takes sent %q; want nothing", got)
	}
	l.approx.sync()
	var got []string
	for _, c := range hook.take() {
		if strings.Contains(c, "eval") {
			got = append(got, c) // not the new connection's HELLO, CLIENT SETINFO
		}
	}
	want := []string{"pipeline:evalsha", "pipeline:evalsha", "pipeline:evalsha", "pipeline:evalsha", "pipeline:evalsha"}
	if !slices.Equal(got, want) {
		t.Errorf("sync sent %q; want %q (one pipeline, the 5 keys hit)", got, want)
	}
	for _, k := range keys {
		if n, err := c.Get(ctx, keyPrefix("route:rt")+":"+k).Int64(); err != nil || n != 4 {
			t.Errorf("count of %s in Redis = %d, %v; want 4", k, n, err)
		}
	}
}

// TestApproximateRedisDown: with Redis stopped, allow admits by the local
// count (so the limit still holds on this replica) and deny refuses with
// the store error; when Redis is back the counts admitted meanwhile are
// added by the next sync.
func TestApproximateRedisDown(t *testing.T) {
	s := redistest.Start(t)
	ctx := context.Background()
	allow := manualApprox(t, newClient(t, s.Addr()), "route:down-allow", 5, AllowOnError)
	deny := manualApprox(t, newClient(t, s.Addr()), "route:down-deny", 5, DenyOnError)
	for _, l := range []*Limiter{allow, deny} {
		for range 2 {
			if r := l.Take(ctx, "k"); r.Reached || r.StoreError != nil {
				t.Fatalf("%s with Redis up: %+v", l.name, r)
			}
		}
	}
	s.Stop()
	deny.approx.sync() // fails: deny now goes to Redis, and refuses
	if r := deny.Take(ctx, "k"); !r.Reached || r.StoreError == nil {
		t.Errorf("deny, Redis down: %+v; want Reached with a StoreError", r)
	}
	allow.approx.sync()
	var admitted int
	for range 10 {
		r := allow.Take(ctx, "k")
		if !r.Reached {
			admitted++
		}
	}
	if admitted != 3 {
		t.Errorf("allow, Redis down: %d more admitted; want 3 (limit 5, 2 counted before)", admitted)
	}
	s.Restart()
	allow.approx.sync()
	// The second hit before the stop (the first was counted in Redis) and
	// the 3 admitted while it was down.
	if n, err := newClient(t, s.Addr()).Get(ctx, keyPrefix("route:down-allow")+":k").Int64(); err != nil || n != 4 {
		t.Errorf("count in the restarted (empty) Redis = %d, %v; want 4, the hits not synced before", n, err)
	}
	if r := deny.Take(ctx, "k"); r.Reached || r.StoreError != nil {
		t.Errorf("deny, Redis back: %+v; want admitted", r)
	}
}

// TestApproximateCloseSyncs: Close stops the flusher after a last sync, so
// what a retired limiter admitted counts for the next one.
func TestApproximateCloseSyncs(t *testing.T) {
	s := redistest.Start(t)
	c := newClient(t, s.Addr())
	ctx := context.Background()
	old := manualApprox(t, c, "route:close", 10, DenyOnError)
	for range 6 {
		old.Take(ctx, "k")
	}
	old.Close()
	old.Close() // idempotent
	next := manualApprox(t, c, "route:close", 10, DenyOnError)
	var admitted int
	for range 10 {
		if !next.Take(ctx, "k").Reached {
			admitted++
		}
	}
	if admitted != 4 {
		t.Errorf("the next limiter admitted %d; want 4 (limit 10, 6 taken before Close)", admitted)
	}
}

// TestApproximateFlusherSyncs: with its own flusher (20ms), two replicas
// see each other's counts within a few intervals, and 2 × 50 concurrent
// callers never get more than 2 × limit between them.
func TestApproximateFlusherSyncs(t *testing.T) {
	s := redistest.Start(t)
	opts := Options{Name: "route:flush", Limit: 40, Period: time.Minute, Approximate: true, SyncInterval: 20 * time.Millisecond, Timeout: 10 * time.Second}
	a, b := newRedisLimiter(t, newClient(t, s.Addr()), opts), newRedisLimiter(t, newClient(t, s.Addr()), opts)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	ctx := context.Background()
	for range 30 {
		a.Take(ctx, "k")
	}
	time.Sleep(100 * time.Millisecond)
	var admitted int
	for range 20 {
		if !b.Take(ctx, "k").Reached {
			admitted++
		}
	}
	if admitted != 10 {
		t.Errorf("B admitted %d after A's 30 were synced; want 10 (limit 40)", admitted)
	}
}
