package ratelimit

import (
	"context"
	"sync"
	"time"
)

// approx is the approximate mode of a Redis limiter: hits are counted in
// this process and, every interval, the counts of all the keys hit since
// the last sync are added to Redis in one pipelined round trip (on a
// cluster, one per master concerned, at once), which answers each key's
// global count. A hit is admitted while global-at-last-sync + sent +
// local-since-sync is under the limit.
//
// The first hit of a key on this replica (in its window, or after an
// interval without hits, when the key is forgotten) is counted exactly, in
// Redis, like an exact limiter's: that gives the replica the others' count
// before it admits anything locally.
//
// The overshoot bound: a hit is admitted only if this replica's view is
// under the limit, and its view lacks only the hits the other replicas
// admitted since their own last sync before this replica's last one. So a
// window admits at most limit + what the other replicas admit between two
// of their syncs around one sync of this one; and since a replica's view
// includes its own hits, no replica ever admits more than limit alone.
// With R replicas each admitting at most n per interval, the total is at
// most limit + (R-1)·n when syncs line up, limit + (R-1)·2n when they do
// not, and never more than R·limit.
type approx struct {
	l        *Limiter
	interval time.Duration
	onSync   func(error)

	mu   sync.Mutex
	keys map[string]*approxKey
	// down is the error of the last Redis call that failed (a sync or a
	// first hit), until one works: under DenyOnError, hits then go to
	// Redis one by one (and are refused while it fails); under
	// AllowOnError they are admitted by the local count.
	down error

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// approxKey is one key's counts.
type approxKey struct {
	global int64     // the count Redis answered at the last sync (or first hit)
	sent   int64     // hits in the sync in flight
	local  int64     // hits admitted since
	reset  time.Time // end of the window, as Redis last told it
}

func (k *approxKey) view() int64 { return k.global + k.sent + k.local }

func newApprox(l *Limiter, interval time.Duration, onSync func(error)) *approx {
	a := &approx{l: l, interval: interval, onSync: onSync, keys: map[string]*approxKey{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

// run syncs every interval until close, then a last time, so that what
// this limiter admitted still counts for the replicas that go on.
func (a *approx) run() {
	defer close(a.done)
	// Start on a multiple of the interval (of the wall clock): replicas
	// whose clocks agree then sync at about the same instants, which is
	// when the overshoot bound is its tightest.
	first := time.NewTimer(time.Until(time.Now().Truncate(a.interval).Add(a.interval)))
	defer first.Stop()
	select {
	case <-first.C:
		a.sync()
	case <-a.stop:
		a.sync()
		return
	}
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.sync()
		case <-a.stop:
			a.sync()
			return
		}
	}
}

func (a *approx) close() {
	a.closeOnce.Do(func() { close(a.stop) })
	<-a.done
}

func (a *approx) hit(ctx context.Context, key string, kind hitKind) Result {
	now := time.Now()
	a.mu.Lock()
	k := a.keys[key]
	if k != nil && !now.Before(k.reset) {
		delete(a.keys, key) // its window is over
		k = nil
	}
	if k != nil && (a.down == nil || a.l.policy == AllowOnError) {
		v := k.view()
		reached := v >= a.l.rate.Limit
		if kind == hitAdd || kind == hitTake && !reached {
			k.local++
			v++
		}
		if kind == hitAdd {
			reached = v >= a.l.rate.Limit
		}
		r := Result{Limit: a.l.rate.Limit, Remaining: max(a.l.rate.Limit-v, 0), Reset: time.Unix(k.reset.Unix()+1, 0), Reached: reached}
		a.mu.Unlock()
		return r
	}
	a.mu.Unlock()
	return a.first(ctx, key, kind)
}

// first counts a hit of a key this replica holds no count of in Redis
// (exactly, as an exact limiter does), and keeps the count Redis answers.
func (a *approx) first(ctx context.Context, key string, kind hitKind) Result {
	count, pttl, err := a.l.redisCall(ctx, key, kind == hitPeek)
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.down = err
		r := a.l.onError(err)
		if a.l.policy == AllowOnError && kind != hitPeek {
			// Admitted uncounted by Redis: counted here, so the limit
			// holds on this replica's count while Redis is away.
			k := a.keys[key]
			if k == nil {
				k = &approxKey{reset: now.Add(a.l.rate.Period)}
				a.keys[key] = k
			}
			k.local++
		}
		return r
	}
	a.down = nil
	c := a.l.state(now, count, pttl)
	if kind == hitPeek {
		return a.l.result(c, c.Remaining == 0)
	}
	k := a.keys[key]
	if k == nil {
		k = &approxKey{}
		a.keys[key] = k
	}
	k.global = max(k.global, count)
	k.reset = now.Add(time.Duration(pttl) * time.Millisecond)
	if kind == hitAdd {
		return a.l.result(c, c.Remaining == 0)
	}
	return a.l.result(c, c.Reached)
}

// syncKey is one key's part in a sync.
type syncKey struct {
	key string
	k   *approxKey
}

// sync adds the hits counted since the last sync to Redis, in one round
// trip, and keeps the counts Redis answers. Keys not hit since the last
// sync, or whose window is over, are forgotten.
func (a *approx) sync() {
	now := time.Now()
	a.mu.Lock()
	var batch []syncKey
	for key, k := range a.keys {
		if !now.Before(k.reset) || k.local == 0 {
			delete(a.keys, key)
			continue
		}
		k.sent, k.local = k.local, 0
		batch = append(batch, syncKey{key, k})
	}
	a.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	calls := make([]*redisCall, len(batch))
	for i, s := range batch {
		calls[i] = a.l.redis.countCall(s.key, s.k.sent)
	}
	a.l.redis.roundTrip(context.Background(), calls)
	now = time.Now()
	var failed error
	a.mu.Lock()
	for i, s := range batch {
		count, pttl, err := countAndTTL(calls[i].cmd)
		if err != nil {
			// Sent again with the next sync (if its window lasts).
			s.k.local += s.k.sent
			s.k.sent = 0
			failed = err
			continue
		}
		s.k.global, s.k.sent = count, 0
		s.k.reset = now.Add(time.Duration(pttl) * time.Millisecond)
	}
	for _, c := range calls {
		<-c.done
		a.l.redis.release(c)
	}
	if failed != nil {
		a.down = a.l.storeError(failed)
	} else {
		a.down = nil
	}
	a.mu.Unlock()
	if failed == nil {
		a.l.outages.succeeded()
	}
	if a.onSync != nil {
		a.onSync(failed)
	}
}
