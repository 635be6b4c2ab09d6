package redistest

import (
	"testing"
)

// TestCluster: the cluster serves every slot, finds a key's node, and a
// node stopped and restarted comes back with its slots and data.
func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	const key = "probe"
	n := c.NodeFor(key)
	if _, err := n.do("SET", key, "v"); err != nil {
		t.Fatalf("SET on the key's node: %v", err)
	}
	n.Stop()
	n.Restart()
	c.WaitHealthy()
	if v, err := n.do("GET", key); err != nil || v != "v" {
		t.Fatalf("after restart GET = %v, %v; want the value back", v, err)
	}
	lo, hi := c.FirstSlots(n, 2)
	to := c.Nodes[0]
	if to == n {
		to = c.Nodes[1]
	}
	c.Reshard(n, to, 2)
	owned, err := to.ownedSlots()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range owned {
		found = found || (r[0] <= lo && hi <= r[1])
	}
	if !found {
		t.Fatalf("slots %d-%d not on the target after reshard: %v", lo, hi, owned)
	}
}

// TestSentinel: a failover an operator asks for promotes the replica; a
// failover after that master dies promotes the other node again.
func TestSentinel(t *testing.T) {
	s := StartSentinel(t)
	if m := s.Master(); m != s.Data[0] {
		t.Fatalf("master at start is %s, want %s", m.Addr(), s.Data[0].Addr())
	}
	if m := s.Failover(); m != s.Data[1] {
		t.Fatalf("after SENTINEL FAILOVER the master is %s, want the replica", m.Addr())
	}
	s.Data[1].Stop()
	if m := s.WaitFailover(s.Data[1]); m != s.Data[0] {
		t.Fatalf("after the master died the master is %s, want the first node again", m.Addr())
	}
}
