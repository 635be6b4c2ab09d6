package session

import (
	"sync"
	"time"

	"github.com/authgateway/authgateway/internal/expiry"
)

// familyCache keeps, per family, what a rotation needs and what never
// changes or is checked by the rotation itself: the identity (as stored,
// so the rotate script can tell whether another replica changed it) and
// the login time. With it a transparent refresh on Redis is one round trip
// (the rotate script) instead of two: the script still decides, atomically
// and on Redis, whether the family is revoked, the token current, reused
// or within its grace, so a cached entry can make a rotation cheaper but
// never let one through that Redis would refuse.
type familyCache struct {
	mu      sync.Mutex
	entries map[string]*cachedFamily
	max     int
	now     func() time.Time
}

type cachedFamily struct {
	identity Identity
	stored   string // the identity JSON as read from Redis
	born     time.Time
	until    time.Time
}

// Families kept at most, and for how long after their last use: a replica
// sees few of them refresh within the access TTL, and an entry it no
// longer has only costs one more round trip.
const (
	familyCacheMax = 100_000
	familyCacheTTL = time.Hour
)

func newFamilyCache(now func() time.Time) *familyCache {
	return &familyCache{entries: map[string]*cachedFamily{}, max: familyCacheMax, now: now}
}

// get answers family id as cached, without its current token (which only
// Redis knows), or nil.
func (c *familyCache) get(id string) *family {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return nil
	}
	now := c.now()
	if !now.Before(e.until) {
		delete(c.entries, id)
		return nil
	}
	// Through the pointer: assigning c.entries[id] would also replace the
	// packed key with the caller's string.
	e.until = now.Add(familyCacheTTL)
	return &family{ID: id, Identity: e.identity, Born: e.born, storedIdentity: e.stored}
}

func (c *familyCache) put(f *family) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	expiry.Sweep(c.entries, expiry.PerInsert, func(e *cachedFamily) bool { return !now.Before(e.until) })
	if _, ok := c.entries[f.ID]; !ok && len(c.entries) >= c.max {
		return // full of families in use: this one pays its extra round trip
	}
	e := &cachedFamily{identity: f.Identity, stored: f.storedIdentity, born: f.Born, until: now.Add(familyCacheTTL)}
	id := f.ID
	e.identity.pack(&id, &e.stored)
	c.entries[id] = e
}

func (c *familyCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}
