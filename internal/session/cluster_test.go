package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// TestCluster runs two session managers on a real 3-master Redis Cluster,
// as two gateway replicas with a redis+cluster:// URL do. The subtests
// share the cluster and run in order: the last ones stop masters.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	newClient := func() redis.UniversalClient {
		rc, err := redisconn.New(c.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rc.Close() })
		return rc
	}
	const stale = 500 * time.Millisecond
	a, b := replicasOn(t, Options{StaleAfter: stale}, newClient)
	ctx := context.Background()
	home := c.NodeFor(denyKey) // every session key has the {session} tag

	t.Run("logout seen by both", func(t *testing.T) { logoutPropagates(t, a, b) })
	t.Run("refresh reuse seen by both", func(t *testing.T) { reuseAcrossReplicas(t, a, b) })
	t.Run("parallel refresh within the grace", func(t *testing.T) {
		ga, gb := a.WithLimits(testGrace, 0), b.WithLimits(testGrace, 0)
		parallelRefresh(t, ga, gb)
	})
	t.Run("subject revoked on both", func(t *testing.T) { subjectRevokedEverywhere(t, a, b) })

	// A master that holds no session state is down: sessions, logout and
	// its revocation channel carry on. (Before the channel carried the
	// {session} tag, it lived on another master than the sessions, and
	// that master being down made every replica's denylist stale: every
	// token the gateway issued refused.)
	t.Run("another master down", func(t *testing.T) {
		other := c.Nodes[0]
		for _, n := range c.Nodes {
			if n != home && c.NodeFor(legacyDenyChannel) == n {
				other = n // the master of the old channel, where there is one
			}
		}
		if other == home {
			other = c.Nodes[1]
		}
		other.Stop()
		t.Cleanup(func() { restartNode(t, c, other) })
		// Long enough for a lost subscription to be noticed and for the
		// denylist to go stale.
		time.Sleep(4 * time.Second)
		for name, m := range map[string]*Manager{"a": a, "b": b} {
			if _, err := m.IsRevoked(ctx, "any-token-id"); err != nil {
				t.Errorf("replica %s with a master without session state down: IsRevoked: %v; want an answer", name, err)
			}
		}
		logoutPropagates(t, a, b)
		restartNode(t, c, other)
	})

	// The master of the session state is down: starting a session fails
	// (an error, no panic), the denylists fail closed once stale, and all
	// of it works again when the master is back, with its data.
	t.Run("session master down and back", func(t *testing.T) {
		s, err := a.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		home.Stop()
		t.Cleanup(func() { restartNode(t, c, home) })
		if _, err := a.Start(ctx, alice); err == nil {
			t.Error("Start with the session master down succeeded")
		}
		if _, err := b.Refresh(ctx, s.Refresh); err == nil || errors.Is(err, ErrReused) {
			t.Errorf("Refresh with the session master down: err = %v; want a technical error", err)
		}
		for name, m := range map[string]*Manager{"a": a, "b": b} {
			poll.True(t, 10*time.Second, "replica "+name+" fails closed", func() bool {
				_, err := m.IsRevoked(ctx, s.AccessID)
				return errors.Is(err, ErrUnavailable)
			})
		}
		restartNode(t, c, home)
		for name, m := range map[string]*Manager{"a": a, "b": b} {
			poll.True(t, 15*time.Second, "replica "+name+" answers again", func() bool {
				_, err := m.IsRevoked(ctx, s.AccessID)
				return err == nil
			})
		}
		s2, err := b.Refresh(ctx, s.Refresh)
		if err != nil {
			t.Fatalf("Refresh of a session started before the outage: %v", err)
		}
		if err := b.Logout(ctx, s2.Access, s2.Refresh); err != nil {
			t.Fatal(err)
		}
		poll.True(t, 5*time.Second, "logout at b seen by a", func() bool { return revoked(t, a, s2.AccessID) })
	})
}

// restartNode starts a stopped master again (nothing if it runs) and waits
// for a healthy cluster.
func restartNode(t *testing.T, c *redistest.Cluster, n *redistest.Server) {
	t.Helper()
	if !n.Running() {
		n.Restart()
	}
	c.WaitHealthy()
}
