// Package proxy is the gateway's request pipeline: one decision (decide.go:
// normalise the path, match the route, CORS, method, the auth-failure limit,
// the route's strategies, roles and scopes, quota, body limit) taken for
// every door — the main listener (ServeHTTP, which answers or forwards with
// httputil.ReverseProxy), forward auth (/auth/verify) and explain.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/authgateway/authgateway/internal/h1"
	"github.com/authgateway/authgateway/internal/policy"
	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/tracing"
	"github.com/authgateway/authgateway/internal/upstream"
)

// Options configures a Gateway. Zero values are safe: no failure limit, no
// endpoints, a discarding logger, a default tuned transport.
type Options struct {
	Logger *slog.Logger
	// IPResolver decides the client IP (trusted proxies); nil trusts none.
	IPResolver *ratelimit.IPResolver
	// AuthFailures limits failed authentications per client IP; nil: none.
	AuthFailures FailureLimiter
	// Transport forwards to upstreams; nil: h1.New(NewTransport(TransportOptions{})).
	Transport http.RoundTripper
	// Endpoints are the gateway's own handlers by exact canonical path
	// (/auth/login, /.well-known/jwks.json, ...). Paths under /auth/ are
	// subject to the auth-failure limit.
	Endpoints map[string]http.Handler
	// AuthEvents logs one event per request.
	AuthEvents bool
	// EventLog, when set, receives the auth events as JSON lines directly
	// (the fast path); otherwise they go through Logger.
	EventLog io.Writer
	// Observer receives one Event per request (metrics); may be nil.
	Observer func(*Event)
	// Asserter signs X-Auth-Token for routes with IdentityToken; may be nil.
	Asserter Asserter
	// Tracing records a server span per request; nil: off, at no cost.
	// Transport should then be wrapped by Tracing.Transport, which carries
	// the trace to the upstream.
	Tracing *tracing.Tracing
	// Sessions renews browser sessions inside requests (transparent
	// refresh); nil: none.
	Sessions SessionRenewer
}

// SessionRenewer rotates a browser session inside the request that needs
// it (login.Handler).
type SessionRenewer interface {
	// AccessCookie is the session's access cookie: requests to routes whose
	// strategies read it are renewed.
	AccessCookie() string
	// Renew rotates r's session when its access cookie is missing, expired
	// or about to expire and it holds a refresh cookie: r's Cookie header
	// then carries the new access token and h the new cookies. It reports
	// whether it rotated; a session it cannot renew is left as it came.
	// due says the route's strategy verified the access cookie and it is
	// not Fresh: the renewer need not verify it again.
	Renew(r *http.Request, h http.Header, due bool) bool
	// Fresh reports whether an access token the route's strategy verified,
	// expiring at exp, is not yet due for renewal: then Renew need not
	// look at the request at all.
	Fresh(exp time.Time) bool
}

// FailureLimiter counts failed authentications per client key
// (ratelimit.Limiter, or ratelimit.FailureWatch with Redis).
type FailureLimiter interface {
	Peek(ctx context.Context, key string) ratelimit.Result
	Add(ctx context.Context, key string) ratelimit.Result
}

// Asserter mints signed identity assertions for upstreams.
type Asserter interface {
	Assert(id *strategies.Identity, route string) (string, error)
}

// Gateway is the request pipeline over one route table; it does not change
// while it serves (a config reload builds a new Gateway).
type Gateway struct {
	opts   Options
	table  *Table
	proxy  *httputil.ReverseProxy
	ids    requestIDs
	events *eventEncoder // nil: events go through opts.Logger
	// crossOrigin judges cookie-authenticated requests (no trusted
	// origins: a route's CORS origins are checked beside it).
	crossOrigin *http.CrossOriginProtection
	// serverSpan starts a request's span (made once: an option per
	// request is an allocation per request, sampled or not).
	serverSpan []trace.SpanStartOption
}

// New returns a gateway serving table.
func New(table *Table, opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IPResolver == nil {
		opts.IPResolver = ratelimit.NewIPResolver(nil)
	}
	if opts.Transport == nil {
		opts.Transport = h1.New(NewTransport(TransportOptions{}))
	}
	g := &Gateway{opts: opts, table: table, ids: newRequestIDs(), crossOrigin: http.NewCrossOriginProtection()}
	if opts.EventLog != nil {
		g.events = newEventEncoder(opts.EventLog)
	}
	if opts.Tracing != nil {
		g.serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      routeTransport{shared: opts.Transport},
		BufferPool:     newBufferPool(),
		ErrorHandler:   g.proxyError,
		ModifyResponse: g.modifyResponse,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		// Streamed responses (text/event-stream, or no Content-Length:
		// chunked long polls) are flushed on every write by ReverseProxy
		// itself. For sized ones a short interval sends the headers, and
		// then the body at least this often, when the upstream is slow to
		// produce it; a response complete within it costs one timer and no
		// extra write. (-1, flush every write, cost a timer goroutine and a
		// header-only write on every response: 15% of the CPU at load.)
		FlushInterval: sizedFlushInterval,
	}
	return g
}

// sizedFlushInterval bounds how long a slow upstream's sized response sits
// in the gateway's buffers before the client sees it.
const sizedFlushInterval = 100 * time.Millisecond

// Table returns the route table.
func (g *Gateway) Table() *Table { return g.table }

// Event is what happened to one request: logged and counted.
type Event struct {
	RequestID string
	Route     string
	Method    string
	Path      string
	ClientIP  netip.Addr
	Strategy  string
	Outcome   Outcome
	Reason    string
	Subject   string
	// TokenID is the API key id or the token's jti (never the credential).
	TokenID string
	Status  int
	Start   time.Time
	// UpstreamDuration is the time spent waiting for the upstream, if forwarded.
	UpstreamDuration time.Duration
	// TraceID is the request's trace, when it is sampled (zero otherwise).
	TraceID      trace.TraceID
	forwardStart time.Time
}

type stateKey struct{}

// reqState travels from ServeHTTP to Rewrite/ModifyResponse/ErrorHandler.
// It is itself the context of the requests the gateway hands on (the
// forwarded one, an endpoint's): the request's context with st under
// stateKey, without a context.WithValue allocation per request.
type reqState struct {
	// parent is the request's context (set by ServeHTTP).
	parent context.Context

	route *Route
	path  string // canonical escaped path
	// host is the request's host (r.Host: the Host header, or the authority
	// of an absolute-form target, which HTTP/1.1 says replaces it) and
	// hostName its name as routes match it. The same value decides the
	// route, X-Forwarded-Host and, with preserve_host, the upstream's Host.
	host, hostName string
	query          string
	identity       *strategies.Identity
	peerTrusted    bool
	// forwardedFor and forwardedProto are a trusted proxy's X-Forwarded-For
	// chain and X-Forwarded-Proto, kept for the outbound request.
	forwardedFor   []string
	forwardedProto string
	// target is the upstream target picked for a route with several.
	target *upstream.Target
	// steps are the strategies' results, recorded for explain only.
	steps []strategies.Outcome
	ev    Event

	// policyIn is allow_if's input (kept here: no allocation of its own),
	// policy its result.
	policyIn policy.Input
	policy   policyResult

	// values are those of the headers the gateway sets.
	values headerValues

	// renewal is the session rotation running beside the request, if its
	// access token fell due.
	renewal *renewal
}

// takeHeaders keeps what the outbound request needs of a trusted proxy's
// forwarding headers, then deletes in one pass every header a client may
// not send upstream (classifyHeader), in any case and "_" spelling. Everything
// after it — strategies, the copy ReverseProxy forwards — sees only what the
// gateway lets through.
func (st *reqState) takeHeaders(h http.Header) {
	if st.peerTrusted {
		st.forwardedFor = h["X-Forwarded-For"]
		st.forwardedProto = h.Get("X-Forwarded-Proto")
	}
	stripInboundHeaders(h, st.route)
}

func (st *reqState) Deadline() (time.Time, bool) { return st.parent.Deadline() }
func (st *reqState) Done() <-chan struct{}       { return st.parent.Done() }
func (st *reqState) Err() error                  { return st.parent.Err() }

func (st *reqState) Value(key any) any {
	if key == (stateKey{}) {
		return st
	}
	return st.parent.Value(key)
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{}
	st.ev.Start = time.Now()
	st.ev.Method = r.Method
	st.ev.RequestID = g.ids.get(r.Header.Get("X-Request-Id"))
	st.values.set(w.Header(), "X-Request-Id", st.ev.RequestID)
	defer g.finish(st)
	st.ev.ClientIP, st.peerTrusted = g.opts.IPResolver.ClientIP(r)
	st.parent = r.Context()
	if g.opts.Tracing != nil {
		defer endSpan(g.startSpan(r, st), st) // before finish: deferred later, runs first
	}
	// From here on the request carries st: the strategies, the endpoints
	// and the forwarded request see one context.
	r = r.WithContext(st)

	d := g.decide(r, st, r.RequestURI, w.Header(), doorClient)
	st.record(&d)
	if st.renewal != nil {
		w = &renewalWriter{ResponseWriter: w, rn: st.renewal}
		// However the response ends (or not: a client gone), the rotation
		// is over before the request is, and its context with it.
		defer st.renewal.wait()
	}
	switch {
	case d.Verify:
		g.serveVerify(w, r, st)
	case d.Status != 0:
		g.answer(w, r, st, &d)
	case d.Endpoint != nil:
		d.Endpoint.ServeHTTP(w, r)
		st.ev.Status = 0 // unknown: the endpoint answered
	default:
		g.forward(w, r, st)
	}
}

// record notes the decision in the request's auth event.
func (st *reqState) record(d *Decision) {
	st.ev.Status, st.ev.Outcome, st.ev.Reason = d.Status, d.Outcome, d.Reason
	st.ev.Path = st.path
	switch {
	case d.Endpoint != nil:
		st.ev.Route = "gateway"
	case d.Route != nil:
		st.ev.Route = d.Route.Name
	}
	if id := d.Identity; id != nil {
		st.ev.Strategy, st.ev.Subject, st.ev.TokenID = id.Strategy, id.Subject, id.TokenID
	}
}

// answer writes the gateway's own answer of d, whose headers decide put in
// w.Header(): 204 to a preflight, 302 to login, or the JSON error.
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, st *reqState, d *Decision) {
	switch d.Status {
	case http.StatusNoContent:
		w.WriteHeader(d.Status)
	case http.StatusFound:
		http.Redirect(w, r, w.Header().Get("Location"), d.Status)
	default:
		if d.Reason == ReasonStrategyError && d.Err != nil {
			g.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "authentication unavailable",
				slog.String("route", st.ev.Route), slog.String("request_id", st.ev.RequestID), slog.String("error", d.Err.Error()))
		}
		writeError(w, r, d.Status, d.Message)
	}
}

// forward sends an admitted request to its route's upstream.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, st *reqState) {
	rt := st.route
	// A request without a body (the server's http.NoBody) has nothing to
	// bound; one with a Content-Length over the limit was refused.
	if rt.MaxBodyBytes > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, rt.MaxBodyBytes)
	}
	if rt.Timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), rt.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if rt.Upstreams != nil {
		if st.target = rt.Upstreams.Pick(); st.target == nil {
			st.ev.Status, st.ev.Reason = http.StatusServiceUnavailable, ReasonNoHealthyUpstream
			writeError(w, r, http.StatusServiceUnavailable, "no healthy upstream")
			return
		}
	}
	st.ev.forwardStart = time.Now()
	g.proxy.ServeHTTP(w, r)
}

// CountAuthFailure lets an endpoint (login callback, refresh) count a failed
// attempt against the client's IP.
func (g *Gateway) CountAuthFailure(r *http.Request) {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		g.countFailure(r.Context(), st)
	}
}

// Info is what the gateway established about a request it handed to one of
// its endpoints, as its auth event records it.
type Info struct {
	// RequestID is the id of the request's auth event (the client's
	// X-Request-Id when acceptable, else generated).
	RequestID string
	// ClientIP is the client's address, resolved through trusted_proxies.
	ClientIP netip.Addr
	// Path is the canonical path the gateway matched.
	Path string
}

// RequestInfo returns what the gateway established about r; ok is false for
// a request that did not come through the gateway.
func RequestInfo(r *http.Request) (info Info, ok bool) {
	st, ok := r.Context().Value(stateKey{}).(*reqState)
	if !ok {
		return Info{}, false
	}
	return Info{RequestID: st.ev.RequestID, ClientIP: st.ev.ClientIP, Path: st.path}, true
}

func (g *Gateway) finish(st *reqState) {
	if g.opts.Observer != nil {
		g.opts.Observer(&st.ev)
	}
	if !g.opts.AuthEvents {
		return
	}
	ev := &st.ev
	if g.events != nil {
		g.events.write(ev, time.Now())
		return
	}
	lvl := slog.LevelInfo
	if ev.Status >= 500 {
		lvl = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("request_id", ev.RequestID),
		slog.String("route", ev.Route),
		slog.String("method", ev.Method),
		slog.String("path", ev.Path),
		slog.String("client_ip", ev.ClientIP.String()),
		slog.String("strategy", ev.Strategy),
		slog.String("outcome", ev.Outcome.String()),
		slog.String("reason", ev.Reason),
		slog.String("subject", ev.Subject),
		slog.String("token_id", ev.TokenID),
		slog.Int("status", ev.Status),
		slog.Int64("duration_us", time.Since(ev.Start).Microseconds()),
	}
	if ev.TraceID.IsValid() {
		attrs = append(attrs, slog.String("trace_id", ev.TraceID.String()))
	}
	g.opts.Logger.LogAttrs(context.Background(), lvl, "auth", attrs...)
}

// requestIDs accepts a client's X-Request-Id when it is short and plain, and
// generates one otherwise.
// Generated ids are a random per-process prefix and a counter: unique across
// replicas without a random read per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (ids *requestIDs) get(in string) string {
	if validRequestID(in) {
		return in
	}
	var buf [32]byte // prefix (13) and a base-36 uint64 (13 at most)
	return string(strconv.AppendUint(append(buf[:0], ids.prefix...), ids.n.Add(1), 36))
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
