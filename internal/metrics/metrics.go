// Package metrics exposes the gateway's Prometheus metrics on its own registry
// (never the global one), with label sets bounded by the config (route names,
// status codes, fixed reason codes), so /metrics stays cheap to scrape.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/upstream"
)

// Metrics is the set of gateway metrics.
type Metrics struct {
	Registry *prometheus.Registry

	requests     *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	authSuccess  *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	upstream     *prometheus.HistogramVec
	cache        *prometheus.CounterVec
	redisErrors  *prometheus.CounterVec
	sessions     *prometheus.CounterVec
	rlSyncs      *prometheus.CounterVec
	reloads      *prometheus.CounterVec
	configInfo   *prometheus.GaugeVec
	lastReloadOK prometheus.Gauge
	lastReloadTS prometheus.Gauge
	restart      prometheus.Gauge
	restartKeys  *prometheus.GaugeVec
	spansDropped prometheus.Counter
	targetUp     *prometheus.GaugeVec
	targetReqs   *prometheus.CounterVec
	targetErrs   *prometheus.CounterVec

	// children caches the per-label counters of the request path, so a
	// request costs a map read instead of label hashing.
	children   sync.Map // reqKey -> prometheus.Counter
	upChild    sync.Map // route -> prometheus.Observer
	cacheChild sync.Map // cacheKey -> prometheus.Counter
	okChild    sync.Map // [2]string{route, strategy} -> prometheus.Counter
	failChild  sync.Map // [2]string{route, reason} -> prometheus.Counter
	limitChild sync.Map // reason -> prometheus.Counter
	mu         sync.Mutex
	lastHash   string
	targets    map[[2]string]bool // upstream targets with an up gauge
}

type reqKey struct {
	route   string
	outcome proxy.Outcome
	status  int
}

// New registers every metric on a fresh registry.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_requests_total", Help: "Requests by route, status and outcome.",
	}, []string{"route", "status", "outcome"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_auth_failures_total", Help: "Denied authentications by route and reason.",
	}, []string{"route", "reason"})
	m.authSuccess = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_auth_success_total", Help: "Authenticated requests by route and the strategy that authenticated them.",
	}, []string{"route", "strategy"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_rate_limited_total", Help: "Requests answered 429, by limit.",
	}, []string{"limit"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authgateway_upstream_duration_seconds", Help: "Time to the upstream's response headers.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route"})
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_cache_requests_total", Help: "Cache lookups (introspection, jwks, api keys, tokens) by result.",
	}, []string{"cache", "result"})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_session_events_total",
		Help: "Browser session events: refresh, grace (a rotated token given its successor again), reuse, absolute_expiry, provider_refused, provider_logout, backchannel_logout.",
	}, []string{"event"})
	m.redisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_redis_errors_total", Help: "Redis errors and timeouts by component.",
	}, []string{"component"})
	m.rlSyncs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_ratelimit_syncs_total", Help: "Syncs of approximate rate limits to Redis, by limit and result (ok or error).",
	}, []string{"limit", "result"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_config_reloads_total", Help: "Config reloads by result.",
	}, []string{"result"})
	m.configInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authgateway_config_info", Help: "The loaded config (value 1), labelled with its SHA-256.",
	}, []string{"hash"})
	m.lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authgateway_config_last_reload_successful", Help: "1 if the last reload attempt succeeded.",
	})
	m.lastReloadTS = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authgateway_config_last_reload_timestamp_seconds", Help: "Time of the last reload attempt.",
	})
	m.restart = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authgateway_config_restart_required", Help: "1 if the loaded config changed settings that only a restart applies.",
	})
	m.restartKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authgateway_config_restart_pending", Help: "The config keys (value 1) whose new values wait for a restart.",
	}, []string{"key"})
	m.targetUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authgateway_upstream_target_up", Help: "1 if the upstream target takes requests, 0 if ejected or failing its health check.",
	}, []string{"route", "target"})
	m.targetReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_upstream_target_requests_total", Help: "Requests sent to an upstream target (a retry counts on each target).",
	}, []string{"route", "target"})
	m.targetErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgateway_upstream_target_errors_total", Help: "Requests to an upstream target that failed without an answer (refused, reset, timed out).",
	}, []string{"route", "target"})
	m.spansDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "authgateway_trace_spans_dropped_total", Help: "Trace spans dropped because the export queue was full.",
	})
	m.Registry.MustRegister(m.targetUp, m.targetReqs, m.targetErrs)
	m.Registry.MustRegister(m.requests, m.authFailures, m.authSuccess, m.rateLimited, m.upstream, m.cache, m.sessions,
		m.redisErrors, m.rlSyncs, m.reloads, m.configInfo, m.lastReloadOK, m.lastReloadTS, m.restart, m.restartKeys, m.spansDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 5 * time.Second})
}

// Observe counts one request event (proxy.Options.Observer).
func (m *Metrics) Observe(ev *proxy.Event) {
	route := ev.Route
	if route == "" {
		route = "none"
	}
	k := reqKey{route: route, outcome: ev.Outcome, status: ev.Status}
	c, ok := m.children.Load(k)
	if !ok {
		c, _ = m.children.LoadOrStore(k, m.requests.WithLabelValues(route, strconv.Itoa(ev.Status), ev.Outcome.String()))
	}
	c.(prometheus.Counter).Inc()
	switch ev.Outcome.Class() {
	case proxy.ClassSuccess:
		if ev.Strategy != "" {
			k := [2]string{route, ev.Strategy}
			c, ok := m.okChild.Load(k)
			if !ok {
				c, _ = m.okChild.LoadOrStore(k, m.authSuccess.WithLabelValues(route, ev.Strategy))
			}
			c.(prometheus.Counter).Inc()
		}
	case proxy.ClassAuthFailure:
		// Refusals come in floods: their children are cached like the rest
		// (WithLabelValues hashes its labels on every call).
		k := [2]string{route, ev.Reason}
		c, ok := m.failChild.Load(k)
		if !ok {
			c, _ = m.failChild.LoadOrStore(k, m.authFailures.WithLabelValues(route, ev.Reason))
		}
		c.(prometheus.Counter).Inc()
	case proxy.ClassRateLimited:
		c, ok := m.limitChild.Load(ev.Reason)
		if !ok {
			c, _ = m.limitChild.LoadOrStore(ev.Reason, m.rateLimited.WithLabelValues(ev.Reason))
		}
		c.(prometheus.Counter).Inc()
	}
	if ev.UpstreamDuration > 0 {
		o, ok := m.upChild.Load(route)
		if !ok {
			o, _ = m.upChild.LoadOrStore(route, m.upstream.WithLabelValues(route))
		}
		o.(prometheus.Observer).Observe(ev.UpstreamDuration.Seconds())
	}
}

// SpanDropped counts a trace span the export queue had no room for.
func (m *Metrics) SpanDropped() { m.spansDropped.Inc() }

// SessionEvent counts one browser session event (login.Options.Count).
func (m *Metrics) SessionEvent(event string) { m.sessions.WithLabelValues(event).Inc() }

// CacheResult counts a cache lookup; hit is false for a miss.
func (m *Metrics) CacheResult(cache string, hit bool) {
	k := cacheKey{cache, hit}
	c, ok := m.cacheChild.Load(k)
	if !ok {
		result := "miss"
		if hit {
			result = "hit"
		}
		c, _ = m.cacheChild.LoadOrStore(k, m.cache.WithLabelValues(cache, result))
	}
	c.(prometheus.Counter).Inc()
}

type cacheKey struct {
	cache string
	hit   bool
}

// RedisError counts a Redis failure in a component (redisconn.ErrorCounter:
// the Redis client tells of every failed command).
func (m *Metrics) RedisError(component string) { m.redisErrors.WithLabelValues(component).Inc() }

// RateLimitSync counts a sync of the approximate limit named limit: one
// pipelined round trip to Redis, failed when err is set.
func (m *Metrics) RateLimitSync(limit string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.rlSyncs.WithLabelValues(limit, result).Inc()
}

// ConfigLoaded records a load or reload attempt: hash is the loaded config's
// on success.
func (m *Metrics) ConfigLoaded(hash string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastReloadTS.SetToCurrentTime()
	if err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		m.lastReloadOK.Set(0)
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.lastReloadOK.Set(1)
	if m.lastHash != "" {
		m.configInfo.DeleteLabelValues(m.lastHash)
	}
	m.configInfo.WithLabelValues(hash).Set(1)
	m.lastHash = hash
}

// RestartRequired records the config keys that wait for a restart (none:
// the running process applies the whole loaded config).
func (m *Metrics) RestartRequired(keys []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.restartKeys.Reset()
	for _, k := range keys {
		m.restartKeys.WithLabelValues(k).Set(1)
	}
	if len(keys) > 0 {
		m.restart.Set(1)
	} else {
		m.restart.Set(0)
	}
}

// Target returns one upstream target's metrics (upstream.Observer).
func (m *Metrics) Target(route, target string) upstream.TargetMetrics {
	m.mu.Lock()
	if m.targets == nil {
		m.targets = map[[2]string]bool{}
	}
	m.targets[[2]string{route, target}] = true
	m.mu.Unlock()
	return targetMetrics{
		requests: m.targetReqs.WithLabelValues(route, target),
		errors:   m.targetErrs.WithLabelValues(route, target),
		up:       m.targetUp.WithLabelValues(route, target),
	}
}

// KeepTargets drops the up gauge of every target not in current (the
// targets of the config now served): a target a reload removed is no
// longer up or down, it is gone.
func (m *Metrics) KeepTargets(current []upstream.Health) {
	keep := map[[2]string]bool{}
	for _, h := range current {
		keep[[2]string{h.Route, h.Target}] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.targets {
		if !keep[k] {
			m.targetUp.DeleteLabelValues(k[0], k[1])
			delete(m.targets, k)
		}
	}
}

type targetMetrics struct {
	requests, errors prometheus.Counter
	up               prometheus.Gauge
}

func (t targetMetrics) Request() { t.requests.Inc() }
func (t targetMetrics) Error()   { t.errors.Inc() }
func (t targetMetrics) Up(up bool) {
	if up {
		t.up.Set(1)
	} else {
		t.up.Set(0)
	}
}

var (
	_ redisconn.ErrorCounter = (*Metrics)(nil)
	_ upstream.Observer      = (*Metrics)(nil)
)
