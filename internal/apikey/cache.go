package apikey

import "time"

// lru is a size-bounded map from key hash to V whose entries also expire.
// Not safe for concurrent use: the Verifier guards it with its mutex.
//
// The recency list is threaded through the items themselves (rather than
// container/list's elements pointing at them): one heap object per entry,
// which with 10,000 cached keys is 10,000 objects fewer for every garbage
// collection to mark.
type lru[V any] struct {
	max   int
	root  lruItem[V] // sentinel: root.next is the most recently used
	items map[[32]byte]*lruItem[V]
}

type lruItem[V any] struct {
	prev, next *lruItem[V]
	key        [32]byte
	val        V
	refresh    time.Time // from then on, get reports the entry due for a re-read, once
	expires    time.Time
}

func newLRU[V any](max int) *lru[V] {
	c := &lru[V]{max: max, items: make(map[[32]byte]*lruItem[V], min(max, 1024))}
	c.root.prev, c.root.next = &c.root, &c.root
	return c
}

func (c *lru[V]) unlink(it *lruItem[V]) {
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
}

func (c *lru[V]) pushFront(it *lruItem[V]) {
	it.prev, it.next = &c.root, c.root.next
	c.root.next.prev = it
	c.root.next = it
}

func (c *lru[V]) moveToFront(it *lruItem[V]) {
	c.unlink(it)
	c.pushFront(it)
}

// get returns the live entry of key, and due = true the first time it is
// asked for at or after the entry's refresh time (never again for this
// entry: one re-read per entry, however many requests see it meanwhile).
func (c *lru[V]) get(key [32]byte, now time.Time) (val V, due, ok bool) {
	it, ok := c.items[key]
	if !ok {
		return val, false, false
	}
	if !now.Before(it.expires) {
		c.unlink(it)
		delete(c.items, key)
		return val, false, false
	}
	c.moveToFront(it)
	if due = !now.Before(it.refresh) && it.refresh.Before(it.expires); due {
		it.refresh = it.expires
	}
	return it.val, due, true
}

// add stores val under key until expires; from refresh on (refresh ≥
// expires: never) get reports it due for a re-read.
func (c *lru[V]) add(key [32]byte, val V, refresh, expires time.Time) {
	if c.max <= 0 {
		return
	}
	if it, ok := c.items[key]; ok {
		it.val, it.refresh, it.expires = val, refresh, expires
		c.moveToFront(it)
		return
	}
	it := &lruItem[V]{key: key, val: val, refresh: refresh, expires: expires}
	c.items[key] = it
	c.pushFront(it)
	for len(c.items) > c.max {
		last := c.root.prev
		c.unlink(last)
		delete(c.items, last.key)
	}
}

func (c *lru[V]) remove(key [32]byte) {
	if it, ok := c.items[key]; ok {
		c.unlink(it)
		delete(c.items, key)
	}
}

func (c *lru[V]) clear() {
	c.root.prev, c.root.next = &c.root, &c.root
	clear(c.items)
}
