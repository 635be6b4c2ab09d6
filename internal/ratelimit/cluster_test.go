package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// TestCluster runs the limiters and the failure watch on a real 3-master
// Redis Cluster, as replicas of the gateway with a redis+cluster:// URL do.
// The subtests share the cluster and run in order: the last ones stop nodes.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	client := func(t *testing.T) redis.UniversalClient {
		t.Helper()
		rc, err := redisconn.New(c.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rc.Close() })
		return rc
	}
	ctx := context.Background()

	t.Run("quota exact across replicas under concurrency", func(t *testing.T) {
		opts := Options{Name: "route:burst", Limit: 37, Period: time.Minute, Timeout: 10 * time.Second}
		concurrentQuota(t, []*Limiter{newRedisLimiter(t, client(t), opts), newRedisLimiter(t, client(t), opts)}, 37, "tenant-1")
	})

	// Failures counted on every master before a replica listened are found
	// by its scan (one SCAN per master): the failing clients are refused at
	// once, and clean clients cost no Redis command from the start, with no
	// window of exact checks.
	t.Run("failure watch scans every master", func(t *testing.T) {
		a, _ := runWatch(t, client(t), 1, time.Minute)
		waitLive(t, a)
		keys := keysPerNode(t, c, "auth_failures", "203.0.113.")
		for _, k := range keys {
			if r := a.Add(ctx, k); r.StoreError != nil {
				t.Fatal(r.StoreError)
			}
		}
		b, cb := runWatch(t, client(t), 1, time.Minute)
		waitLive(t, b)
		wantCleanWithoutRedis(t, b, cb, "198.51.100.1")
		for _, k := range keys {
			if r := b.Peek(ctx, k); !r.Reached || r.StoreError != nil {
				t.Errorf("client %s failed before B listened: %+v; want Reached", k, r)
			}
		}
	})

	// With a master down (not the one serving the watch's channel), every
	// failure counted on a live master still reaches the other replica:
	// the publish goes to the channel's own master, which the subscribers
	// listen on, not to a random one that may be the dead one.
	t.Run("failure notices with a master down", func(t *testing.T) {
		a, _ := runWatch(t, client(t), 1, time.Minute)
		b, _ := runWatch(t, client(t), 1, time.Minute)
		waitLive(t, a)
		waitLive(t, b)
		dead := c.NodeFor("probe")
		if dead == c.NodeFor(a.channel) {
			dead = otherNode(c, dead)
		}
		var keys []string
		for i := 0; len(keys) < 30; i++ {
			k := fmt.Sprintf("192.0.2.%d", i)
			if c.NodeFor(keyPrefix("auth_failures")+":"+k) != dead {
				keys = append(keys, k)
			}
		}
		dead.Stop()
		t.Cleanup(func() { restart(t, c, dead) })
		for _, k := range keys {
			if r := a.Add(ctx, k); r.StoreError != nil {
				t.Fatalf("failure of %s (on a live master): %v", k, r.StoreError)
			}
		}
		for _, k := range keys {
			poll.True(t, 2*time.Second, "B refuses "+k+" after A counted its failure", func() bool { return b.Peek(ctx, k).Reached })
		}
	})

	// A master goes down and comes back with its data but without the
	// limiter's scripts (a restart empties the script cache), while another
	// master is down: keys on live masters are counted exactly, keys on the
	// dead one get the store error policy, and a limiter built meanwhile
	// works on the live masters. Loading the scripts on every node first
	// (ulule's SCRIPT LOAD, sent to every shard) would fail all of them.
	t.Run("master down and restarted", func(t *testing.T) {
		opts := Options{Name: "route:nodes", Limit: 3, Period: time.Minute, OnStoreError: DenyOnError, Timeout: 500 * time.Millisecond}
		l := newRedisLimiter(t, client(t), opts)
		keys := keysPerNode(t, c, opts.Name, "tenant-")
		kA, kB := keys[0], keys[1]
		nodeA, nodeB := c.NodeFor(keyPrefix(opts.Name)+":"+kA), c.NodeFor(keyPrefix(opts.Name)+":"+kB)
		for _, k := range []string{kA, kB} {
			if r := l.Take(ctx, k); r.StoreError != nil || r.Remaining != 2 {
				t.Fatalf("Take(%s) with every master up = %+v; want Remaining 2", k, r)
			}
		}
		nodeA.Stop()
		nodeA.Restart()
		nodeB.Stop()
		t.Cleanup(func() { restart(t, c, nodeB) })

		fresh := newRedisLimiter(t, client(t), opts)
		for name, l := range map[string]*Limiter{"built before": l, "built with a master down": fresh} {
			var r Result
			poll.True(t, 5*time.Second, name+": Take on the restarted master answers", func() bool {
				r = l.Take(ctx, kA)
				return r.StoreError == nil
			})
			if r.Reached {
				t.Errorf("%s: Take(%s) after its master restarted = %+v; want counted, not Reached", name, kA, r)
			}
			if r := l.Take(ctx, kB); r.StoreError == nil || !r.Reached {
				t.Errorf("%s: Take(%s) on the dead master = %+v; want a store error and Reached (deny)", name, kB, r)
			}
		}
		if r := l.Take(ctx, kA); !r.Reached {
			t.Errorf("fourth Take(%s) = %+v; want Reached: the count survived the restart", kA, r)
		}
		restart(t, c, nodeB)
		poll.True(t, 5*time.Second, "Take on the master that came back answers", func() bool { return l.Take(ctx, kB).StoreError == nil })
	})
}

// keysPerNode returns one client key per master of c whose counter of the
// limiter name lives on that master, in the order of c.Nodes.
func keysPerNode(t *testing.T, c *redistest.Cluster, name, base string) []string {
	t.Helper()
	out := make([]string, len(c.Nodes))
	found := 0
	for i := 0; found < len(c.Nodes); i++ {
		k := fmt.Sprintf("%s%d", base, i)
		n := c.NodeFor(keyPrefix(name) + ":" + k)
		for j, node := range c.Nodes {
			if node == n && out[j] == "" {
				out[j] = k
				found++
			}
		}
	}
	return out
}

// otherNode is a node of c other than n.
func otherNode(c *redistest.Cluster, n *redistest.Server) *redistest.Server {
	if c.Nodes[0] != n {
		return c.Nodes[0]
	}
	return c.Nodes[1]
}

// restart starts a stopped node again (nothing if it runs) and waits for a
// healthy cluster.
func restart(t *testing.T, c *redistest.Cluster, n *redistest.Server) {
	t.Helper()
	if !n.Running() {
		n.Restart()
	}
	c.WaitHealthy()
}
