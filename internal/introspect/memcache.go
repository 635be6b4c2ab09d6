package introspect

import (
	"sync"
	"time"

	"github.com/authgateway/authgateway/internal/expiry"
)

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
	// Expired verdicts go a few per put, so that the map holds about what
	// is live rather than filling up with verdicts every collection marks.
	expiry.Sweep(c.m, expiry.PerInsert, func(e *entry) bool { return !now.Before(e.Until) })
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
