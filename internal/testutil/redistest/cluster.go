package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters without replicas on loopback, made
// as an operator makes one: redis-server --cluster-enabled yes per node,
// then redis-cli --cluster create. Its nodes are stopped when the test ends.
type Cluster struct {
	t     testing.TB
	cli   string
	Nodes []*Server
}

// StartCluster starts a cluster of masters nodes (at least 3, as Redis
// requires) and waits until every node serves every slot.
//
// Nodes keep their data across Stop and Restart (append-only file, synced on
// every write), as a production node with persistence does, and a node that
// is down fails only the slots it serves (cluster-require-full-coverage no).
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, cli: LookPath(t, "redis-cli")}
	var addrs []string
	for range masters {
		s := newServer(t)
		s.argv = []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.dir,
			"--protected-mode", "yes",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			// The bus port defaults to port+10000, which a free port
			// near the top of the range does not have.
			"--cluster-port", strconv.Itoa(freePort(t)),
			"--cluster-node-timeout", "1000",
			"--cluster-require-full-coverage", "no",
			"--appendonly", "yes", "--appendfsync", "always", "--save", ""}
		s.start()
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr())
	}
	c.redisCLI(append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	c.WaitHealthy()
	return c
}

// URL is the redis+cluster:// URL of the cluster, every node a seed.
func (c *Cluster) URL() string {
	u := "redis+cluster://" + c.Nodes[0].Addr()
	for i, n := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + n.Addr()
	}
	return u
}

// redisCLI runs redis-cli with args and fails the test if it fails.
func (c *Cluster) redisCLI(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.cli, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// WaitHealthy waits until every node is up, knows every other node and
// sees every slot served.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	want := fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes))
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := n.do("CLUSTER", "INFO")
			s, _ := info.(string)
			if err == nil && strings.Contains(s, "cluster_state:ok") && strings.Contains(s, "cluster_slots_ok:16384") && strings.Contains(s, want) {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("cluster node %s not healthy within 30s: %v\n%s", n.Addr(), err, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Slot is the hash slot of key.
func (c *Cluster) Slot(key string) int {
	c.t.Helper()
	for _, n := range c.Nodes {
		if v, err := n.do("CLUSTER", "KEYSLOT", key); err == nil {
			return int(v.(int64))
		}
	}
	c.t.Fatal("no cluster node answers CLUSTER KEYSLOT")
	return 0
}

// NodeFor is the master that serves key's slot now.
func (c *Cluster) NodeFor(key string) *Server {
	c.t.Helper()
	slot := c.Slot(key)
	for _, n := range c.Nodes {
		owned, err := n.ownedSlots()
		if err != nil {
			continue
		}
		for _, r := range owned {
			if slot >= r[0] && slot <= r[1] {
				return n
			}
		}
	}
	c.t.Fatalf("no node owns slot %d of %q", slot, key)
	return nil
}

// FirstSlots are the lowest n slots that node serves: the slots
// Reshard(node, ..., n) moves.
func (c *Cluster) FirstSlots(node *Server, n int) (lo, hi int) {
	c.t.Helper()
	owned, err := node.ownedSlots()
	if err != nil || len(owned) == 0 {
		c.t.Fatalf("slots of %s: %v", node.Addr(), err)
	}
	// Ranges come in ascending order; the first holds enough in these tests.
	if owned[0][1]-owned[0][0]+1 < n {
		c.t.Fatalf("node %s's first slot range %v is shorter than %d", node.Addr(), owned[0], n)
	}
	return owned[0][0], owned[0][0] + n - 1
}

// Reshard moves the lowest n slots of from to to, with their keys, using
// redis-cli --cluster reshard as an operator would, and waits until the
// cluster is healthy again.
func (c *Cluster) Reshard(from, to *Server, n int) {
	c.t.Helper()
	c.redisCLI("--cluster", "reshard", from.Addr(),
		"--cluster-from", from.id(c.t), "--cluster-to", to.id(c.t),
		"--cluster-slots", strconv.Itoa(n), "--cluster-yes")
	c.WaitHealthy()
}

// id is the node's cluster id.
func (s *Server) id(t testing.TB) string {
	t.Helper()
	v, err := s.do("CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("CLUSTER MYID on %s: %v", s.Addr(), err)
	}
	return v.(string)
}

// ownedSlots are the slot ranges the node says it serves itself, from its
// own line of CLUSTER NODES.
func (s *Server) ownedSlots() ([][2]int, error) {
	v, err := s.do("CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(v.(string), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "myself") {
			continue
		}
		var out [][2]int
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot being imported or migrated
				continue
			}
			a, b, found := strings.Cut(r, "-")
			if !found {
				b = a
			}
			lo, err1 := strconv.Atoi(a)
			hi, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("reading slot range %q", r)
			}
			out = append(out, [2]int{lo, hi})
		}
		return out, nil
	}
	return nil, fmt.Errorf("no myself line in CLUSTER NODES of %s", s.Addr())
}

// do sends one command to this node alone.
func (s *Server) do(args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: 2 * time.Second, Protocol: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}
