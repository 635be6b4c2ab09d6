// Package ratelimit counts requests per key in fixed windows, shared through
// Redis between replicas or held in memory for a single instance, and
// resolves the client IP that most keys are made of.
//
// It is built on github.com/ulule/limiter/v3's stores but not on its HTTP
// middleware: that middleware trusts X-Forwarded-For when told to and its
// default error handler panics, and neither belongs in an auth gateway.
// Store errors are instead returned in Result and resolved by the limiter's
// Policy, so the caller can count them and answer an outage as one; an
// OutageLog shared by the limiters logs each outage once.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
)

// Policy says what a limiter answers when its store fails or times out.
type Policy int

const (
	// DenyOnError treats the key as over its limit. It is the zero value
	// so that a forgotten setting fails closed.
	DenyOnError Policy = iota
	// AllowOnError lets the request through uncounted.
	AllowOnError
)

// ParsePolicy reads the config spelling of a policy: "allow" or "deny".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "allow":
		return AllowOnError, nil
	case "deny":
		return DenyOnError, nil
	}
	return 0, fmt.Errorf("unknown store error policy %q (want allow or deny)", s)
}

func (p Policy) String() string {
	switch p {
	case AllowOnError:
		return "allow"
	case DenyOnError:
		return "deny"
	}
	return "Policy(" + strconv.Itoa(int(p)) + ")"
}

// DefaultTimeout bounds each store call when Options.Timeout is zero.
const DefaultTimeout = 100 * time.Millisecond

// maxDenyRetry caps the Reset of a result denied because the store failed:
// the store may be back in a moment, and a client told to wait a whole
// period (perhaps an hour) for a Redis blip would wait for nothing.
const maxDenyRetry = 5 * time.Second

// Options configures a Limiter.
type Options struct {
	// Name identifies the counter family in store keys, e.g. "auth_failures"
	// or "route:data". Limiters with the same Name on the same Redis share
	// their counters (that is how replicas agree). Required.
	Name string
	// Limit is the number of hits allowed per key per window. Must be >= 1.
	Limit int64
	// Period is the window length. A window starts at a key's first hit
	// and is not extended by later hits. Must be >= 1ms.
	Period time.Duration
	// OnStoreError decides the answer when the store fails or times out.
	// The zero value is DenyOnError.
	OnStoreError Policy
	// Timeout bounds each store call, so that a slow Redis cannot stall
	// requests. Zero means DefaultTimeout. Memory stores ignore it.
	Timeout time.Duration
	// Outages reports store failures as incidents (shared by every limiter
	// on the store); nil: not reported here, only in Result.StoreError.
	Outages *OutageLog
	// Approximate counts locally and adds the counts to Redis every
	// SyncInterval (see approx.go) instead of one Redis call per hit. Only
	// for Redis limiters; the default (false) is exact. Close the limiter
	// to stop its flusher.
	Approximate bool
	// SyncInterval is how often an approximate limiter syncs; it must be
	// positive and shorter than Period.
	SyncInterval time.Duration
	// OnSync, if set, is told the outcome of each sync of an approximate
	// limiter (nil error: it worked), for metrics.
	OnSync func(err error)
}

// Result is the outcome of one limiter call.
type Result struct {
	// Limit is the configured limit.
	Limit int64
	// Remaining is how many more hits the window allows (never negative;
	// zero when unknown because of a store error).
	Remaining int64
	// Reset is when the window ends, rounded up to the second (the store
	// reports whole seconds; rounding up never tells a client to come
	// back too early). Zero when unknown (store error under AllowOnError).
	Reset time.Time
	// Reached says the key is over its limit; see Take, Peek and Add for
	// what exactly that means for each.
	Reached bool
	// StoreError is the store failure that OnStoreError resolved, or nil.
	// The caller logs and counts it; the other fields then come from the
	// policy, not from a counter.
	StoreError error
}

// SetHeaders writes RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
// (seconds until the window ends; IETF draft-ietf-httpapi-ratelimit-headers
// names). It writes nothing when the result comes from a store error, since
// there is then no counter to report.
func (r Result) SetHeaders(h http.Header, now time.Time) {
	if r.StoreError != nil {
		return
	}
	h.Set("RateLimit-Limit", strconv.FormatInt(r.Limit, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(r.Remaining, 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(max(ceilSeconds(r.Reset.Sub(now)), 0), 10))
}

// RetryAfter is the Retry-After value, in seconds, for a 429 built from r:
// the time until Reset rounded up, and at least 1.
func (r Result) RetryAfter(now time.Time) int {
	return int(min(max(ceilSeconds(r.Reset.Sub(now)), 1), math.MaxInt32))
}

func ceilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}

// Limiter counts hits per key in fixed windows. It is safe for concurrent
// use. Take, Peek and Add never fail: a store error is resolved by the
// Options.OnStoreError policy and reported in Result.StoreError.
type Limiter struct {
	name    string
	rate    limiter.Rate
	policy  Policy
	timeout time.Duration
	outages *OutageLog
	// Exactly one of mem and redis is set; approx only with redis.
	mem    limiter.Store
	redis  *redisCounter
	approx *approx
}

// NewMemory returns a limiter whose counters live in this process only.
func NewMemory(opts Options) (*Limiter, error) {
	l, err := newLimiter(opts)
	if err != nil {
		return nil, err
	}
	l.mem = memory.NewStoreWithOptions(limiter.StoreOptions{
		Prefix:          keyPrefix(opts.Name),
		CleanUpInterval: limiter.DefaultCleanUpInterval,
	})
	return l, nil
}

func newLimiter(opts Options) (*Limiter, error) {
	var errs []error
	if opts.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if opts.Limit < 1 {
		errs = append(errs, fmt.Errorf("limit %d is less than 1", opts.Limit))
	}
	if opts.Period < time.Millisecond {
		// The Redis store expires keys in whole milliseconds; a shorter
		// period would become "never expire".
		errs = append(errs, fmt.Errorf("period %v is shorter than 1ms", opts.Period))
	}
	if opts.OnStoreError != AllowOnError && opts.OnStoreError != DenyOnError {
		errs = append(errs, fmt.Errorf("unknown store error policy %v", opts.OnStoreError))
	}
	if opts.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", opts.Timeout))
	}
	if opts.Approximate && (opts.SyncInterval <= 0 || opts.SyncInterval >= opts.Period) {
		errs = append(errs, fmt.Errorf("sync interval %v is not within (0, period %v)", opts.SyncInterval, opts.Period))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("rate limiter %q: %w", opts.Name, err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &Limiter{
		name:    opts.Name,
		rate:    limiter.Rate{Limit: opts.Limit, Period: opts.Period},
		policy:  opts.OnStoreError,
		timeout: timeout,
		outages: opts.Outages,
	}, nil
}

// Close stops what the limiter runs in the background (an approximate
// limiter's flusher, after a last sync of its counts). It is safe to call
// more than once; the limiter must not be used after.
func (l *Limiter) Close() {
	if l.approx != nil {
		l.approx.close()
	}
}

func keyPrefix(name string) string { return "authgateway:ratelimit:" + name }

// Take counts one hit for key and reports whether it is over the limit:
// with Limit n, the first n hits of a window pass and every later one is
// Reached. It is the check for per-route quotas.
func (l *Limiter) Take(ctx context.Context, key string) Result { return l.hit(ctx, key, hitTake) }

// Peek reports, without counting, whether key's budget is spent: Reached
// once the window holds Limit hits, i.e. when a Take now would be refused.
//
// For auth failures this gives "Limit failures trip the limit": after the
// 10th failure (Limit 10) Peek is Reached, so the 11th request is refused
// before any strategy runs, even with a valid credential. (ulule reports
// Reached only when count > Limit, which would let an 11th attempt
// through; Peek therefore tests count >= Limit, seen as Remaining == 0.)
func (l *Limiter) Peek(ctx context.Context, key string) Result { return l.hit(ctx, key, hitPeek) }

// Add counts one failure for key. Reached reports that, with this failure,
// the budget is spent (count >= Limit), the same condition Peek checks; the
// caller may use it to put Retry-After on the response it is sending.
func (l *Limiter) Add(ctx context.Context, key string) Result { return l.hit(ctx, key, hitAdd) }

// hitKind is what a call does to a key: count one if admitted (Take),
// nothing (Peek), or count one in any case (Add).
type hitKind int

const (
	hitTake hitKind = iota
	hitPeek
	hitAdd
)

// hit is Take, Peek or Add: they differ only in whether the store counts
// (not for a peek) and in what Reached means (a Take is over when the
// count passed Limit; a peek or a failure when it reached it).
func (l *Limiter) hit(ctx context.Context, key string, kind hitKind) Result {
	if l.approx != nil {
		return l.approx.hit(ctx, key, kind)
	}
	c, err := l.call(ctx, key, kind == hitPeek)
	if err != nil {
		return l.onError(err)
	}
	reached := c.Remaining == 0
	if kind == hitTake {
		reached = c.Reached
	}
	return l.result(c, reached)
}

func (l *Limiter) result(c limiter.Context, reached bool) Result {
	return Result{
		Limit:     c.Limit,
		Remaining: c.Remaining,
		// ulule truncates the expiry to whole seconds; +1 rounds it up.
		Reset:   time.Unix(c.Reset+1, 0),
		Reached: reached,
	}
}

func (l *Limiter) onError(err error) Result {
	r := Result{Limit: l.rate.Limit, StoreError: err}
	if l.policy == AllowOnError {
		return r
	}
	r.Reached = true
	r.Reset = time.Now().Add(min(l.rate.Period, maxDenyRetry))
	return r
}

// call runs one store operation: an increment by one, or a peek.
//
// Counting must not depend on the client staying connected: an attacker
// could otherwise half-close its connection (cancelling the request
// context) so that its failures are never recorded, and still read the 401.
// So the store call ignores ctx's cancellation and is bounded by the
// limiter's own timeout instead.
func (l *Limiter) call(ctx context.Context, key string, peek bool) (limiter.Context, error) {
	if l.mem != nil {
		// No I/O: cannot block and never fails.
		if peek {
			return l.mem.Peek(ctx, key, l.rate)
		}
		return l.mem.Increment(ctx, key, 1, l.rate)
	}
	count, pttl, err := l.redisCall(ctx, key, peek)
	if err != nil {
		return limiter.Context{}, err
	}
	return l.state(time.Now(), count, pttl), nil
}

// redisCall counts one hit of key in Redis, or peeks, and answers the
// count and the window's remaining milliseconds. Errors are wrapped and
// reported (storeError).
func (l *Limiter) redisCall(ctx context.Context, key string, peek bool) (count, pttl int64, err error) {
	if peek {
		count, pttl, err = l.redis.peek(ctx, key)
	} else {
		count, pttl, err = l.redis.count(ctx, key, 1)
	}
	if err != nil {
		return 0, 0, l.storeError(err)
	}
	l.outages.succeeded()
	return count, pttl, nil
}

// storeError wraps a failed store call and reports it to the outage log.
func (l *Limiter) storeError(err error) error {
	what := "rate limit store"
	if errors.Is(err, context.DeadlineExceeded) {
		// A down Redis shows as a timeout more often than as a refused
		// connection (the client retries within the bound): say so.
		what += fmt.Sprintf(": no answer from Redis within %v", l.timeout)
	}
	err = fmt.Errorf("%s: %w", what, err)
	l.outages.failed(l.name, l.policy, err)
	return err
}

// state is the limiter.Context of a counter at count whose window ends in
// pttl milliseconds (unknown when <= 0: a whole period), as ulule's stores
// compute it.
func (l *Limiter) state(now time.Time, count, pttl int64) limiter.Context {
	exp := now.Add(l.rate.Period)
	if pttl > 0 {
		exp = now.Add(time.Duration(pttl) * time.Millisecond)
	}
	c := limiter.Context{Limit: l.rate.Limit, Reset: exp.Unix(), Reached: true}
	if count <= l.rate.Limit {
		c.Remaining, c.Reached = l.rate.Limit-count, false
	}
	return c
}
