// Package proxy is the gateway's request pipeline: normalise the path, match
// the route, rate-limit failures, run the route's strategies, check roles and
// scopes, and forward with httputil.ReverseProxy.
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
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/routing"
	"github.com/authgateway/authgateway/internal/strategies"
)

// Options configures a Gateway. Zero values are safe: no failure limit, no
// endpoints, a discarding logger, a default tuned transport.
type Options struct {
	Logger *slog.Logger
	// IPResolver decides the client IP (trusted proxies); nil trusts none.
	IPResolver *ratelimit.IPResolver
	// AuthFailures limits failed authentications per client IP; nil: none.
	AuthFailures FailureLimiter
	// Transport forwards to upstreams; nil: NewTransport(TransportOptions{}).
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

// Gateway is the request pipeline. Its route table can be swapped while it
// serves: in-flight requests finish on the table they started with.
type Gateway struct {
	opts   Options
	table  atomic.Pointer[Table]
	proxy  *httputil.ReverseProxy
	ids    requestIDs
	events *eventEncoder // nil: events go through opts.Logger
	// crossOrigin judges cookie-authenticated requests (no trusted
	// origins: a route's CORS origins are checked beside it).
	crossOrigin *http.CrossOriginProtection
}

// New returns a gateway serving table.
func New(table *Table, opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IPResolver == nil {
		opts.IPResolver = ratelimit.NewIPResolver(nil)
	}
	if l, ok := opts.AuthFailures.(*ratelimit.Limiter); ok && l == nil {
		opts.AuthFailures = nil // a typed nil would pass the nil checks below
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport(TransportOptions{})
	}
	g := &Gateway{opts: opts, ids: newRequestIDs(), crossOrigin: http.NewCrossOriginProtection()}
	if opts.EventLog != nil {
		g.events = newEventEncoder(opts.EventLog)
	}
	g.table.Store(table)
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      opts.Transport,
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

// SwapTable replaces the route table atomically.
func (g *Gateway) SwapTable(t *Table) { g.table.Store(t) }

// Table returns the current route table.
func (g *Gateway) Table() *Table { return g.table.Load() }

// Event is what happened to one request: logged and counted.
type Event struct {
	RequestID string
	Route     string
	Method    string
	Path      string
	ClientIP  netip.Addr
	Strategy  string
	Outcome   string // allowed, public, unauthenticated, invalid, forbidden, rate_limited, auth_unavailable, bad_request, not_found, method_not_allowed, endpoint
	Reason    string
	Subject   string
	// TokenID is the API key id or the token's jti (never the credential).
	TokenID string
	Status  int
	Start   time.Time
	// StoreErrors counts rate-limit store (Redis) failures met by this request.
	StoreErrors int
	// UpstreamDuration is the time spent waiting for the upstream, if forwarded.
	UpstreamDuration time.Duration
	forwardStart     time.Time
}

type stateKey struct{}

// reqState travels from ServeHTTP to Rewrite/ModifyResponse/ErrorHandler.
type reqState struct {
	route       *Route
	path        string // canonical escaped path
	query       string
	identity    *strategies.Identity
	peerTrusted bool
	// forwardedFor and forwardedProto are a trusted proxy's X-Forwarded-For
	// chain and X-Forwarded-Proto, kept for the outbound request.
	forwardedFor   []string
	forwardedProto string
	ev             Event
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
	stripInboundHeaders(h)
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{}
	st.ev.Start = time.Now()
	st.ev.Method = r.Method
	st.ev.RequestID = g.ids.get(r.Header.Get("X-Request-Id"))
	w.Header().Set("X-Request-Id", st.ev.RequestID)
	defer g.finish(st)

	ip, trusted := g.opts.IPResolver.ClientIP(r)
	st.ev.ClientIP, st.peerTrusted = ip, trusted
	path, query, err := routing.Normalize(r.RequestURI)
	if err != nil {
		// The raw target is attacker-controlled and not logged; the reason is.
		g.deny(w, st, http.StatusBadRequest, "bad_request", "bad_path", "bad request path")
		return
	}
	st.path, st.query, st.ev.Path = path, query, path
	// The gateway's own endpoints forward nothing: /auth/verify reads its
	// pair and then takes the headers, the others read the forwarding chain
	// for their audit events.
	if path == VerifyPath {
		g.serveVerify(w, r, st)
		return
	}
	if h, ok := g.opts.Endpoints[path]; ok {
		g.serveEndpoint(w, r, st, h)
		return
	}
	st.takeHeaders(r.Header)

	rt, ok := g.route(w, st)
	if !ok {
		return
	}
	if rt.CORS != nil {
		if isPreflight(r) {
			if rt.CORS.preflight(w, r) {
				st.ev.Outcome, st.ev.Status = "cors_preflight", http.StatusNoContent
				return
			}
			// Not an authentication failure: counted and audited as refused.
			g.deny(w, st, http.StatusForbidden, "cors_refused", "cors_preflight_refused", "CORS preflight refused")
			return
		}
		rt.CORS.decorate(w.Header(), r.Header.Get("Origin"))
	}
	if !rt.allowsMethod(r.Method, st.query) {
		w.Header().Set("Allow", rt.allow)
		g.deny(w, st, http.StatusMethodNotAllowed, "method_not_allowed", "method", "method not allowed")
		return
	}

	if !rt.Public && !g.authenticate(w, r, st) {
		return
	}
	if rt.Limit != nil && !g.routeLimit(w, r, st) {
		return
	}
	if rt.MaxBodyBytes > 0 {
		if r.ContentLength > rt.MaxBodyBytes {
			g.deny(w, st, http.StatusRequestEntityTooLarge, "bad_request", "body_too_large", "request body too large")
			return
		}
		// A request without a body (the server's http.NoBody) has nothing
		// to bound.
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, rt.MaxBodyBytes)
		}
	}
	if st.identity == nil {
		st.ev.Outcome = "public"
	} else {
		st.ev.Outcome = "allowed"
	}
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	if rt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.Timeout)
		defer cancel()
	}
	st.ev.forwardStart = time.Now()
	g.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// route matches st.path to its route, or answers the request itself: 404
// for no route, 400 for a path that an upstream ignoring case would serve
// as another route than its own spelling is (Table.Match).
func (g *Gateway) route(w http.ResponseWriter, st *reqState) (*Route, bool) {
	rt, res := g.table.Load().Match(st.path)
	switch res {
	case routing.NoRoute:
		g.deny(w, st, http.StatusNotFound, "not_found", "no_route", "not found")
		return nil, false
	case routing.CaseMismatch:
		g.deny(w, st, http.StatusBadRequest, "bad_request", "path_case_mismatch", "path matches another route when case is ignored")
		return nil, false
	}
	st.route, st.ev.Route = rt, rt.Name
	return rt, true
}

// authenticate runs the failure limit, the strategy chain and the role and
// scope checks; it answers the request itself and returns false on denial.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, st *reqState) bool {
	rt := st.route
	if !g.failureLimitOK(w, r, st) {
		return false
	}
	res := strategies.Run(r.Context(), rt.Chain, r, false)
	if res.Identity == nil {
		st.ev.Reason = string(res.Reason)
		// A browser navigation whose session is missing, expired or revoked
		// goes to login; that is a user's session ending, not an attack, so it
		// does not count as a failure.
		navigate := rt.Login != "" && isBrowserNavigation(r) && r.Header.Get("Authorization") == ""
		if res.Invalid && !navigate {
			g.countFailure(r.Context(), st)
		}
		switch {
		case res.Err != nil && !res.Invalid:
			g.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "authentication unavailable",
				slog.String("route", rt.Name), slog.String("request_id", st.ev.RequestID), slog.String("error", res.Err.Error()))
			g.deny(w, st, http.StatusServiceUnavailable, "auth_unavailable", "strategy_error", "authentication temporarily unavailable")
		case res.Invalid && !navigate:
			g.unauthorized(w, st, "invalid", `error="invalid_token"`)
		case navigate:
			st.ev.Outcome, st.ev.Status = "unauthenticated", http.StatusFound
			target := st.path
			if st.query != "" {
				target += "?" + st.query
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, rt.Login+"?rd="+url.QueryEscape(target), http.StatusFound)
		default:
			g.unauthorized(w, st, "unauthenticated", "")
		}
		return false
	}
	id := res.Identity
	st.identity = id
	st.ev.Strategy, st.ev.Subject = id.Strategy, id.Subject
	st.ev.TokenID = id.TokenID
	if id.FromCookie && g.crossOriginRefused(r, rt) {
		// The credential is valid (the victim's browser sent it), so this
		// is not counted as a failure: another site could otherwise make
		// its visitors' browsers lock their own addresses out.
		g.deny(w, st, http.StatusForbidden, "forbidden", "cross_origin_refused", "cross-origin request refused")
		return false
	}
	switch authorize(rt, id) {
	case "missing_role":
		g.deny(w, st, http.StatusForbidden, "forbidden", "missing_role", "forbidden")
		return false
	case "missing_scope":
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.Join(rt.Scopes, " ")+`"`)
		g.deny(w, st, http.StatusForbidden, "forbidden", "missing_scope", "insufficient scope")
		return false
	}
	return true
}

func (g *Gateway) unauthorized(w http.ResponseWriter, st *reqState, outcome, errParam string) {
	for _, c := range st.route.challenges {
		if errParam != "" && strings.HasPrefix(c, "Bearer") {
			c += ", " + errParam
		}
		w.Header().Add("WWW-Authenticate", c)
	}
	g.deny(w, st, http.StatusUnauthorized, outcome, st.ev.Reason, "unauthorized")
}

// failureLimitOK answers 429 when the client IP is over its auth-failure
// limit, and 503 when the limit's store cannot tell (deny policy).
func (g *Gateway) failureLimitOK(w http.ResponseWriter, r *http.Request, st *reqState) bool {
	if g.opts.AuthFailures == nil {
		return true
	}
	res := g.opts.AuthFailures.Peek(r.Context(), ratelimit.Key(st.ev.ClientIP))
	if res.StoreError != nil {
		st.ev.StoreErrors++ // counted here; the limiter logs the outage once
	}
	if !res.Reached {
		return true
	}
	if res.StoreError != nil {
		g.storeUnavailable(w, st, res, "authentication temporarily unavailable")
		return false
	}
	setRetryAfter(w.Header(), res.RetryAfter(time.Now()))
	g.deny(w, st, http.StatusTooManyRequests, "rate_limited", "auth_failures", "too many failed authentication attempts")
	return false
}

// storeUnavailable answers a limit whose store failed under the deny
// policy: nobody knows whether the client is over it, so this is an outage
// (503, retry in a few seconds), not a lockout (429 until the window ends).
func (g *Gateway) storeUnavailable(w http.ResponseWriter, st *reqState, res ratelimit.Result, msg string) {
	setRetryAfter(w.Header(), res.RetryAfter(time.Now()))
	g.deny(w, st, http.StatusServiceUnavailable, "auth_unavailable", "store_unavailable", msg)
}

func (g *Gateway) countFailure(ctx context.Context, st *reqState) {
	if g.opts.AuthFailures == nil {
		return
	}
	if res := g.opts.AuthFailures.Add(ctx, ratelimit.Key(st.ev.ClientIP)); res.StoreError != nil {
		st.ev.StoreErrors++
	}
}

func (g *Gateway) routeLimit(w http.ResponseWriter, r *http.Request, st *reqState) bool {
	rt := st.route
	key := ""
	if rt.LimitByIP || st.identity == nil {
		key = "ip:" + ratelimit.Key(st.ev.ClientIP)
	} else {
		key = "sub:" + st.identity.Strategy + ":" + st.identity.Subject
	}
	res := rt.Limit.Take(r.Context(), key)
	now := time.Now()
	res.SetHeaders(w.Header(), now)
	if res.StoreError != nil {
		st.ev.StoreErrors++
	}
	if !res.Reached {
		return true
	}
	if res.StoreError != nil {
		g.storeUnavailable(w, st, res, "rate limit temporarily unavailable")
		return false
	}
	setRetryAfter(w.Header(), res.RetryAfter(now))
	g.deny(w, st, http.StatusTooManyRequests, "rate_limited", "route_quota", "rate limit exceeded")
	return false
}

func (g *Gateway) serveEndpoint(w http.ResponseWriter, r *http.Request, st *reqState, h http.Handler) {
	st.ev.Route, st.ev.Outcome = "gateway", "endpoint"
	if strings.HasPrefix(st.path, "/auth/") && !g.failureLimitOK(w, r, st) {
		return
	}
	h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
	st.ev.Status = 0 // unknown: the endpoint answered
}

// CountAuthFailure lets an endpoint (login callback, refresh) count a failed
// attempt against the client's IP.
func (g *Gateway) CountAuthFailure(r *http.Request) {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		g.countFailure(r.Context(), st)
	}
}

func (g *Gateway) deny(w http.ResponseWriter, st *reqState, status int, outcome, reason, msg string) {
	st.ev.Status, st.ev.Outcome = status, outcome
	if st.ev.Reason == "" {
		st.ev.Reason = reason
	}
	WriteError(w, status, msg)
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
	g.opts.Logger.LogAttrs(context.Background(), lvl, "auth",
		slog.String("request_id", ev.RequestID),
		slog.String("route", ev.Route),
		slog.String("method", ev.Method),
		slog.String("path", ev.Path),
		slog.String("client_ip", ev.ClientIP.String()),
		slog.String("strategy", ev.Strategy),
		slog.String("outcome", ev.Outcome),
		slog.String("reason", ev.Reason),
		slog.String("subject", ev.Subject),
		slog.String("token_id", ev.TokenID),
		slog.Int("status", ev.Status),
		slog.Int64("duration_us", time.Since(ev.Start).Microseconds()),
	)
}

func isBrowserNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
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
	return ids.prefix + strconv.FormatUint(ids.n.Add(1), 36)
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
