package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrDegraded marks a Check error that means "partly reachable": some
// masters of a cluster answer and others do not. What lives on the others
// fails closed; the rest is served.
var ErrDegraded = errors.New("redis degraded")

// Part names a piece of shared state by a key (or channel) it lives under,
// so that Check can say which pieces a master that is down holds. Keys with
// a hash tag ({...}) stand for every key of that tag.
type Part struct {
	Name string
	Key  string
}

// Check reports whether Redis answers: the node, the Sentinel-managed
// master, or every master of a cluster (each pinged). With a cluster of
// which some masters answer, the error wraps ErrDegraded and names the
// masters that do not, how many slots they serve and which of parts they
// hold; with none answering it is a plain error.
func Check(ctx context.Context, client redis.UniversalClient, parts ...Part) error {
	cc, ok := client.(*redis.ClusterClient)
	if !ok {
		return client.Ping(ctx).Err()
	}
	var (
		mu    sync.Mutex
		all   int
		down  []string
		alive *redis.Client
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		err := m.Ping(ctx).Err()
		mu.Lock()
		defer mu.Unlock()
		all++
		if err != nil {
			down = append(down, m.Options().Addr)
		} else if alive == nil {
			alive = m
		}
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("reading the cluster's masters: %w", err)
	case len(down) == 0:
		return nil
	case alive == nil:
		return fmt.Errorf("none of the cluster's %d masters answers", all)
	}
	slices.Sort(down)
	slots := slotsPerMaster(ctx, alive)
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d cluster masters unreachable:", len(down), all)
	for i, addr := range down {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s", addr)
		var what []string
		if n, ok := slots[addr]; ok {
			what = append(what, fmt.Sprintf("%d of 16384 slots", n))
		}
		for _, p := range parts {
			if m, err := cc.MasterForKey(ctx, p.Key); err == nil && m.Options().Addr == addr {
				what = append(what, p.Name)
			}
		}
		if len(what) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(what, ", "))
		}
	}
	return fmt.Errorf("%w: %s", ErrDegraded, b.String())
}

// slotsPerMaster counts the slots each master serves, by address, as the
// live master c sees them (CLUSTER SHARDS, Redis 7); empty if it cannot
// tell.
func slotsPerMaster(ctx context.Context, c *redis.Client) map[string]int {
	out := map[string]int{}
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil {
		return out
	}
	for _, sh := range shards {
		n := 0
		for _, r := range sh.Slots {
			n += int(r.End - r.Start + 1)
		}
		for _, node := range sh.Nodes {
			if node.Role == "master" {
				out[net.JoinHostPort(node.Endpoint, strconv.FormatInt(node.Port, 10))] += n
			}
		}
	}
	return out
}
