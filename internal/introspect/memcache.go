package introspect

import (
	"sync"
	"time"
)

// sweepPerPut is how many entries each put looks at to drop expired ones.
const sweepPerPut = 4

// memCache is a bounded map of verdicts by token hash.
type memCache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]*entry
}

func (c *memCache) get(key [32]byte, now time.Time) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil
	}
	if !now.Before(e.Until) {
		delete(c.m, key)
		return nil
	}
	return e
}

func (c *memCache) put(key [32]byte, e *entry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A few entries per put are checked and dropped when expired (map
	// iteration starts at a random place), so that the map holds about
	// what is live rather than filling up with verdicts that expired,
	// which every garbage collection would mark.
	swept := 0
	for k, old := range c.m {
		if swept == sweepPerPut {
			break
		}
		swept++
		if !now.Before(old.Until) {
			delete(c.m, k)
		}
	}
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[key] = e
}

// evict drops the expired entries, or one arbitrary entry if none is: the
// cache stays bounded whatever tokens it is fed.
func (c *memCache) evict(now time.Time) {
	var victim [32]byte
	dropped := false
	for k, e := range c.m {
		if !now.Before(e.Until) {
			delete(c.m, k)
			dropped = true
		} else {
			victim = k
		}
	}
	if !dropped {
		delete(c.m, victim)
	}
}
