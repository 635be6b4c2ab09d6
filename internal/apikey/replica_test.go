package apikey

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// replica is one gateway instance: its own Redis client, store and Verifier.
type replica struct {
	store *observedStore // flushes counts the (re)subscriptions
	v     *Verifier
	hits  atomic.Int64 // answers from memory
}

func newReplica(t *testing.T, srv *redistest.Server, name string, opts VerifierOptions) *replica {
	t.Helper()
	r := &replica{store: &observedStore{Store: NewRedisStore(newRedisClient(t, srv.URL()+"?client_name="+name), testStrategy, nil)}}
	if opts.Prefixes == nil {
		opts.Prefixes = []string{"pk_live"}
	}
	opts.OnCache = func(hit bool) {
		if hit {
			r.hits.Add(1)
		}
	}
	v, err := NewVerifier(r.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.v = v
	runVerifier(t, v)
	// Every subscription confirmation flushes the caches.
	poll.True(t, 10*time.Second, name+" subscribed", func() bool { return r.store.flushes.Load() >= 1 })
	return r
}

func (r *replica) generation() uint64 {
	r.v.mu.Lock()
	defer r.v.mu.Unlock()
	return r.v.gen
}

// mustCache verifies key twice and checks the second answer came from the
// cache.
func (r *replica) mustCache(t *testing.T, key string) {
	t.Helper()
	r.mustAccept(t, key)
	hits := r.hits.Load()
	r.mustAccept(t, key)
	if r.hits.Load() != hits+1 {
		t.Fatal("second Verify was not a cache hit")
	}
}

func (r *replica) mustAccept(t *testing.T, key string) {
	t.Helper()
	if _, err := r.v.Verify(context.Background(), key); err != nil {
		t.Fatalf("Verify: %v; want the key accepted", err)
	}
}

// silentWrite stores rec directly, publishing nothing: a change this
// replica's subscription never hears about, as when it was cut off.
func silentWrite(t *testing.T, c redis.UniversalClient, rec *Record) {
	t.Helper()
	ctx := context.Background()
	l := strategyLayout(testStrategy)
	data, err := marshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, l.idKey(rec.ID), data, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, l.hashKey(rec.Hash), rec.ID, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.SAdd(ctx, l.ids, rec.ID).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestReplicasRevocationPropagates: two replicas have a key cached (for an
// hour); a revocation through a third client (the CLI) makes both refuse it
// at once, through the pub/sub invalidation.
func TestReplicasRevocationPropagates(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	a := newReplica(t, srv, "replica-a", VerifierOptions{CacheTTL: time.Hour})
	b := newReplica(t, srv, "replica-b", VerifierOptions{CacheTTL: time.Hour})
	cli := NewManager(NewRedisStore(newRedisClient(t, srv.URL()), testStrategy, nil), ManagerOptions{})

	for _, op := range []struct {
		name    string
		do      func(id string) error
		refusal error
	}{
		{"revoke", func(id string) error { return cli.Revoke(ctx, id) }, ErrRevoked},
		{"rotate without grace", func(id string) error { _, _, err := cli.Rotate(ctx, id, 0); return err }, ErrExpired},
	} {
		t.Run(op.name, func(t *testing.T) {
			genA, genB := a.generation(), b.generation()
			key, rec, err := cli.Create(ctx, CreateParams{Name: "svc"})
			if err != nil {
				t.Fatal(err)
			}
			// The create's own event evicts the (absent) entry; wait for it
			// so that it cannot evict the entry cached next.
			poll.True(t, 5*time.Second, "create event", func() bool {
				return a.generation() > genA && b.generation() > genB
			})
			for _, r := range []*replica{a, b} {
				r.mustCache(t, key)
			}
			start := time.Now()
			if err := op.do(rec.ID); err != nil {
				t.Fatal(err)
			}
			for name, r := range map[string]*replica{"a": a, "b": b} {
				poll.True(t, 5*time.Second, "replica "+name+" refuses", func() bool {
					_, err := r.v.Verify(ctx, key)
					return errors.Is(err, op.refusal)
				})
				// Measured for the report; not asserted (shared, noisy machine).
				t.Logf("%s reached replica %s in %v (cache TTL is 1h)", op.name, name, time.Since(start))
			}
		})
	}
}

// TestReplicaCutOffFlushesOnResubscribe: replica B's subscription is killed
// and a revocation happens that B never hears about. When B's subscription
// comes back it flushes its cache, so it refuses the key although its cached
// entry had an hour to live. Replica A, never cut off, is the control: it
// did not hear about this (deliberately silent) revocation either, and still
// serves its cached entry.
func TestReplicaCutOffFlushesOnResubscribe(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	admin := newRedisClient(t, srv.URL())
	cli := NewManager(NewRedisStore(admin, testStrategy, nil), ManagerOptions{})
	// Created before the replicas subscribe, so no late create event can
	// evict what they cache.
	key, rec, err := cli.Create(ctx, CreateParams{Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	a := newReplica(t, srv, "replica-a", VerifierOptions{CacheTTL: time.Hour})
	b := newReplica(t, srv, "replica-b", VerifierOptions{CacheTTL: time.Hour})
	a.mustCache(t, key)
	b.mustCache(t, key)

	revoked := rec.Clone()
	revoked.RevokedAt = time.Now().UTC()
	silentWrite(t, admin, revoked)
	killPubSub(t, admin, "replica-b")

	poll.True(t, 10*time.Second, "replica b refuses after resubscribing", func() bool {
		_, err := b.v.Verify(ctx, key)
		return errors.Is(err, ErrRevoked)
	})
	if n := b.store.flushes.Load(); n < 2 {
		t.Errorf("replica b subscribed %d times; want a resubscription", n)
	}
	if _, err := a.v.Verify(ctx, key); err != nil {
		t.Errorf("control replica a: %v; want its cached entry served (it was not flushed)", err)
	}
}

// killPubSub kills the pub/sub connection of the named client.
func killPubSub(t *testing.T, admin redis.UniversalClient, name string) {
	t.Helper()
	ctx := context.Background()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] == name && f["sub"] != "0" && f["sub"] != "" {
			id, _ := strconv.ParseInt(f["id"], 10, 64)
			if err := admin.ClientKillByFilter(ctx, "ID", strconv.FormatInt(id, 10)).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d pub/sub connections of %s; want 1:\n%s", killed, name, list)
	}
}

// TestReplicaRedisOutage: with Redis down, cached keys keep working up to
// CacheTTL, uncached keys fail closed with a technical error; Redis comes
// back empty and the key is revoked right away (before the replica can have
// resubscribed, and silently): the replica refuses it after reconnecting.
func TestReplicaRedisOutage(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	admin := newRedisClient(t, srv.URL())
	cli := NewManager(NewRedisStore(admin, testStrategy, nil), ManagerOptions{})
	clock := newFakeClock()
	key, rec, err := cli.Create(ctx, CreateParams{Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	uncached, _, err := cli.Create(ctx, CreateParams{Name: "never-seen"})
	if err != nil {
		t.Fatal(err)
	}
	// long: an hour-long cache, so only the resubscription flush can make it
	// refuse. bounded: a 30s cache on a fake clock, to show the bound.
	long := newReplica(t, srv, "long", VerifierOptions{CacheTTL: time.Hour})
	bounded := newReplica(t, srv, "bounded", VerifierOptions{CacheTTL: 30 * time.Second, Now: clock.Now})
	long.mustCache(t, key)
	bounded.mustCache(t, key)

	srv.Stop()
	long.mustAccept(t, key)
	clock.Advance(29 * time.Second)
	bounded.mustAccept(t, key)
	for name, r := range map[string]*replica{"long": long, "bounded": bounded} {
		_, err := r.v.Verify(ctx, uncached)
		if err == nil || errors.Is(err, ErrUnknown) || errors.Is(err, ErrRevoked) {
			t.Fatalf("%s: uncached key with redis down: %v; want a technical error", name, err)
		}
	}
	clock.Advance(time.Second)
	if _, err := bounded.v.Verify(ctx, key); err == nil || errors.Is(err, ErrUnknown) {
		t.Fatalf("cached key past CacheTTL with redis down: %v; want a technical error", err)
	}

	srv.Restart()
	revoked := rec.Clone()
	revoked.RevokedAt = time.Now().UTC()
	silentWrite(t, admin, revoked)
	poll.True(t, 15*time.Second, "refused after reconnection", func() bool {
		_, err := long.v.Verify(ctx, key)
		return errors.Is(err, ErrRevoked)
	})
	if n := long.store.flushes.Load(); n < 2 {
		t.Errorf("subscribed %d times; want a resubscription", n)
	}
	// Recovery: new keys work again.
	fresh, _, err := cli.Create(ctx, CreateParams{Name: "after"})
	if err != nil {
		t.Fatal(err)
	}
	long.mustAccept(t, fresh)
	bounded.mustAccept(t, fresh)
}
