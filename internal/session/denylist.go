package session

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Denylist is this process's view of revoked access tokens: jti → expiry.
// Lookups are a read-locked map access. Entries are dropped once the token
// has expired (it is refused as expired then anyway).
type Denylist struct {
	now func() time.Time
	// staleAfter > 0 (Redis mode): IsRevoked fails closed when the map has
	// not been kept current by a live subscription for that long.
	staleAfter time.Duration
	// downSince is the UnixNano since when the subscription has been down;
	// 0 while it is live.
	downSince atomic.Int64

	mu        sync.RWMutex
	m         map[string]int64 // jti -> exp (Unix seconds)
	lastPrune time.Time
}

func newDenylist(now func() time.Time, staleAfter time.Duration) *Denylist {
	d := &Denylist{now: now, staleAfter: staleAfter, m: map[string]int64{}, lastPrune: now()}
	if staleAfter > 0 {
		// Not subscribed yet: the grace period starts now.
		d.downSince.Store(now().UnixNano())
	}
	return d
}

// IsRevoked reports whether jti was revoked. With Redis it returns
// ErrUnavailable once the subscription has been down for longer than the
// grace period: a revocation may have been missed, so fail closed.
func (d *Denylist) IsRevoked(_ context.Context, jti string) (bool, error) {
	d.mu.RLock()
	_, ok := d.m[jti]
	d.mu.RUnlock()
	if ok {
		return true, nil
	}
	if d.staleAfter > 0 {
		if ds := d.downSince.Load(); ds != 0 && d.now().UnixNano()-ds > int64(d.staleAfter) {
			return false, ErrUnavailable
		}
	}
	return false, nil
}

// add records refs; it prunes expired entries at most once a minute.
func (d *Denylist) add(refs []AccessRef) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range refs {
		if exp := r.Expiry.Unix(); exp > d.m[r.ID] {
			d.m[r.ID] = exp
		}
	}
	if now.Sub(d.lastPrune) > time.Minute {
		d.pruneLocked(now)
	}
}

// prune drops expired entries.
func (d *Denylist) prune() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pruneLocked(d.now())
}

func (d *Denylist) pruneLocked(now time.Time) {
	d.lastPrune = now
	cut := now.Unix()
	for id, exp := range d.m {
		if exp < cut {
			delete(d.m, id)
		}
	}
}

func (d *Denylist) markUp()               { d.downSince.Store(0) }
func (d *Denylist) markDown(at time.Time) { d.downSince.CompareAndSwap(0, at.UnixNano()) }
