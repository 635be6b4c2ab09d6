package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedis returns a limiter whose counters live in Redis, shared by every
// replica that uses the same Options.Name on the same Redis (a single node,
// a Sentinel-managed master, or a Redis Cluster).
//
// It does no I/O (the scripts are sent on first use, see redisCounter), so
// the gateway starts while Redis is down, whatever OnStoreError says. In
// exact mode every call is a single script run on the node that holds the
// key, atomic in Redis, so concurrent replicas never over-admit; the calls
// of concurrent requests share round trips. In approximate mode
// (Options.Approximate) the limiter counts locally and syncs every
// Options.SyncInterval (see approx.go); Close stops its flusher.
func NewRedis(client redis.UniversalClient, opts Options) (*Limiter, error) {
	if client == nil {
		return nil, fmt.Errorf("rate limiter %q: redis client is nil", opts.Name)
	}
	l, err := newLimiter(opts)
	if err != nil {
		return nil, err
	}
	l.redis = newRedisCounter(client, opts.Name, opts.Period, l.timeout)
	if opts.Approximate {
		l.approx = newApprox(l, opts.SyncInterval, opts.OnSync)
	}
	return l, nil
}

// The counting scripts. Keys and replies are those of ulule/limiter's Redis
// store, which earlier versions used, so replicas of both versions share
// their counters during a rolling upgrade.
var (
	// incrScript adds ARGV[1] to the counter and answers {count, pttl}. The
	// window (ARGV[2] ms) starts with the first hit; a counter found without
	// a TTL (which nothing should leave) is given one rather than block its
	// key forever.
	incrScript = newScript(`local c = redis.call('INCRBY', KEYS[1], ARGV[1])
local t = -1
if c ~= tonumber(ARGV[1]) then t = redis.call('PTTL', KEYS[1]) end
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) t = tonumber(ARGV[2]) end
return {c, t}`)
	// peekScript answers {count, pttl} without counting; {0, 0} for none.
	peekScript = newScript(`local v = redis.call('GET', KEYS[1])
if v == false then return {0, 0} end
return {tonumber(v), redis.call('PTTL', KEYS[1])}`)
)

type script struct {
	src    string
	shaArg any // its SHA-1 hex, as EVALSHA's argument
}

func newScript(src string) script { return script{src: src, shaArg: redis.NewScript(src).Hash()} }

// redisCounter runs the counting scripts, and pipelines the calls of
// concurrent requests: a call made while a round trip is in flight is queued
// and goes with every other queued call in the next one. One round trip is
// one write and one read system call on each side however many calls it
// carries, and those (not the scripts) are most of what a call costs.
//
// An EVALSHA that meets NOSCRIPT (a node that never saw the script, was
// restarted, or took over a slot) is sent once more as EVAL, which loads
// the script on that node only: no SCRIPT LOAD, which go-redis sends to
// every node of a cluster and which fails if one of them is down.
type redisCounter struct {
	client redis.UniversalClient
	prefix string // keyPrefix(name) + ":"
	// deadlines: the client bounds every call by its context's deadline,
	// so a round trip may run on a caller's goroutine, and a caller may
	// wait for its answer without a timer of its own.
	deadlines bool
	timeout   time.Duration
	periodArg any // the window in milliseconds, as the script's argument
	calls     sync.Pool

	mu    sync.Mutex
	queue []*redisCall
	busy  bool // a round trip is in flight (or about to be)
}

func newRedisCounter(client redis.UniversalClient, name string, period, timeout time.Duration) *redisCounter {
	return &redisCounter{
		client:    client,
		prefix:    keyPrefix(name) + ":",
		deadlines: honoursDeadlines(client),
		timeout:   timeout,
		periodArg: strconv.FormatInt(period.Milliseconds(), 10),
		calls:     sync.Pool{New: func() any { return &redisCall{done: make(chan struct{}, 1)} }},
	}
}

// redisCall is one script run. Calls are pooled: the command's arguments
// live in args, and done (buffered) is sent to once the answer is in.
type redisCall struct {
	s    *script
	args [6]any
	cmd  *redis.Cmd
	done chan struct{}
}

// The script argument of a single hit.
var oneHit any = "1"

// count adds n hits to key's counter and answers the count and the
// window's remaining milliseconds; peek reads them. ctx carries values
// (not cancellation: a count must not depend on the client staying).
func (r *redisCounter) count(ctx context.Context, key string, n int64) (count, pttl int64, err error) {
	return r.run(ctx, r.countCall(key, n))
}

func (r *redisCounter) peek(ctx context.Context, key string) (count, pttl int64, err error) {
	return r.run(ctx, r.newCall(&peekScript, key))
}

// countCall is the call of count, to run, or to send with others
// (roundTrip; then release it).
func (r *redisCounter) countCall(key string, n int64) *redisCall {
	arg := oneHit
	if n != 1 {
		arg = strconv.FormatInt(n, 10)
	}
	return r.newCall(&incrScript, key, arg, r.periodArg)
}

func (r *redisCounter) newCall(s *script, key string, args ...any) *redisCall {
	c := r.calls.Get().(*redisCall)
	c.s = s
	n := copy(c.args[:], []any{"evalsha", s.shaArg, 1, r.prefix + key})
	n += copy(c.args[n:], args)
	c.cmd = redis.NewCmd(context.Background(), c.args[:n]...)
	c.cmd.SetFirstKeyPos(3)
	return c
}

func (r *redisCounter) release(c *redisCall) {
	c.s, c.cmd, c.args = nil, nil, [6]any{}
	r.calls.Put(c)
}

// run sends c with the next round trip and waits for its answer, at most
// about the limiter's timeout.
func (r *redisCounter) run(ctx context.Context, c *redisCall) (count, pttl int64, err error) {
	r.mu.Lock()
	r.queue = append(r.queue, c)
	lead := !r.busy
	r.busy = true
	r.mu.Unlock()
	switch {
	case lead && r.deadlines:
		// Nothing in flight: send at once, on this goroutine (bounded by
		// the client's deadlines), and leave what queued meanwhile to a
		// goroutine that sends it.
		r.roundTrip(ctx, r.take())
		if r.more() {
			go r.drain()
		}
	case lead:
		go r.drain()
	}
	if r.deadlines {
		// Every round trip ends within the timeout: the one in flight,
		// then the one that carries c.
		<-c.done
	} else {
		// go-redis would not give up: this caller does. The call stays
		// queued or in flight (and is not reused); its hit may count.
		t := time.NewTimer(r.timeout)
		select {
		case <-c.done:
			t.Stop()
		case <-t.C:
			return 0, 0, context.DeadlineExceeded
		}
	}
	count, pttl, err = countAndTTL(c.cmd)
	r.release(c)
	return count, pttl, err
}

// take empties the queue and returns what it held.
func (r *redisCounter) take() []*redisCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queue
	r.queue = nil
	return q
}

// more reports whether calls are queued; when none are, the counter is no
// longer busy and the next call leads.
func (r *redisCounter) more() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.busy = len(r.queue) > 0
	return r.busy
}

// drain sends the queued calls, a round trip at a time, until none are left.
func (r *redisCounter) drain() {
	for {
		r.roundTrip(context.Background(), r.take())
		if !r.more() {
			return
		}
	}
}

// roundTrip sends calls in one round trip (on a cluster, one per node
// concerned, at once), bounded by the timeout, and answers each.
func (r *redisCounter) roundTrip(ctx context.Context, calls []*redisCall) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	r.send(ctx, calls)
	var again []*redisCall
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			again = append(again, &redisCall{cmd: evalAgain(ctx, c)})
		}
	}
	if len(again) > 0 {
		r.send(ctx, again)
		i := 0
		for _, c := range calls {
			if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
				c.cmd.SetVal(again[i].cmd.Val())
				c.cmd.SetErr(again[i].cmd.Err())
				i++
			}
		}
	}
	for _, c := range calls {
		c.done <- struct{}{}
	}
}

// send runs the commands of calls, pipelined when there are several.
// Each command keeps its own error.
func (r *redisCounter) send(ctx context.Context, calls []*redisCall) {
	if len(calls) == 1 {
		_ = r.client.Process(ctx, calls[0].cmd)
		return
	}
	pipe := r.client.Pipeline()
	for _, c := range calls {
		_ = pipe.Process(ctx, c.cmd)
	}
	_, _ = pipe.Exec(ctx)
}

// evalAgain is c's EVALSHA as EVAL, with the script's source.
func evalAgain(ctx context.Context, c *redisCall) *redis.Cmd {
	args := append([]any{"eval", c.s.src}, c.cmd.Args()[2:]...)
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(3)
	return cmd
}

func countAndTTL(cmd *redis.Cmd) (count, pttl int64, err error) {
	v, err := cmd.Result()
	if err != nil {
		return 0, 0, err
	}
	f, ok := v.([]any)
	if !ok || len(f) != 2 {
		return 0, 0, errors.New("unexpected reply from the counting script")
	}
	count, ok1 := f[0].(int64)
	pttl, ok2 := f[1].(int64)
	if !ok1 || !ok2 {
		return 0, 0, errors.New("unexpected reply from the counting script")
	}
	return count, pttl, nil
}

// honoursDeadlines reports whether client bounds its calls by context
// deadlines: pool waits, dials, reads and writes, and retry back-offs.
// Unknown client types are assumed not to.
func honoursDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}
