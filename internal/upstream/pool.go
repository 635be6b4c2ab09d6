// Package upstream spreads a route's requests over the instances of its
// app: round robin over the healthy targets, a target that refuses
// connections ejected at once (passive) and probed until healthy again
// (active health checks), and one retry on another target for a request
// that provably never reached the first.
package upstream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCooldown is how long a target that refused a connection stays out
// of a pool without health checks before one request tries it again.
const DefaultCooldown = 10 * time.Second

// Check is an active health check (config.HealthCheck, defaults applied).
type Check struct {
	Path           string
	Interval       time.Duration
	Timeout        time.Duration
	UnhealthyAfter int
	HealthyAfter   int
}

// Observer receives each target's metrics; TargetMetrics is resolved once
// per target, so the request path costs no label lookup.
type Observer interface {
	Target(route, target string) TargetMetrics
}

// TargetMetrics counts one target's traffic and state.
type TargetMetrics interface {
	Request()
	Error()
	Up(bool)
}

// Options builds a Pool.
type Options struct {
	// Route names the pool in logs and metrics.
	Route string
	// Targets are the upstream URLs (scheme http or https; an h2c target
	// is given as http with a Transport that speaks HTTP/2 to it).
	Targets []*url.URL
	// Names are the targets as configured (for metrics, /readyz and
	// explain); default the URLs.
	Names []string
	// Transport sends requests and probes. Required.
	Transport http.RoundTripper
	// Check, when set, probes every target (Start); nil: passive ejection
	// only, with Cooldown.
	Check *Check
	// Cooldown applies without Check. Default DefaultCooldown.
	Cooldown time.Duration
	// Observer may be nil.
	Observer Observer
	Logger   *slog.Logger
}

// Target is one instance of the app.
type Target struct {
	// URL is where requests go: its scheme and host replace the
	// forwarded request's.
	URL *url.URL
	// Name is the target as configured.
	Name string

	up atomic.Bool
	// retryAt (unix nanoseconds) is when an ejected target of a pool
	// without health checks may be tried again.
	retryAt atomic.Int64
	// ejections counts passive ejections, so the health checker starts
	// counting successes again after one.
	ejections atomic.Uint64
	probed    atomic.Bool
	metrics   TargetMetrics
}

// Up reports whether the target takes requests.
func (t *Target) Up() bool { return t.up.Load() }

// Pool is one route's targets. It is safe for concurrent use; Start and
// Close bracket its health checker.
type Pool struct {
	route     string
	targets   []*Target
	next      atomic.Uint64
	transport http.RoundTripper
	check     *Check
	cooldown  time.Duration
	logger    *slog.Logger

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New builds a pool whose targets are all up; nothing runs until Start.
func New(o Options) *Pool {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Cooldown <= 0 {
		o.Cooldown = DefaultCooldown
	}
	p := &Pool{route: o.Route, transport: o.Transport, check: o.Check, cooldown: o.Cooldown,
		logger: o.Logger.With("component", "upstream", "route", o.Route)}
	for i, u := range o.Targets {
		t := &Target{URL: u, Name: u.String()}
		if i < len(o.Names) {
			t.Name = o.Names[i]
		}
		t.metrics = noMetrics{}
		if o.Observer != nil {
			t.metrics = o.Observer.Target(o.Route, t.Name)
		}
		t.up.Store(true)
		t.metrics.Up(true)
		p.targets = append(p.targets, t)
	}
	return p
}

// Targets lists the pool's targets in config order.
func (p *Pool) Targets() []*Target { return p.targets }

// Pick returns the next target in round robin that takes requests, or nil
// when none does. It does not allocate.
func (p *Pool) Pick() *Target {
	return p.pick(p.next.Add(1)-1, nil)
}

// Peek returns the target Pick would return now, without advancing the
// round robin (explain).
func (p *Pool) Peek() *Target {
	return p.pick(p.next.Load(), nil)
}

// pick scans from start for a target that takes requests, other than skip.
func (p *Pool) pick(start uint64, skip *Target) *Target {
	n := uint64(len(p.targets))
	var now int64
	for i := range n {
		t := p.targets[(start+i)%n]
		if t == skip {
			continue
		}
		if t.up.Load() {
			return t
		}
		if p.check == nil {
			// Without health checks an ejected target gets one request
			// after its cooldown: its answer decides (RoundTrip).
			if now == 0 {
				now = time.Now().UnixNano()
			}
			if at := t.retryAt.Load(); now >= at && t.retryAt.CompareAndSwap(at, now+int64(p.cooldown)) {
				return t
			}
		}
	}
	return nil
}

// RoundTrip sends req, whose URL the caller pointed at t, to t. When the
// connection to t fails (nothing was sent: the dial failed), t is ejected,
// and a request that may be repeated (Retryable) is sent once more to
// another target. It returns the target that answered or failed last.
func (p *Pool) RoundTrip(req *http.Request, t *Target) (*http.Response, *Target, error) {
	resp, err := p.send(req, t)
	if err == nil || !DialFailed(err) {
		return resp, t, err
	}
	p.eject(t, err)
	if !Retryable(req) {
		return nil, t, err
	}
	alt := p.pick(p.next.Add(1)-1, t)
	if alt == nil {
		return nil, t, err
	}
	r2 := req.WithContext(req.Context()) // a shallow copy: the URL is replaced, not changed
	u := *req.URL
	u.Scheme, u.Host = alt.URL.Scheme, alt.URL.Host
	r2.URL = &u
	resp, err = p.send(r2, alt)
	if err != nil && DialFailed(err) {
		p.eject(alt, err)
	}
	return resp, alt, err
}

func (p *Pool) send(req *http.Request, t *Target) (*http.Response, error) {
	t.metrics.Request()
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		t.metrics.Error()
		return nil, err
	}
	if p.check == nil && !t.up.Load() {
		p.setUp(t, true, "answered after its cooldown")
	}
	return resp, nil
}

// eject takes t out at once after a failed connection.
func (p *Pool) eject(t *Target, err error) {
	t.ejections.Add(1)
	t.retryAt.Store(time.Now().Add(p.cooldown).UnixNano())
	if t.up.Load() {
		p.setUp(t, false, "connection failed: "+err.Error())
	}
}

func (p *Pool) setUp(t *Target, up bool, why string) {
	if t.up.Swap(up) == up {
		return
	}
	t.metrics.Up(up)
	if up {
		p.logger.Info("upstream target up", "target", t.Name, "why", why)
	} else {
		p.logger.Warn("upstream target down", "target", t.Name, "why", why)
	}
}

// DialFailed reports whether err is a failure to connect: no byte of the
// request was written, so the app cannot have seen it.
func DialFailed(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// Retryable reports whether req may be sent again after a failed
// connection: an idempotent method (RFC 9110 9.2.2) and no body, which was
// read once and is gone. A POST or PATCH is never sent twice.
func Retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
	default:
		return false
	}
	return req.Body == nil || req.Body == http.NoBody
}

// Health is one target's state, for /readyz and explain.
type Health struct {
	Route  string `json:"route"`
	Target string `json:"target"`
	Up     bool   `json:"up"`
	// Probed is false until a health check has answered (or always,
	// without health checks, or in a dry run).
	Probed bool `json:"probed"`
}

// Health lists the pool's targets' states in config order.
func (p *Pool) Health() []Health {
	out := make([]Health, len(p.targets))
	for i, t := range p.targets {
		out[i] = Health{Route: p.route, Target: t.Name, Up: t.up.Load(), Probed: t.probed.Load()}
	}
	return out
}

// Start begins the health checks, if any; ctx ends them as Close does.
func (p *Pool) Start(ctx context.Context) {
	if p.check == nil || p.stop != nil {
		return
	}
	ctx, p.stop = context.WithCancel(context.WithoutCancel(ctx))
	for _, t := range p.targets {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.probeLoop(ctx, t)
		}()
	}
}

// Close stops the health checks and waits for them to end.
func (p *Pool) Close() {
	if p.stop != nil {
		p.stop()
		p.wg.Wait()
	}
}

type noMetrics struct{}

func (noMetrics) Request() {}
func (noMetrics) Error()   {}
func (noMetrics) Up(bool)  {}
