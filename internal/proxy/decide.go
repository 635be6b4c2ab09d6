package proxy

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/routing"
	"github.com/authgateway/authgateway/internal/strategies"
)

// door is how a request reached the pipeline. Every door calls decide; they
// differ in how they act on its Decision.
type door uint8

const (
	// doorClient is a client's request on the main listener (ServeHTTP):
	// answered by the gateway or forwarded.
	doorClient door = iota
	// doorVerify is the request a trusted proxy describes to /auth/verify:
	// answered 200 with the identity, or refused. Its proxy answers the
	// browser, so there is no CORS step, and it carries no body to limit.
	doorVerify
	// doorExplain is a client's request decided without side effects:
	// failures are not counted, the quota is peeked, not taken (explain).
	doorExplain
)

// Decision is what the pipeline decided for one request.
type Decision struct {
	// Status is the gateway's own answer; 0 means the request goes on: to
	// the upstream, to the gateway's endpoint (Endpoint, Verify) or, at
	// /auth/verify, to a 200 with the identity.
	Status  int
	Outcome Outcome
	Reason  string
	// Message is the JSON error's message, for answers of 400 and above.
	Message string
	// Route is the matched route; nil before matching or without a match.
	Route *Route
	// Identity is who the strategies authenticated; nil on public routes
	// and when none did.
	Identity *strategies.Identity
	// Endpoint is the gateway's own handler for the path, and Verify marks
	// /auth/verify; both may come with a refusal (the auth-failure limit).
	Endpoint http.Handler
	Verify   bool
	// Err is the technical failure behind a strategy_error (the door logs
	// it), or why a path was refused (explain shows it).
	Err error
	// Steps are the strategies' results in order; recorded by explain only.
	Steps []strategies.Outcome
}

// decided reports whether a step decided (the zero Decision goes on).
func (d *Decision) decided() bool { return d.Outcome != OutcomeNone }

// refuse is a Decision to answer status with the JSON error msg.
func refuse(status int, o Outcome, reason, msg string) Decision {
	return Decision{Status: status, Outcome: o, Reason: reason, Message: msg}
}

// decide runs the pipeline's checks on one request, in order (README, "How
// a request flows"), and says what the gateway does with it. target is the
// request-target to route: the request's own, or the one a forward-auth
// caller describes; r gives the method and headers, which are taken
// (takeHeaders) once the gateway's endpoints are ruled out. decide
// keeps in st what forwarding needs (canonical path and query, route,
// identity, a trusted proxy's forwarding headers) and writes the headers of
// the answer to h: CORS, Allow, WWW-Authenticate, Retry-After, RateLimit-*,
// Location. It writes nothing to the client and, for doorExplain, counts
// and takes nothing.
func (g *Gateway) decide(r *http.Request, st *reqState, target string, h http.Header, via door) Decision {
	d := g.steps(r, st, target, h, via)
	d.Route, d.Identity, d.Steps = st.route, st.identity, st.steps
	return d
}

func (g *Gateway) steps(r *http.Request, st *reqState, target string, h http.Header, via door) Decision {
	ctx := r.Context()
	path, query, err := routing.Normalize(target)
	if err != nil {
		// The raw target is attacker-controlled and not logged; the reason is.
		d := refuse(http.StatusBadRequest, OutcomeBadRequest, ReasonBadPath, "bad request path")
		d.Err = err
		return d
	}
	st.path, st.query = path, query
	if via != doorVerify {
		// The gateway's own endpoints forward nothing, and their audit
		// events read the forwarding chain: they come before the headers
		// are taken. /auth/verify reads its pair first, then decides again.
		if d := g.endpoint(ctx, st, h); d.decided() {
			return d
		}
	}
	st.host = r.Host
	if via == doorVerify {
		// The host of the request the trusted proxy describes, when it
		// says; several values are one bad host (refused below when routes
		// choose by host), never a pick among them.
		if fh := r.Header.Values("X-Forwarded-Host"); len(fh) > 0 {
			st.host = strings.Join(fh, ",")
		}
	}
	st.hostName = HostName(st.host)
	d := g.match(st, r)
	if g.table.hosts && !plainHost(st.host) {
		// Routes choose by host: a host that is not a plain name could be
		// read as one of theirs by an upstream that normalises otherwise
		// ("legacy.example.com..", "a.test,legacy.example.com", "%2E").
		d = refuse(http.StatusBadRequest, OutcomeBadRequest, ReasonBadHost, "bad host")
		st.route = nil
	}
	st.takeHeaders(r.Header)
	if d.decided() {
		return d
	}
	rt := st.route
	if via != doorVerify {
		for name, v := range rt.ResponseHeaders {
			h[name] = v[:len(v):len(v)]
		}
	}
	if rt.CORS != nil && via != doorVerify {
		if isPreflight(r) {
			if rt.CORS.preflight(h, r) {
				return Decision{Status: http.StatusNoContent, Outcome: OutcomeCORSPreflight}
			}
			// Not an authentication failure: counted and audited as refused.
			return refuse(http.StatusForbidden, OutcomeCORSRefused, ReasonCORSPreflightRefused, "CORS preflight refused")
		}
		rt.CORS.decorate(h, r.Header.Get("Origin"))
	}
	if !rt.allowsMethod(r.Method, query) {
		h.Set("Allow", rt.allow)
		return refuse(http.StatusMethodNotAllowed, OutcomeMethodNotAllowed, ReasonMethod, "method not allowed")
	}
	if !rt.Public {
		if d := g.authenticate(r, st, h, via); d.decided() {
			return d
		}
	}
	if rt.Limit != nil {
		if d := g.quota(ctx, st, h, via); d.decided() {
			return d
		}
	}
	// A body sent chunked is bounded while it is forwarded (ServeHTTP).
	if via != doorVerify && rt.MaxBodyBytes > 0 && r.ContentLength > rt.MaxBodyBytes {
		return refuse(http.StatusRequestEntityTooLarge, OutcomeBadRequest, ReasonBodyTooLarge, "request body too large")
	}
	if st.identity == nil {
		return Decision{Outcome: OutcomePublic}
	}
	return Decision{Outcome: OutcomeAllowed}
}

// endpoint decides for the gateway's own paths: /auth/verify, and the
// Endpoints, the /auth/ ones behind the auth-failure limit.
func (g *Gateway) endpoint(ctx context.Context, st *reqState, h http.Header) Decision {
	if st.path == VerifyPath {
		return Decision{Outcome: OutcomeEndpoint, Verify: true}
	}
	ep, ok := g.opts.Endpoints[st.path]
	if !ok {
		return Decision{}
	}
	d := Decision{Outcome: OutcomeEndpoint}
	if strings.HasPrefix(st.path, "/auth/") {
		if limited := g.failureLimit(ctx, st, h); limited.decided() {
			d = limited
		}
	}
	d.Endpoint = ep
	return d
}

// match finds the route for st's host, path and r's method (a preflight's
// for the method it asks about): 404 for none, 400 for a path that an
// upstream ignoring case would serve as another route than its own
// spelling (Table.Match). A route that does not serve the method is
// refused 405 by the method step.
func (g *Gateway) match(st *reqState, r *http.Request) Decision {
	method := r.Method
	if isPreflight(r) {
		method = r.Header.Get("Access-Control-Request-Method")
	}
	rt, res := g.table.Match(st.hostName, st.path, method)
	switch res {
	case routing.NoRoute:
		return refuse(http.StatusNotFound, OutcomeNotFound, ReasonNoRoute, "not found")
	case routing.CaseMismatch:
		return refuse(http.StatusBadRequest, OutcomeBadRequest, ReasonPathCaseMismatch, "path matches another route when case is ignored")
	}
	st.route = rt
	return Decision{}
}

// authenticate runs the auth-failure limit, the route's strategies, and the
// cross-origin, role and scope checks, then the route's allow_if.
func (g *Gateway) authenticate(r *http.Request, st *reqState, h http.Header, via door) Decision {
	ctx, rt := r.Context(), st.route
	if d := g.failureLimit(ctx, st, h); d.decided() {
		return d
	}
	res := strategies.Run(ctx, rt.Chain, r, via == doorExplain)
	if fromSession, fresh := g.sessionState(rt, res.Identity); !fresh && g.renewable(r, st, via) {
		if fromSession {
			// Due, but valid: the request goes on with it while the
			// session rotates, and the response waits for the new
			// cookies (see startRenewal).
			st.renewal = g.startRenewal(r)
		} else if g.opts.Sessions.Renew(r, h, false) {
			// Missing, expired or invalid, and rotated inside this
			// request: the strategies read the new access token from r's
			// Cookie header.
			res = strategies.Run(ctx, rt.Chain, r, via == doorExplain)
		}
	}
	st.steps = res.Outcomes
	if res.Identity == nil {
		return g.noIdentity(r, st, h, via, &res)
	}
	id := res.Identity
	st.identity = id
	if id.FromCookie && g.crossOriginRefused(r, rt) {
		// The credential is valid (the victim's browser sent it), so this
		// is not counted as a failure: another site could otherwise make
		// its visitors' browsers lock their own addresses out.
		return refuse(http.StatusForbidden, OutcomeForbidden, ReasonCrossOriginRefused, "cross-origin request refused")
	}
	switch authorize(rt, id) {
	case ReasonMissingRole:
		return refuse(http.StatusForbidden, OutcomeForbidden, ReasonMissingRole, "forbidden")
	case ReasonMissingScope:
		h.Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.Join(rt.Scopes, " ")+`"`)
		return refuse(http.StatusForbidden, OutcomeForbidden, ReasonMissingScope, "insufficient scope")
	}
	if rt.Policy != nil {
		return g.checkPolicy(r, st)
	}
	return Decision{}
}

// sessionState reports whether id was read from the session's access
// cookie by one of rt's strategies, and if so whether it is not yet due for
// renewal. A fresh one is nearly every request of a browser session, and
// for it the session's own verifier (Renew's) is never asked: each access
// token is verified and cached once, by the route's strategy, not twice;
// a due one is renewed without being verified again.
func (g *Gateway) sessionState(rt *Route, id *strategies.Identity) (fromSession, fresh bool) {
	s := g.opts.Sessions
	if s == nil || id == nil || !id.FromCookie || id.ExpiresAt.IsZero() {
		return false, false
	}
	for _, n := range rt.Chain {
		if n.Name != id.Strategy {
			continue
		}
		if c, ok := n.Strategy.(CredentialCarrier); !ok || c.CredentialCookie() != s.AccessCookie() {
			return false, false
		}
		return true, s.Fresh(id.ExpiresAt)
	}
	return false, false
}

// renewable reports whether the gateway may refresh a client's browser
// session inside its request (transparent refresh), when the route's
// strategies found its access cookie missing, invalid or about to expire.
// Never for a cross-origin request that the session cookie could not
// authenticate (crossOriginRefused): another site must not rotate anyone's
// session. Not at /auth/verify, whose proxy would have to pass the new
// cookies on (a proxy that drops them would leave the browser a rotated
// token), nor for explain, which changes nothing. The renewer gets r
// itself (or, overlapped, a copy with its context): a forged refresh cookie
// counts against the client (CountAuthFailure) and the audit lines carry
// its address and request id (RequestInfo).
func (g *Gateway) renewable(r *http.Request, st *reqState, via door) bool {
	s, rt := g.opts.Sessions, st.route
	return s != nil && via == doorClient && slices.Contains(rt.credCookies, s.AccessCookie()) && !g.crossOriginRefused(r, rt)
}

// noIdentity decides for a request no strategy authenticated: 503 when a
// strategy could not tell, a redirect to login for a browser navigation,
// else 401. An invalid credential counts against the client's IP.
func (g *Gateway) noIdentity(r *http.Request, st *reqState, h http.Header, via door, res *strategies.Result) Decision {
	rt := st.route
	// A browser navigation whose session is missing, expired or revoked
	// goes to login; that is a user's session ending, not an attack, so it
	// does not count as a failure.
	// At /auth/verify the proxy asking (nginx auth_request) knows only 2xx,
	// 401 and 403: it gets the 401 and sends the browser to login itself
	// (README, nginx error_page recipe).
	browser := rt.Login != "" && isBrowserNavigation(r) && r.Header.Get("Authorization") == ""
	navigate := browser && via != doorVerify
	if res.Invalid && !browser && via != doorExplain {
		g.countFailure(r.Context(), st)
	}
	switch {
	case res.Err != nil && !res.Invalid:
		d := refuse(http.StatusServiceUnavailable, OutcomeAuthUnavailable, ReasonStrategyError, "authentication temporarily unavailable")
		d.Err = res.Err
		return d
	case navigate:
		target := st.path
		if st.query != "" {
			target += "?" + st.query
		}
		h.Set("Cache-Control", "no-store")
		h.Set("Location", rt.Login+"?rd="+url.QueryEscape(target))
		return Decision{Status: http.StatusFound, Outcome: OutcomeUnauthenticated, Reason: string(res.Reason)}
	case res.Invalid:
		challenge(h, rt, `error="invalid_token"`)
		return refuse(http.StatusUnauthorized, OutcomeInvalid, string(res.Reason), "unauthorized")
	default:
		challenge(h, rt, "")
		return refuse(http.StatusUnauthorized, OutcomeUnauthenticated, string(res.Reason), "unauthorized")
	}
}

// challenge adds the route's WWW-Authenticate challenges for a 401; the
// Bearer ones carry errParam when it is given.
func challenge(h http.Header, rt *Route, errParam string) {
	for _, c := range rt.challenges {
		if errParam != "" && strings.HasPrefix(c, "Bearer") {
			c += ", " + errParam
		}
		h.Add("WWW-Authenticate", c)
	}
}

// authorize checks roles (any of) and scopes (all of); "" means allowed.
func authorize(rt *Route, id *strategies.Identity) string {
	if len(rt.Roles) > 0 && !slices.ContainsFunc(rt.Roles, func(role string) bool { return slices.Contains(id.Roles, role) }) {
		return ReasonMissingRole
	}
	for _, s := range rt.Scopes {
		if !slices.Contains(id.Scopes, s) {
			return ReasonMissingScope
		}
	}
	return ""
}

// failureLimit refuses a client IP over its auth-failure limit. It only
// peeks, so explain calls it too.
func (g *Gateway) failureLimit(ctx context.Context, st *reqState, h http.Header) Decision {
	if g.opts.AuthFailures == nil {
		return Decision{}
	}
	res := g.opts.AuthFailures.Peek(ctx, ratelimit.Key(st.ev.ClientIP))
	return limited(h, res, ReasonAuthFailures, "too many failed authentication attempts", "authentication temporarily unavailable")
}

// limited decides on a limit's result: on under the limit; 429 over it
// (reason, msg) until its window ends; 503 (unavailable) when its store
// failed under the deny policy — nobody knows whether the client is over
// it, so that is an outage to retry in a few seconds, not a lockout. (The
// store's failure is counted by the Redis client, logged by the limiter.)
func limited(h http.Header, res ratelimit.Result, reason, msg, unavailable string) Decision {
	if !res.Reached {
		return Decision{}
	}
	setRetryAfter(h, res.RetryAfter(time.Now()))
	if res.StoreError != nil {
		return refuse(http.StatusServiceUnavailable, OutcomeAuthUnavailable, ReasonStoreUnavailable, unavailable)
	}
	return refuse(http.StatusTooManyRequests, OutcomeRateLimited, reason, msg)
}

func (g *Gateway) countFailure(ctx context.Context, st *reqState) {
	if g.opts.AuthFailures == nil {
		return
	}
	g.opts.AuthFailures.Add(ctx, ratelimit.Key(st.ev.ClientIP))
}

// quota takes one request from the route's quota, keyed by subject or
// client IP; explain peeks instead.
func (g *Gateway) quota(ctx context.Context, st *reqState, h http.Header, via door) Decision {
	rt := st.route
	key := ""
	if rt.LimitByIP || st.identity == nil {
		key = "ip:" + ratelimit.Key(st.ev.ClientIP)
	} else {
		key = "sub:" + st.identity.Strategy + ":" + st.identity.Subject
	}
	var res ratelimit.Result
	if via == doorExplain {
		res = rt.Limit.Peek(ctx, key)
		if !res.Reached && res.StoreError == nil {
			res.Remaining-- // what the Take would have left
		}
	} else {
		res = rt.Limit.Take(ctx, key)
	}
	res.SetHeaders(h, time.Now())
	return limited(h, res, ReasonRouteQuota, "rate limit exceeded", "rate limit temporarily unavailable")
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
