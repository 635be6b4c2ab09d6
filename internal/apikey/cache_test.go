package apikey

import (
	"testing"
	"time"
)

func lruKey(b byte) [32]byte { return [32]byte{b} }

// TestLRU: the least recently used entry goes first, a read counts as a
// use, expired entries are gone, the refresh is reported once, and
// remove / clear leave a list that keeps working.
func TestLRU(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	later, never := now.Add(time.Hour), now.Add(2*time.Hour)
	c := newLRU[int](3)
	for i := 1; i <= 3; i++ {
		c.add(lruKey(byte(i)), i, never, never)
	}
	if _, _, ok := c.get(lruKey(1), now); !ok { // 1 is now the most recent
		t.Fatal("1 missing")
	}
	c.add(lruKey(4), 4, never, never) // evicts 2, the least recently used
	for k, want := range map[byte]bool{1: true, 2: false, 3: true, 4: true} {
		if _, _, ok := c.get(lruKey(k), now); ok != want {
			t.Errorf("key %d present = %v; want %v", k, ok, want)
		}
	}
	// The reads above went in map order; touch 3, 4, 1 in turn so 3 is the
	// least recently used: adding 5 must evict it.
	for _, k := range []byte{3, 4, 1} {
		c.get(lruKey(k), now)
	}
	c.add(lruKey(5), 5, never, never)
	if _, _, ok := c.get(lruKey(3), now); ok {
		t.Error("3 survived; it was the least recently used")
	}
	if len(c.items) != 3 {
		t.Fatalf("%d items; want 3", len(c.items))
	}

	// Updating an entry keeps one item for it.
	c.add(lruKey(5), 50, now.Add(time.Minute), later)
	if v, _, _ := c.get(lruKey(5), now); v != 50 || len(c.items) != 3 {
		t.Fatalf("updated value %d with %d items; want 50 with 3", v, len(c.items))
	}
	// Due once, at or after refresh.
	if _, due, _ := c.get(lruKey(5), now.Add(time.Minute)); !due {
		t.Error("not due at its refresh time")
	}
	if _, due, _ := c.get(lruKey(5), now.Add(2*time.Minute)); due {
		t.Error("due a second time")
	}
	// Expired: gone.
	if _, _, ok := c.get(lruKey(5), later); ok || len(c.items) != 2 {
		t.Fatalf("expired entry served (ok %v, %d items)", ok, len(c.items))
	}

	c.remove(lruKey(1))
	c.remove(lruKey(1)) // twice: nothing happens
	if _, _, ok := c.get(lruKey(1), now); ok {
		t.Error("removed entry served")
	}
	c.clear()
	if len(c.items) != 0 || c.root.next != &c.root || c.root.prev != &c.root {
		t.Fatal("clear left entries")
	}
	for i := 10; i < 20; i++ { // still a bounded LRU after clear
		c.add(lruKey(byte(i)), i, never, never)
	}
	if len(c.items) != 3 {
		t.Fatalf("%d items after clear and 10 adds; want 3", len(c.items))
	}
	for _, k := range []byte{17, 18, 19} {
		if v, _, ok := c.get(lruKey(k), now); !ok || v != int(k) {
			t.Errorf("key %d: %d, %v; want the three most recent kept", k, v, ok)
		}
	}
	// The list and the map agree: walking it finds every item once.
	n := 0
	for it := c.root.next; it != &c.root; it = it.next {
		if c.items[it.key] != it {
			t.Fatal("list and map disagree")
		}
		n++
	}
	if n != len(c.items) {
		t.Fatalf("list has %d items, map %d", n, len(c.items))
	}
}

func TestLRUZeroSize(t *testing.T) {
	c := newLRU[int](0)
	c.add(lruKey(1), 1, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	if _, _, ok := c.get(lruKey(1), time.Now()); ok {
		t.Fatal("a cache of size 0 kept an entry")
	}
}
