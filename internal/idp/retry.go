package idp

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	// RetryInterval is the least time between two attempts to get one
	// thing from a provider (its discovery document, a key set): while a
	// provider is down, a flood of requests does not become a flood of
	// requests to it, and what needs it fails closed until an attempt
	// succeeds.
	RetryInterval = 10 * time.Second
	// AttemptTimeout bounds one attempt.
	AttemptTimeout = 10 * time.Second
)

// Gate runs the attempts to get one thing from a provider: concurrent
// callers share the attempt in flight; a new attempt starts only Interval
// after the last one began, and until then the last outcome is answered; an
// attempt outlives a caller that leaves (others may be waiting on it),
// bounded by Timeout. The zero Gate is ready to use.
type Gate[T any] struct {
	// Interval is the least time between attempts; 0: RetryInterval.
	Interval time.Duration
	// Timeout bounds one attempt; 0: AttemptTimeout.
	Timeout time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	flight singleflight.Group
	mu     sync.Mutex
	tried  time.Time // when the last attempt began
	last   outcome[T]
}

type outcome[T any] struct {
	v   T
	err error
}

// Do answers the outcome of an attempt: one made now, the one in flight,
// or, within Interval of the last one, that one's. A caller whose ctx ends
// first gets ctx's error.
func (g *Gate[T]) Do(ctx context.Context, attempt func(context.Context) (T, error)) (T, error) {
	ch := g.flight.DoChan("", func() (any, error) {
		g.mu.Lock()
		now := g.now()
		if !g.tried.IsZero() && now.Sub(g.tried) < g.interval() {
			last := g.last
			g.mu.Unlock()
			return last, nil
		}
		g.tried = now
		g.mu.Unlock()

		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout())
		defer cancel()
		v, err := attempt(actx)
		o := outcome[T]{v, err}
		g.mu.Lock()
		g.last = o
		g.mu.Unlock()
		return o, nil
	})
	select {
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	case r := <-ch:
		o := r.Val.(outcome[T])
		return o.v, o.err
	}
}

func (g *Gate[T]) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Gate[T]) interval() time.Duration {
	if g.Interval > 0 {
		return g.Interval
	}
	return RetryInterval
}

func (g *Gate[T]) timeout() time.Duration {
	if g.Timeout > 0 {
		return g.Timeout
	}
	return AttemptTimeout
}

// Lazy is a value got from a provider once, on first use: until an attempt
// succeeds, Get tries again through a Gate (at most once per RetryInterval)
// and fails closed meanwhile. Once got, the value is kept.
type Lazy[T any] struct {
	gate  Gate[*T]
	fetch func(context.Context) (*T, error)
	v     atomic.Pointer[T]
}

// NewLazy returns a Lazy that gets its value with fetch; now is the clock
// (nil: time.Now).
func NewLazy[T any](now func() time.Time, fetch func(context.Context) (*T, error)) *Lazy[T] {
	return &Lazy[T]{gate: Gate[*T]{Now: now}, fetch: fetch}
}

// Get answers the value, or the error of the last attempt.
func (l *Lazy[T]) Get(ctx context.Context) (*T, error) {
	if v := l.v.Load(); v != nil {
		return v, nil
	}
	return l.gate.Do(ctx, func(ctx context.Context) (*T, error) {
		if v := l.v.Load(); v != nil {
			return v, nil
		}
		v, err := l.fetch(ctx)
		if err != nil {
			return nil, err
		}
		l.v.Store(v)
		return v, nil
	})
}
