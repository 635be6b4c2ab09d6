package apikey

import (
	"container/list"
	"time"
)

// lru is a size-bounded map from key hash to V whose entries also expire.
// Not safe for concurrent use: the Verifier guards it with its mutex.
type lru[V any] struct {
	max   int
	order list.List // front = most recently used; values are *lruItem[V]
	items map[[32]byte]*list.Element
}

type lruItem[V any] struct {
	key     [32]byte
	val     V
	refresh time.Time // from then on, get reports the entry due for a re-read, once
	expires time.Time
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, items: make(map[[32]byte]*list.Element, min(max, 1024))}
}

// get returns the live entry of key, and due = true the first time it is
// asked for at or after the entry's refresh time (never again for this
// entry: one re-read per entry, however many requests see it meanwhile).
func (c *lru[V]) get(key [32]byte, now time.Time) (val V, due, ok bool) {
	el, ok := c.items[key]
	if !ok {
		return val, false, false
	}
	it := el.Value.(*lruItem[V])
	if !now.Before(it.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return val, false, false
	}
	c.order.MoveToFront(el)
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
	if el, ok := c.items[key]; ok {
		it := el.Value.(*lruItem[V])
		it.val, it.refresh, it.expires = val, refresh, expires
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruItem[V]{key: key, val: val, refresh: refresh, expires: expires})
	for len(c.items) > c.max {
		el := c.order.Back()
		c.order.Remove(el)
		delete(c.items, el.Value.(*lruItem[V]).key)
	}
}

func (c *lru[V]) remove(key [32]byte) {
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
		delete(c.items, key)
	}
}

func (c *lru[V]) clear() {
	c.order.Init()
	clear(c.items)
}
