package ratelimit

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/authgateway/authgateway/internal/redisconn"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// countHook records the commands a client sends.
type countHook struct {
	mu   sync.Mutex
	cmds []string
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.cmds = append(h.cmds, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		for _, c := range cmds {
			h.cmds = append(h.cmds, "pipeline:"+c.Name())
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *countHook) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.cmds
	h.cmds = nil
	return c
}

func TestRedisOneRoundTripPerCall(t *testing.T) {
	s := redistest.Start(t)
	c := newClient(t, s.Addr())
	hook := &countHook{}
	c.AddHook(hook)
	l := newRedisLimiter(t, c, Options{Name: "auth_failures", Limit: 5, Period: time.Minute})
	ctx := context.Background()

	if got := hook.take(); len(got) != 0 {
		t.Errorf("building the limiter sent %q; want nothing", got)
	}
	// The first use of each of ulule's two scripts meets NOSCRIPT and sends
	// the script once (EVAL); no SCRIPT LOAD, which a cluster would send to
	// every node.
	l.Peek(ctx, "warm")
	l.Take(ctx, "warm")
	var sent []string
	for _, c := range hook.take() {
		if c == "evalsha" || c == "eval" || c == "script" {
			sent = append(sent, c)
		}
	}
	if want := []string{"evalsha", "eval", "evalsha", "eval"}; !slices.Equal(sent, want) {
		t.Errorf("first Peek and Take sent %q; want %q", sent, want)
	}
	calls := []struct {
		name string
		call func() Result
	}{
		{"Take", func() Result { return l.Take(ctx, "k") }},
		{"Peek", func() Result { return l.Peek(ctx, "k") }},
		{"Add", func() Result { return l.Add(ctx, "k") }},
		{"Peek of a missing key", func() Result { return l.Peek(ctx, "missing") }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			if r := tt.call(); r.StoreError != nil {
				t.Fatalf("store error: %v", r.StoreError)
			}
			if got := hook.take(); len(got) != 1 || got[0] != "evalsha" {
				t.Errorf("sent %q; want exactly one evalsha", got)
			}
		})
	}
}

// TestRedisKeysExpire: every counter key carries a TTL, so a key can never
// block an address forever.
func TestRedisKeysExpire(t *testing.T) {
	s := redistest.Start(t)
	c := newClient(t, s.Addr())
	l := newRedisLimiter(t, c, Options{Name: "auth_failures", Limit: 5, Period: time.Minute})
	l.Add(context.Background(), "198.51.100.9")
	key := "authgateway:ratelimit:auth_failures:198.51.100.9"
	ttl, err := c.PTTL(context.Background(), key).Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL(%s) = %v, %v; want within (0, 1m]", key, ttl, err)
	}
}

// TestRedisDown stops Redis under a running limiter: AllowOnError lets
// requests through, DenyOnError refuses them, both report the error; and
// both recover once Redis is back (empty, without the scripts loaded).
func TestRedisDown(t *testing.T) {
	s := redistest.Start(t)
	ctx := context.Background()
	const timeout = 200 * time.Millisecond
	limiters := map[Policy]*Limiter{}
	for _, p := range []Policy{AllowOnError, DenyOnError} {
		l := newRedisLimiter(t, newClient(t, s.Addr()), Options{
			Name: "auth_failures", Limit: 3, Period: time.Minute, OnStoreError: p, Timeout: timeout})
		if r := l.Add(ctx, "k"); r.StoreError != nil {
			t.Fatalf("%v: Add with Redis up: %v", p, r.StoreError)
		}
		limiters[p] = l
	}

	s.Stop()
	for p, l := range limiters {
		for name, call := range map[string]func(context.Context, string) Result{"Take": l.Take, "Peek": l.Peek, "Add": l.Add} {
			t.Run(p.String()+"/"+name, func(t *testing.T) {
				now := time.Now()
				r := call(ctx, "k")
				if r.StoreError == nil {
					t.Fatalf("Redis stopped: result %+v has no StoreError", r)
				}
				if want := p == DenyOnError; r.Reached != want {
					t.Errorf("Redis stopped, policy %v: Reached = %v; want %v", p, r.Reached, want)
				}
				if p == DenyOnError {
					if ra := r.RetryAfter(now); ra < 1 || ra > 6 {
						t.Errorf("RetryAfter = %d; want a short retry (1..5s), not the whole period", ra)
					}
				}
			})
		}
	}

	s.Restart()
	for p, l := range limiters {
		var r Result
		_, _ = poll.Wait(10*time.Second, func() error {
			r = l.Take(ctx, "after:"+p.String())
			return r.StoreError
		})
		if r.StoreError != nil || r.Reached || r.Remaining != 2 {
			t.Errorf("%v: after restart Take = %+v; want counting again (Remaining 2)", p, r)
		}
	}
}

// TestRedisHangs: a Redis that accepts connections and never answers must
// not stall requests beyond Options.Timeout, even with a client that would
// wait forever (no read timeout, no context deadlines).
func TestRedisHangs(t *testing.T) {
	addr := silentServer(t)
	c := redis.NewClient(&redis.Options{
		Addr: addr, ReadTimeout: -1, WriteTimeout: -1, MaxRetries: -1,
	})
	t.Cleanup(func() { _ = c.Close() })
	for _, tt := range []struct {
		policy      Policy
		wantReached bool
	}{{AllowOnError, false}, {DenyOnError, true}} {
		t.Run(tt.policy.String(), func(t *testing.T) {
			l := newRedisLimiter(t, c, Options{Name: "x", Limit: 1, Period: time.Minute,
				OnStoreError: tt.policy, Timeout: 50 * time.Millisecond})
			for i := range 2 {
				r := l.Take(context.Background(), "k")
				if !errors.Is(r.StoreError, context.DeadlineExceeded) || r.Reached != tt.wantReached {
					t.Errorf("call %d: %+v; want Reached %v and a deadline error", i+1, r, tt.wantReached)
				}
			}
		})
	}
}

// TestRedisStallsAfterBuild: once the store is built, a Redis that stops
// answering (paused here for far longer than the test waits) must still
// not hold a request beyond Options.Timeout, and the store error policy
// decides. (CLIENT PAUSE WRITE holds every EVALSHA, while the admin client
// can still unpause.) It runs with a client that honours context deadlines (the
// gateway's, which calls Redis on the request's goroutine) and with one
// that does not (bounded by the limiter's own goroutine).
func TestRedisStallsAfterBuild(t *testing.T) {
	s := redistest.Start(t)
	admin := newClient(t, s.Addr())
	for _, tt := range []struct {
		name      string
		deadlines bool
		policy    Policy
	}{
		{"deadlines/allow", true, AllowOnError},
		{"deadlines/deny", true, DenyOnError},
		{"no deadlines/deny", false, DenyOnError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// No read or write timeouts: only the limiter's deadline may end the wait.
			c := redis.NewClient(&redis.Options{Addr: s.Addr(), ReadTimeout: -1, WriteTimeout: -1, ContextTimeoutEnabled: tt.deadlines})
			t.Cleanup(func() { _ = c.Close() })
			l := newRedisLimiter(t, c, Options{Name: "x", Limit: 1, Period: time.Minute,
				OnStoreError: tt.policy, Timeout: 100 * time.Millisecond})
			if l.redis.deadlines != tt.deadlines {
				t.Fatalf("deadlines = %v, want %v", l.redis.deadlines, tt.deadlines)
			}
			ctx := context.Background()
			if r := l.Take(ctx, "build"); r.StoreError != nil {
				t.Fatalf("first Take: %v", r.StoreError)
			}
			if err := admin.Do(ctx, "CLIENT", "PAUSE", "60000", "WRITE").Err(); err != nil {
				t.Fatalf("pausing redis: %v", err)
			}
			t.Cleanup(func() { _ = admin.Do(context.Background(), "CLIENT", "UNPAUSE").Err() })
			done := make(chan Result, 1)
			go func() { done <- l.Take(ctx, "k") }()
			select {
			case r := <-done:
				if r.StoreError == nil || r.Reached != (tt.policy == DenyOnError) {
					t.Errorf("Take during the stall = %+v; want a store error and Reached %v", r, tt.policy == DenyOnError)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Take waited for the stalled Redis (10 s) instead of giving up after its 100 ms timeout")
			}
			if err := admin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
				t.Fatalf("unpausing redis: %v", err)
			}
		})
	}
}

func TestHonoursDeadlines(t *testing.T) {
	for _, tt := range []struct {
		name   string
		client redis.UniversalClient
		want   bool
	}{
		{"client", redis.NewClient(&redis.Options{ContextTimeoutEnabled: true}), true},
		{"client without", redis.NewClient(&redis.Options{}), false},
		{"cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true}), true},
		{"ring", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}, ContextTimeoutEnabled: true}), true},
		{"ring without", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}}), false},
	} {
		if got := honoursDeadlines(tt.client); got != tt.want {
			t.Errorf("%s: honoursDeadlines = %v, want %v", tt.name, got, tt.want)
		}
		_ = tt.client.Close()
	}
}

// silentServer accepts TCP connections and never writes to them.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// BenchmarkTakeRedis: one quota check against a redis-server, through the
// gateway's kind of client (redisconn: context deadlines honoured), by one
// caller at a time (serial) and by 50 at once (c50; throughput is 1e9 /
// ns/op), for: ulule, the store earlier versions used (the baseline);
// exact, this package's exact mode; approximate, synced every 100ms. Run
// it with redis-server pinned to another core (AUTHGATEWAY_BENCH_REDIS),
// e.g. taskset -c 0 go test -cpu 1 -bench TakeRedis.
func BenchmarkTakeRedis(b *testing.B) {
	addr := benchRedis(b)
	c, err := redisconn.New("redis://" + addr + "/0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	opts := Options{Name: "bench", Limit: 1 << 40, Period: time.Hour}
	exact := newRedisLimiter(b, c, opts)
	opts.Name, opts.Approximate, opts.SyncInterval = "bench-approx", true, 100*time.Millisecond
	approximate := newRedisLimiter(b, c, opts)
	b.Cleanup(approximate.Close)
	st, err := ulredis.NewStoreWithOptions(&uluLoader{UniversalClient: c}, limiter.StoreOptions{Prefix: keyPrefix("bench-ulule")})
	if err != nil {
		b.Fatal(err)
	}
	rate := limiter.Rate{Limit: 1 << 40, Period: time.Hour}
	takes := []struct {
		name string
		take func(ctx context.Context, key string) error
	}{
		{"ulule", func(ctx context.Context, key string) error {
			// What Limiter.call did with ulule's store.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
			defer cancel()
			_, err := st.Increment(ctx, key, 1, rate)
			return err
		}},
		{"exact", func(ctx context.Context, key string) error { return exact.Take(ctx, key).StoreError }},
		{"approximate", func(ctx context.Context, key string) error { return approximate.Take(ctx, key).StoreError }},
	}
	ctx := context.Background()
	for _, tk := range takes {
		if err := tk.take(ctx, "198.51.100.9"); err != nil {
			b.Fatal(err)
		}
		b.Run(tk.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := tk.take(ctx, "198.51.100.9"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tk.name+"/c50", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tk.take(ctx, "198.51.100.9"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// uluLoader is the client ulule's store needs, as earlier versions gave
// it: SCRIPT LOAD answered with the digest, EVALSHA falling back to EVAL.
type uluLoader struct {
	redis.UniversalClient
	scripts sync.Map // SHA-1 hex -> source
}

func (c *uluLoader) ScriptLoad(_ context.Context, script string) *redis.StringCmd {
	sha := redis.NewScript(script).Hash()
	c.scripts.Store(sha, script)
	return redis.NewStringResult(sha, nil)
}

func (c *uluLoader) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	cmd := c.UniversalClient.EvalSha(ctx, sha, keys, args...)
	if err := cmd.Err(); err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return cmd
	}
	src, ok := c.scripts.Load(sha)
	if !ok {
		return cmd
	}
	return c.UniversalClient.Eval(ctx, src.(string), keys, args...)
}

// benchRedis is the address of the Redis the benchmarks use:
// AUTHGATEWAY_BENCH_REDIS when set (a redis-server pinned to another core
// with taskset, so that its CPU is not counted against the limiter, and
// shared by builds being compared), else a redis-server started here.
func benchRedis(b *testing.B) string {
	if addr := os.Getenv("AUTHGATEWAY_BENCH_REDIS"); addr != "" {
		return addr
	}
	return redistest.Start(b).Addr()
}
