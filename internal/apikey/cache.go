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
	expires time.Time
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, items: make(map[[32]byte]*list.Element, min(max, 1024))}
}

func (c *lru[V]) get(key [32]byte, now time.Time) (V, bool) {
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	it := el.Value.(*lruItem[V])
	if !now.Before(it.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return it.val, true
}

func (c *lru[V]) add(key [32]byte, val V, expires time.Time) {
	if c.max <= 0 {
		return
	}
	if el, ok := c.items[key]; ok {
		it := el.Value.(*lruItem[V])
		it.val, it.expires = val, expires
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruItem[V]{key: key, val: val, expires: expires})
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
