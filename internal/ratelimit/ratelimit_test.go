package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// backend builds limiters on one store.
type backend struct {
	// limiter builds a limiter; for Redis each has its own client.
	limiter func(t *testing.T, opts Options) *Limiter
	// replicas builds n limiters that share counters as n gateway
	// replicas would: separate clients on one Redis; for the memory store,
	// which serves a single instance, the same limiter n times.
	replicas func(t *testing.T, opts Options, n int) []*Limiter
}

// backends runs f against the memory store and against a real Redis.
func backends(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("memory", func(t *testing.T) {
		newL := func(t *testing.T, opts Options) *Limiter {
			t.Helper()
			l, err := NewMemory(opts)
			if err != nil {
				t.Fatalf("NewMemory: %v", err)
			}
			return l
		}
		f(t, backend{limiter: newL, replicas: func(t *testing.T, opts Options, n int) []*Limiter {
			l := newL(t, opts)
			ls := make([]*Limiter, n)
			for i := range ls {
				ls[i] = l
			}
			return ls
		}})
	})
	t.Run("redis", func(t *testing.T) {
		s := redistest.Start(t)
		newL := func(t *testing.T, opts Options) *Limiter {
			t.Helper()
			return newRedisLimiter(t, newClient(t, s.Addr()), opts)
		}
		f(t, backend{limiter: newL, replicas: func(t *testing.T, opts Options, n int) []*Limiter {
			ls := make([]*Limiter, n)
			for i := range ls {
				ls[i] = newL(t, opts)
			}
			return ls
		}})
	})
}

func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newRedisLimiter(t testing.TB, c redis.UniversalClient, opts Options) *Limiter {
	t.Helper()
	l, err := NewRedis(c, opts)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	return l
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := Options{Name: "x", Limit: 1, Period: time.Second}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no name", func(o *Options) { o.Name = "" }, "name is empty"},
		{"zero limit", func(o *Options) { o.Limit = 0 }, "limit 0"},
		{"negative limit", func(o *Options) { o.Limit = -5 }, "limit -5"},
		{"zero period", func(o *Options) { o.Period = 0 }, "period 0s"},
		{"sub-millisecond period", func(o *Options) { o.Period = time.Microsecond }, "shorter than 1ms"},
		{"unknown policy", func(o *Options) { o.OnStoreError = 7 }, "Policy(7)"},
		{"negative timeout", func(o *Options) { o.Timeout = -time.Second }, "timeout -1s"},
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := good
			tt.edit(&opts)
			if _, err := NewMemory(opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewMemory error = %v; want one containing %q", err, tt.want)
			}
			if _, err := NewRedis(c, opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewRedis error = %v; want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := NewRedis(nil, good); err == nil {
		t.Error("NewRedis(nil client) succeeded; want an error")
	}
	if _, err := NewRedis(c, good); err != nil {
		t.Errorf("NewRedis with good options and no Redis running: %v; want no I/O and no error", err)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{"allow", AllowOnError, false},
		{"deny", DenyOnError, false},
		{"", 0, true},
		{"Allow", 0, true},
		{"open", 0, true},
	} {
		got, err := ParsePolicy(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("%v.String() = %q; want %q", got, got.String(), tt.in)
		}
	}
	if Policy(0) != DenyOnError {
		t.Error("zero Policy is not DenyOnError; a forgotten setting must fail closed")
	}
}

func TestTake(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := b.limiter(t, Options{Name: "route:take", Limit: 3, Period: time.Minute})
		start := time.Now()
		for i, want := range []struct {
			remaining int64
			reached   bool
		}{{2, false}, {1, false}, {0, false}, {0, true}, {0, true}} {
			r := l.Take(ctx, "k")
			if r.StoreError != nil || r.Reached != want.reached || r.Remaining != want.remaining || r.Limit != 3 {
				t.Errorf("take %d = %+v; want Limit 3, Remaining %d, Reached %v", i+1, r, want.remaining, want.reached)
			}
			if r.Reset.Before(start.Add(time.Minute-time.Second)) || r.Reset.After(time.Now().Add(time.Minute+time.Second)) {
				t.Errorf("take %d: Reset %v is not about a minute after %v", i+1, r.Reset, start)
			}
		}
		if r := l.Take(ctx, "other"); r.Reached || r.Remaining != 2 {
			t.Errorf("another key = %+v; want its own budget (Remaining 2)", r)
		}
	})
}

func TestPeekDoesNotCount(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := b.limiter(t, Options{Name: "peek", Limit: 2, Period: time.Minute})
		for range 5 {
			if r := l.Peek(ctx, "k"); r.Reached || r.Remaining != 2 || r.StoreError != nil {
				t.Fatalf("Peek on a fresh key = %+v; want Remaining 2, not Reached", r)
			}
		}
		if r := l.Take(ctx, "k"); r.Reached || r.Remaining != 1 {
			t.Errorf("Take after Peeks = %+v; want Remaining 1", r)
		}
	})
}

// TestAuthFailuresTripAtLimit pins the off-by-one: with limit 10, ten
// failures trip the limit and the 11th request is refused (Peek runs before
// any strategy, so even a valid credential gets 429). The failures are
// spread over two replicas.
func TestAuthFailuresTripAtLimit(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		opts := Options{Name: "auth_failures", Limit: 10, Period: time.Minute}
		replicas := b.replicas(t, opts, 2)
		ip := "198.51.100.9"
		for i := range 10 {
			l := replicas[i%2]
			if r := l.Peek(ctx, ip); r.Reached {
				t.Fatalf("before failure %d: Peek = %+v; want not Reached", i+1, r)
			}
			r := l.Add(ctx, ip)
			if wantReached := i == 9; r.Reached != wantReached || r.Remaining != int64(9-i) {
				t.Errorf("failure %d: Add = %+v; want Remaining %d, Reached %v", i+1, r, 9-i, wantReached)
			}
		}
		now := time.Now()
		for i, l := range []*Limiter{replicas[0], replicas[1], replicas[0]} {
			r := l.Peek(ctx, ip)
			if !r.Reached || r.Remaining != 0 || r.StoreError != nil {
				t.Errorf("request %d after 10 failures: Peek = %+v; want Reached", 11+i, r)
			}
			if ra := r.RetryAfter(now); ra < 1 || ra > 61 {
				t.Errorf("RetryAfter = %d; want within the 1m window", ra)
			}
		}
		// More failures while blocked do not unblock or overflow anything.
		if r := replicas[1].Add(ctx, ip); !r.Reached || r.Remaining != 0 {
			t.Errorf("failure 11: Add = %+v; want Reached, Remaining 0", r)
		}
		if r := replicas[0].Peek(ctx, "198.51.100.10"); r.Reached {
			t.Errorf("another IP: Peek = %+v; want not Reached", r)
		}
	})
}

func TestLimiterNamesDoNotShareCounters(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		a := b.limiter(t, Options{Name: "route:a", Limit: 1, Period: time.Minute})
		bl := b.limiter(t, Options{Name: "route:b", Limit: 1, Period: time.Minute})
		a.Take(ctx, "k")
		if r := bl.Take(ctx, "k"); r.Reached {
			t.Errorf("route:b after a hit on route:a = %+v; want not Reached", r)
		}
	})
}

// TestConcurrentQuota: 2 replicas x 50 goroutines against limit 37; exactly
// 37 requests may pass.
func TestConcurrentQuota(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		opts := Options{Name: "route:burst", Limit: 37, Period: time.Minute, Timeout: 10 * time.Second}
		concurrentQuota(t, b.replicas(t, opts, 2), 37, "tenant-1")
	})
}

// concurrentQuota sends 50 Takes of key at once to each replica (sharing
// counters, limit limit, a one-minute window): exactly limit may pass.
func concurrentQuota(t *testing.T, replicas []*Limiter, limit int64, key string) {
	t.Helper()
	const perReplica = 50
	start := time.Now()
	var passed atomic.Int64
	var wg sync.WaitGroup
	results := make(chan Result, len(replicas)*perReplica)
	for _, l := range replicas {
		for range perReplica {
			wg.Go(func() {
				r := l.Take(context.Background(), key)
				if !r.Reached {
					passed.Add(1)
				}
				results <- r
			})
		}
	}
	wg.Wait()
	close(results)
	end := time.Now()
	if got := passed.Load(); got != limit {
		t.Errorf("%d requests passed; want exactly %d", got, limit)
	}
	for r := range results {
		if r.StoreError != nil {
			t.Fatalf("store error: %v", r.StoreError)
		}
		if r.Reached && r.Remaining != 0 {
			t.Errorf("refused request has Remaining %d; want 0", r.Remaining)
		}
		if r.Reset.Before(start.Add(time.Minute-time.Second)) || r.Reset.After(end.Add(time.Minute+time.Second)) {
			t.Errorf("Reset %v not a minute after the burst (%v..%v)", r.Reset, start, end)
		}
	}
}

func TestWindowExpiry(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := b.limiter(t, Options{Name: "route:short", Limit: 2, Period: time.Second})
		l.Take(ctx, "k")
		l.Take(ctx, "k")
		r := l.Take(ctx, "k")
		if !r.Reached {
			t.Fatalf("third take = %+v; want Reached", r)
		}
		// Reset is rounded up, so once it has passed the window is over
		// (it may be over up to a second sooner: no need to wait for Reset).
		poll.Until(t, time.Until(r.Reset)+50*time.Millisecond, "a fresh budget after Reset", func() error {
			if r := l.Peek(ctx, "k"); r.Reached || r.Remaining != 2 {
				return fmt.Errorf("Peek = %+v", r)
			}
			return nil
		})
		if r := l.Take(ctx, "k"); r.Reached || r.Remaining != 1 {
			t.Errorf("Take after the window = %+v; want Remaining 1", r)
		}
	})
}

// TestCancelledContextStillCounts: a client that goes away (or half-closes
// its connection, which cancels the request context while it can still
// read the 401) must not escape the failure count.
func TestCancelledContextStillCounts(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		l := b.limiter(t, Options{Name: "auth_failures", Limit: 2, Period: time.Minute})
		for i := range 2 {
			if r := l.Add(ctx, "k"); r.StoreError != nil {
				t.Fatalf("Add %d with a cancelled context: %v", i+1, r.StoreError)
			}
		}
		if r := l.Peek(ctx, "k"); !r.Reached {
			t.Errorf("Peek after two failures = %+v; want Reached", r)
		}
	})
}

func TestResultHeaders(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tests := []struct {
		name       string
		r          Result
		want       map[string]string // nil = no headers
		retryAfter int
	}{
		{"in window", Result{Limit: 100, Remaining: 42, Reset: now.Add(30 * time.Second)},
			map[string]string{"RateLimit-Limit": "100", "RateLimit-Remaining": "42", "RateLimit-Reset": "30"}, 30},
		{"fraction rounds up", Result{Limit: 10, Reset: now.Add(1500 * time.Millisecond), Reached: true},
			map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "2"}, 2},
		{"reset passed", Result{Limit: 10, Reset: now.Add(-time.Second), Reached: true},
			map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "0"}, 1},
		{"store error", Result{Limit: 10, Reached: true, Reset: now.Add(5 * time.Second), StoreError: context.DeadlineExceeded},
			nil, 5},
		{"unknown reset", Result{Limit: 10, StoreError: context.DeadlineExceeded}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			tt.r.SetHeaders(h, now)
			if tt.want == nil && len(h) != 0 {
				t.Errorf("headers = %v; want none", h)
			}
			for k, v := range tt.want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q; want %q", k, got, v)
				}
			}
			if got := tt.r.RetryAfter(now); got != tt.retryAfter {
				t.Errorf("RetryAfter = %d; want %d", got, tt.retryAfter)
			}
		})
	}
}

func BenchmarkTakeMemory(b *testing.B) {
	l, err := NewMemory(Options{Name: "bench", Limit: 1 << 40, Period: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := l.Take(ctx, "198.51.100.9"); r.Reached {
			b.Fatal("reached")
		}
	}
}

// BenchmarkCallsMemory: each of Take, Peek and Add on a memory limiter,
// the three entry points sharing one body (the hot path of every quota and
// of the auth-failure check).
func BenchmarkCallsMemory(b *testing.B) {
	l, err := NewMemory(Options{Name: "bench", Limit: 1 << 40, Period: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		call func(context.Context, string) Result
	}{{"Take", l.Take}, {"Peek", l.Peek}, {"Add", l.Add}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := c.call(ctx, "198.51.100.9"); r.Reached {
					b.Fatal("reached")
				}
			}
		})
	}
}
