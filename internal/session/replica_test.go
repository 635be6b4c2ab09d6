package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// replicas are two managers sharing one Redis, as two gateway processes do.
func replicas(t *testing.T, o Options) (a, b *Manager, srv *redistest.Server) {
	t.Helper()
	srv = redistest.Start(t)
	a, b = replicasOn(t, o, func() redis.UniversalClient { return newRedisClient(t, srv.URL()) })
	return a, b, srv
}

// replicasOn are two managers, each with its own client from newClient,
// with their denylists synced.
func replicasOn(t *testing.T, o Options, newClient func() redis.UniversalClient) (a, b *Manager) {
	t.Helper()
	clk := newClock()
	mk := func() *Manager {
		opts := o
		opts.Issuer = newIssuer(t, testSecret, clk.Now)
		opts.Redis = newClient()
		synced := syncProbe(t, opts.Redis)
		m, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		synced(m)
		return m
	}
	return mk(), mk()
}

func TestLogoutPropagatesToOtherReplica(t *testing.T) {
	a, b, _ := replicas(t, Options{})
	logoutPropagates(t, a, b)
}

// logoutPropagates: a logout at a is seen by b (the access token denied,
// the refresh token refused).
func logoutPropagates(t *testing.T, a, b *Manager) {
	t.Helper()
	ctx := context.Background()
	s, err := a.Start(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if revoked(t, b, s.AccessID) {
		t.Fatal("revoked before logout")
	}
	if err := a.Logout(ctx, s.Access, s.Refresh); err != nil {
		t.Fatal(err)
	}
	if !revoked(t, a, s.AccessID) {
		t.Fatal("the replica that logged out still accepts the token")
	}
	// The bound is generous (a shared, noisy machine); the measured time is
	// what the log line reports.
	took := poll.True(t, 5*time.Second, "replica b sees the logout", func() bool { return revoked(t, b, s.AccessID) })
	t.Logf("logout seen by the other replica after %s", took)
	if _, err := b.Refresh(ctx, s.Refresh); !errors.Is(err, ErrRevoked) {
		t.Fatalf("refresh at b after logout at a: err = %v; want ErrRevoked", err)
	}
}

func TestReuseAcrossReplicas(t *testing.T) {
	a, b, _ := replicas(t, Options{})
	reuseAcrossReplicas(t, a, b)
}

// reuseAcrossReplicas: a refresh token rotated at a and presented again at
// b revokes the family on both, with every access token minted in it.
func reuseAcrossReplicas(t *testing.T, a, b *Manager) {
	t.Helper()
	ctx := context.Background()
	t1, err := a.Start(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := a.Refresh(ctx, t1.Refresh) // the user, at replica a
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Refresh(ctx, t1.Refresh); !errors.Is(err, ErrReused) { // the thief, at replica b
		t.Fatalf("reuse at the other replica: err = %v; want ErrReused", err)
	}
	if _, err := a.Refresh(ctx, t2.Refresh); !errors.Is(err, ErrRevoked) {
		t.Fatalf("user's current token after reuse: err = %v; want ErrRevoked", err)
	}
	for _, m := range []*Manager{a, b} {
		for _, tk := range []*Tokens{t1, t2} {
			poll.True(t, 5*time.Second, "access token of the reused family denied", func() bool { return revoked(t, m, tk.AccessID) })
		}
	}
}

// A message published while a replica's subscription is down is lost; the
// resync after it resubscribes must still bring the revocation in.
func TestResyncAfterSubscriptionLoss(t *testing.T) {
	ctx := context.Background()
	_, b, srv := replicas(t, Options{})
	admin := newRedisClient(t, srv.URL())
	// A revocation whose message b never gets: in the set, never published.
	exp := time.Now().Add(time.Hour).Unix()
	if err := admin.ZAdd(ctx, denyKey, redis.Z{Score: float64(exp), Member: "lost-message-jti"}).Err(); err != nil {
		t.Fatal(err)
	}
	if revoked(t, b, "lost-message-jti") {
		t.Fatal("revoked without message or resync")
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	// b resubscribes and loads the whole set again.
	poll.True(t, 10*time.Second, "revocation missed while b was disconnected seen after its resync", func() bool {
		return revoked(t, b, "lost-message-jti")
	})
}

func TestFailsClosedWhileRedisIsDown(t *testing.T) {
	ctx := context.Background()
	_, b, srv := replicas(t, Options{StaleAfter: 300 * time.Millisecond})
	srv.Stop()
	poll.True(t, 10*time.Second, "IsRevoked fails closed", func() bool {
		_, err := b.IsRevoked(ctx, "some-token-id")
		return errors.Is(err, ErrUnavailable)
	})
	srv.Restart()
	poll.True(t, 15*time.Second, "IsRevoked recovers", func() bool {
		_, err := b.IsRevoked(ctx, "some-token-id")
		return err == nil
	})
}

func TestDenylistPrunesExpired(t *testing.T) {
	clk := newClock()
	d := newDenylist(clk.Now, 0)
	d.add([]AccessRef{{"a", clk.Now().Add(time.Minute)}, {"b", clk.Now().Add(time.Hour)}})
	clk.Advance(2 * time.Minute)
	d.prune()
	if got, _ := d.IsRevoked(context.Background(), "a"); got {
		t.Fatalf("expired entry kept")
	}
	if got, _ := d.IsRevoked(context.Background(), "b"); !got {
		t.Fatalf("live entry pruned")
	}
}

func BenchmarkIsRevoked(b *testing.B) {
	clk := newClock()
	d := newDenylist(clk.Now, 5*time.Second)
	d.markUp()
	refs := make([]AccessRef, 10000)
	for i := range refs {
		refs[i] = AccessRef{ID: "tok" + string(rune('a'+i%26)) + time.Duration(i).String(), Expiry: clk.Now().Add(time.Hour)}
	}
	d.add(refs)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, err := d.IsRevoked(ctx, "not-revoked-token-id"); r || err != nil {
				b.Fatal("unexpected")
			}
		}
	})
}

func BenchmarkRefresh(b *testing.B) {
	for _, mode := range []string{"memory", "redis"} {
		b.Run(mode, func(b *testing.B) {
			clk := newClock()
			var m *Manager
			if mode == "redis" {
				srv := redistest.Start(b)
				m = newManager(b, newRedisClient(b, srv.URL()), clk)
			} else {
				m = newManager(b, nil, clk)
			}
			ctx := context.Background()
			t, err := m.Start(ctx, alice)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				clk.Advance(time.Minute) // as a browser would: old access tokens expire
				if t, err = m.Refresh(ctx, t.Refresh); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRevocationReachesEarlierVersions: during a rolling upgrade, replicas
// of the version before the {session} channel still listen on the old
// channel; a logout must reach them there at once, in the same format.
func TestRevocationReachesEarlierVersions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, _, srv := replicas(t, Options{})
	old := newRedisClient(t, srv.URL()).Subscribe(ctx, legacyDenyChannel)
	t.Cleanup(func() { _ = old.Close() })
	if _, err := old.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := a.Start(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Logout(ctx, s.Access, ""); err != nil {
		t.Fatal(err)
	}
	msg, err := old.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ref, ok := parseDenyMessage(msg.Payload); !ok || ref.ID != s.AccessID {
		t.Errorf("old channel got %q; want the revoked access token %s", msg.Payload, s.AccessID)
	}
}
