// Package clocktest has the clocks tests give the gateway's parts, so that
// they move time instead of sleeping.
package clocktest

import (
	"sync"
	"time"
)

// Fake is a clock that stands still until Advance; safe for concurrent use.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a Fake at start.
func NewFake(start time.Time) *Fake { return &Fake{t: start} }

// Now answers the clock's time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Offset is real time plus an offset that Advance moves forward: for a part
// whose counterpart (a real provider, Redis) keeps real time. Its zero value
// is real time.
type Offset struct {
	mu  sync.Mutex
	off time.Duration
}

// Now answers real time plus the offset.
func (c *Offset) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the clock forward by d.
func (c *Offset) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}
