package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

func newWatch(t *testing.T, s *redistest.Server, limit int64, period time.Duration) (*FailureWatch, *redistest.CommandCounter) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return runWatch(t, c, limit, period)
}

// runWatch runs a watch of an auth_failures limiter on c until the test
// ends, counting the commands sent through c.
func runWatch(t *testing.T, c redis.UniversalClient, limit int64, period time.Duration) (*FailureWatch, *redistest.CommandCounter) {
	t.Helper()
	cc := &redistest.CommandCounter{Skip: []string{"publish"}}
	c.AddHook(cc)
	l, err := NewRedis(c, Options{Name: "auth_failures", Limit: limit, Period: period, OnStoreError: DenyOnError, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := NewFailureWatch(l, c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, cc
}

func waitLive(t *testing.T, w *FailureWatch) {
	t.Helper()
	poll.True(t, 5*time.Second, "watch live", func() bool {
		w.mu.RLock()
		defer w.mu.RUnlock()
		return w.live
	})
}

// endExactWindow ends the initial window of exact checks (tests use a long
// period so that counters do not expire mid-test).
func endExactWindow(w *FailureWatch) {
	w.mu.Lock()
	w.exactUntil = time.Time{}
	w.mu.Unlock()
}

func TestFailureWatchSkipsRedisForCleanClients(t *testing.T) {
	s := redistest.Start(t)
	a, ca := newWatch(t, s, 3, time.Minute)
	b, cb := newWatch(t, s, 3, time.Minute)
	waitLive(t, a)
	waitLive(t, b)
	ctx := context.Background()

	// Right after connecting (the scan of counters done), a clean client
	// costs no Redis command: there is no window of exact checks.
	wantCleanWithoutRedis(t, b, cb, "198.51.100.1")

	// Failures counted on A make B check that key in Redis, and trip it.
	for range 3 {
		a.Add(ctx, "203.0.113.7")
	}
	poll.True(t, 2*time.Second, "B sees A's failures", func() bool { return b.Peek(ctx, "203.0.113.7").Reached })
	_ = ca
	// Other keys stay free on B.
	wantCleanWithoutRedis(t, b, cb, "198.51.100.1")
}

func TestFailureWatchFailsClosedWhenRedisGoes(t *testing.T) {
	s := redistest.Start(t)
	w, _ := newWatch(t, s, 3, time.Minute)
	waitLive(t, w)
	endExactWindow(w)
	ctx := context.Background()
	s.Stop()
	// Once the subscription is seen to be gone, every check goes to Redis,
	// and the deny policy refuses.
	poll.Until(t, 15*time.Second, "refused with Redis gone", func() error {
		if r := w.Peek(ctx, "198.51.100.9"); !r.Reached || r.StoreError == nil {
			return fmt.Errorf("still answering from the fast path: %+v", r)
		}
		return nil
	})
	s.Restart()
	waitLive(t, w)
	// Back, but in the exact window: no failures in the (empty) Redis.
	if r := w.Peek(ctx, "198.51.100.9"); r.Reached || r.StoreError != nil {
		t.Fatalf("after restart: %+v", r)
	}
}

// TestFailureWatchSeesFailuresCountedBeforeItListened: failures counted by
// another replica before this one subscribed (a restart, a deploy, a
// reconnect) were published unheard; the scan after subscribing must find
// them, so the client is refused at once, while clean clients still cost no
// Redis command.
func TestFailureWatchSeesFailuresCountedBeforeItListened(t *testing.T) {
	s := redistest.Start(t)
	a, _ := newWatch(t, s, 3, time.Minute)
	waitLive(t, a)
	ctx := context.Background()
	for range 3 {
		a.Add(ctx, "203.0.113.7")
	}
	a.Add(ctx, "2001:db8:1::/64")

	b, cb := newWatch(t, s, 3, time.Minute)
	waitLive(t, b)
	if r := b.Peek(ctx, "203.0.113.7"); !r.Reached || r.StoreError != nil {
		t.Errorf("a client over the limit before B listened: %+v; want Reached", r)
	}
	if r := b.Peek(ctx, "2001:db8:1::/64"); r.Reached || r.Remaining != 2 {
		t.Errorf("a client with one earlier failure: %+v; want 2 remaining (checked in Redis)", r)
	}
	wantCleanWithoutRedis(t, b, cb, "198.51.100.1")
}

// wantCleanWithoutRedis checks key 50 times on w: never over the limit, and
// not one Redis command.
func wantCleanWithoutRedis(t *testing.T, w *FailureWatch, cc *redistest.CommandCounter, key string) {
	t.Helper()
	before := cc.Count()
	for range 50 {
		if r := w.Peek(context.Background(), key); r.Reached || r.StoreError != nil {
			t.Fatalf("clean key %s: %+v", key, r)
		}
	}
	if got := cc.Count() - before; got != 0 {
		t.Errorf("clean client %s cost %d Redis commands, want 0", key, got)
	}
}

// TestFailureWatchWithoutScanChecksAWindow: a client it cannot scan with
// (a ring) falls back to exact checks for one window. (In a synctest
// bubble, so that the window is measured exactly: no time passes there
// unless the test waits.)
func TestFailureWatchWithoutScanChecksAWindow(t *testing.T) {
	s := redistest.Start(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": s.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	l, err := NewRedis(ring, Options{Name: "auth_failures", Limit: 3, Period: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	w := NewFailureWatch(l, ring, nil)
	if _, seeded := w.countedKeys(context.Background()); seeded {
		t.Fatal("a ring client was scanned")
	}
	synctest.Test(t, func(t *testing.T) {
		w.resume(nil, false)
		w.mu.RLock()
		until, live := w.exactUntil, w.live
		w.mu.RUnlock()
		if d := time.Until(until); !live || d != time.Minute {
			t.Errorf("live %v, exact checks for %v; want live with exact checks for a whole window (1m0s)", live, d)
		}
	})
}

func TestGlobEscape(t *testing.T) {
	if got, want := globEscape(`a*b?c[d]e\f:`), `a\*b\?c\[d\]e\\f:`; got != want {
		t.Errorf("globEscape = %q, want %q", got, want)
	}
}

// TestFailureWatchTooManyKeysChecksAWindow: a flood of failing addresses
// must not grow memory past maxMarked, and must not open the fast path for
// anyone: past the bound, and when a scan finds more counters than fit, the
// watch forgets the marks and checks every request in Redis for a window.
// In a synctest bubble: marking maxMarked keys takes no time there, so the
// window is exactly one period however busy the machine is (with the real
// clock it once measured 58.9 s under load).
func TestFailureWatchTooManyKeysChecksAWindow(t *testing.T) {
	// Built outside the bubble: the memory store's cleaner goroutine runs
	// for the life of the process. The watch does not use it here.
	l, err := NewMemory(Options{Name: "auth_failures", Limit: 3, Period: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		exactFor := func(w *FailureWatch) time.Duration {
			w.mu.RLock()
			defer w.mu.RUnlock()
			return time.Until(w.exactUntil)
		}

		w := NewFailureWatch(l, nil, nil)
		w.resume(nil, true)
		if d := exactFor(w); d > 0 {
			t.Fatalf("an empty seeded resume left %v of exact checks, want none", d)
		}
		now := time.Now()
		for i := range maxMarked {
			w.mark(fmt.Sprintf("k%d", i), now)
		}
		if d := exactFor(w); d > 0 {
			t.Fatalf("%v of exact checks at the bound, want none yet", d)
		}
		w.mark("one-more", now)
		if n, d := len(w.marked), exactFor(w); n > 1 || d != time.Minute {
			t.Errorf("past the bound: %d marks and %v of exact checks; want the marks dropped and a whole window (1m0s)", n, d)
		}

		w = NewFailureWatch(l, nil, nil)
		for i := range maxMarked {
			w.marked[fmt.Sprintf("k%d", i)] = now.Add(time.Minute)
		}
		w.resume([]string{"scanned"}, true)
		if d := exactFor(w); d != time.Minute {
			t.Errorf("a scan that does not fit left %v of exact checks, want a whole window (1m0s)", d)
		}
		if _, ok := w.marked["scanned"]; ok {
			t.Error("a scanned key was marked past the bound")
		}
	})
}
