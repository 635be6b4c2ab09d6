package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"sort"
	"strings"

	"github.com/authgateway/authgateway/internal/routing"
	"github.com/authgateway/authgateway/internal/upstream"
)

// Explanation is a dry run of the pipeline for one request: the decision the
// gateway would take (decide, as for a real request), and what it would
// forward, without calling the upstream, counting failures or taking from
// a quota.
type Explanation struct {
	Method        string `json:"method"`
	RequestTarget string `json:"request_target"`
	ClientIP      string `json:"client_ip"`
	Path          string `json:"path,omitempty"`
	PathError     string `json:"path_error,omitempty"`
	// Host is the request's host as routes match it (port and trailing dot
	// dropped, lower case).
	Host        string `json:"host,omitempty"`
	Route       string `json:"route,omitempty"`
	RoutePrefix string `json:"route_prefix,omitempty"`
	// RouteHost says how the route's host matched: "exact", "wildcard
	// *.example.com" or "any host" (a route without host).
	RouteHost string `json:"route_host,omitempty"`
	// RouteMethods says how the method matched: the route's methods, or
	// "the rest" for a route without methods.
	RouteMethods string `json:"route_methods,omitempty"`
	// UpstreamPath is the path the upstream gets (after strip_prefix).
	UpstreamPath   string            `json:"upstream_path,omitempty"`
	OtherRoutes    []RouteMiss       `json:"other_routes,omitempty"`
	Public         bool              `json:"public,omitempty"`
	Strategies     []StrategyOutcome `json:"strategies,omitempty"`
	Identity       *IdentityView     `json:"identity,omitempty"`
	RolesRequired  []string          `json:"roles_required,omitempty"`
	ScopesRequired []string          `json:"scopes_required,omitempty"`
	Authorization  string            `json:"authorization,omitempty"` // "ok", or why not
	Policy         *PolicyView       `json:"policy,omitempty"`
	RateLimit      string            `json:"rate_limit,omitempty"`
	// Status is the gateway's own answer (200 when it forwards; 0 when one
	// of its endpoints answers).
	Status   int     `json:"status"`
	Outcome  Outcome `json:"outcome"`
	Decision string  `json:"decision"`
	Reason   string  `json:"reason,omitempty"`
	// ResponseHeaders are the headers the gateway puts on its answer, or on
	// the upstream's when it forwards (CORS, RateLimit-*): Location,
	// WWW-Authenticate, Allow, Retry-After, Access-Control-*.
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	UpstreamURL     string            `json:"upstream_url,omitempty"`
	// UpstreamTarget is the target of the route's upstreams the request
	// would go to now (the round robin is not advanced); UpstreamTargets
	// are their states.
	UpstreamTarget  string            `json:"upstream_target,omitempty"`
	UpstreamTargets []upstream.Health `json:"upstream_targets,omitempty"`
	// UpstreamHeaders are what the upstream would receive; credential values
	// are shown as [redacted].
	UpstreamHeaders map[string]string `json:"upstream_headers,omitempty"`
}

// RouteMiss says why a route did not serve the request.
type RouteMiss struct {
	Route  string `json:"route"`
	Prefix string `json:"prefix"`
	Why    string `json:"why"`
}

// StrategyOutcome is one strategy's result.
type StrategyOutcome struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// IdentityView is the identity that would be forwarded.
type IdentityView struct {
	Subject  string   `json:"subject"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	Strategy string   `json:"strategy"`
}

// Explain decides on r (RequestURI, Method, Header, Host, RemoteAddr,
// ContentLength) as the gateway would, without side effects, and reports
// each step.
func (g *Gateway) Explain(r *http.Request) *Explanation {
	st := &reqState{}
	st.ev.ClientIP, st.peerTrusted = g.opts.IPResolver.ClientIP(r)
	ex := &Explanation{Method: r.Method, RequestTarget: r.RequestURI, ClientIP: st.ev.ClientIP.String()}
	h := http.Header{}
	d := g.decide(r, st, r.RequestURI, h, doorExplain)
	ex.Status, ex.Outcome, ex.Reason = d.Status, d.Outcome, d.Reason
	ex.ResponseHeaders = flatten(h, nil)
	if d.Reason == ReasonBadPath {
		ex.PathError = d.Err.Error()
		ex.Decision = d.Message
		return ex
	}
	ex.Path = st.path
	if d.Endpoint != nil || d.Verify {
		ex.Route = "gateway endpoint"
		ex.Decision = "answered by the gateway itself"
		if d.Verify {
			ex.Decision += " (forward-auth: explain the request its caller describes instead)"
		}
		if d.Status != 0 {
			ex.Decision = d.Message
		}
		return ex
	}
	ex.Host = st.hostName
	caseRoute := ex.routes(g.table, st, r.Method)
	if rt := d.Route; rt != nil {
		ex.Route, ex.RoutePrefix, ex.Public = rt.Name, rt.Prefix, rt.Public
		ex.RouteHost, ex.RouteMethods = hostMatch(rt), methodMatch(rt)
		ex.UpstreamPath = rt.upstreamRest(st.path)
	}
	for _, o := range d.Steps {
		ex.Strategies = append(ex.Strategies, StrategyOutcome{Name: o.Strategy, Result: o.Result, Reason: string(o.Reason)})
	}
	if rt := d.Route; rt != nil && !rt.Public && (d.Steps != nil || d.Identity != nil) {
		ex.RolesRequired, ex.ScopesRequired = rt.Roles, rt.Scopes
	}
	if id := d.Identity; id != nil {
		ex.Identity = &IdentityView{Subject: id.Subject, Email: id.Email, Roles: id.Roles, Scopes: id.Scopes, ClientID: id.ClientID, Strategy: id.Strategy}
		switch d.Reason {
		case ReasonMissingRole, ReasonMissingScope:
			ex.Authorization = d.Reason
		case ReasonCrossOriginRefused:
		default:
			ex.Authorization = "ok"
		}
	}
	ex.Policy = st.policyView()
	// The quota's step ran when it set its headers or refused.
	if rt := d.Route; rt != nil && rt.Limit != nil && (h.Get("RateLimit-Limit") != "" || d.Reason == ReasonRouteQuota) {
		by := "subject"
		if rt.LimitByIP || st.identity == nil {
			by = "client IP " + ex.ClientIP
		}
		ex.RateLimit = "per-route quota by " + by + " (peeked: explain takes nothing)"
	}
	ex.Decision = describe(&d, caseRoute)
	if d.Status == 0 {
		ex.Status = http.StatusOK
		if b := d.Route.Upstreams; b != nil {
			ex.UpstreamTargets = b.Health()
			if st.target = b.Peek(); st.target == nil {
				ex.Status, ex.Reason, ex.Decision = http.StatusServiceUnavailable, ReasonNoHealthyUpstream, "no healthy upstream target"
				return ex
			}
			ex.UpstreamTarget = st.target.Name
		}
		ex.UpstreamURL, ex.UpstreamHeaders = g.upstreamView(r, st)
	}
	return ex
}

func hostMatch(rt *Route) string {
	switch {
	case rt.Host == "":
		return "any host"
	case strings.HasPrefix(rt.Host, "*."):
		return "wildcard " + rt.Host
	}
	return "exact " + rt.Host
}

func methodMatch(rt *Route) string {
	if len(rt.Methods) == 0 {
		if len(rt.excluded) > 0 {
			return "every method but " + strings.Join(rt.excluded, ", ") + " (other routes on this path)"
		}
		return "every method"
	}
	return strings.Join(rt.Methods, ", ")
}

// routes lists why the other routes did not serve the request, and returns
// the route its path matches when case is ignored, if that is why it was
// refused.
func (ex *Explanation) routes(table *Table, st *reqState, method string) (caseRoute *Route) {
	path := st.path
	rt, res := table.Match(st.hostName, path, method)
	ok := res == routing.Matched
	for _, other := range table.Routes() {
		if ok && other == rt {
			continue
		}
		why := "path is not under this prefix"
		switch {
		case !hostMatches(other.Host, st.hostName):
			why = "host does not match (" + hostMatch(other) + ")"
		case rt != nil && other.Host == rt.Host && other.Prefix == rt.Prefix && !other.serves(method):
			why = "same host and path, method not among " + methodMatch(other)
		case rt != nil && other.Host != rt.Host && prefixOf(other.Prefix, path):
			why = "a route of a more specific host matched"
		case res == routing.CaseMismatch && other == rt:
			why = "matches only when case is ignored"
		case res == routing.CaseMismatch && prefixOf(other.Prefix, path):
			why = "path is under this prefix, but a longer one matches when case is ignored"
		case prefixOf(other.Prefix, path):
			why = "a longer prefix matched"
		}
		ex.OtherRoutes = append(ex.OtherRoutes, RouteMiss{Route: other.Name, Prefix: other.Prefix, Why: why})
	}
	if res == routing.CaseMismatch {
		return rt
	}
	return nil
}

// describe says in words what the gateway does with d; refusals without
// more to say are described by the message the client gets.
func describe(d *Decision, caseRoute *Route) string {
	switch {
	case d.Status == 0:
		return "forwarded to the upstream"
	case d.Status == http.StatusNoContent:
		return "CORS preflight answered by the gateway"
	case d.Status == http.StatusFound:
		return "browser navigation without a valid session: redirect to login"
	}
	switch d.Reason {
	case ReasonNoRoute:
		return "no route matches"
	case ReasonPathCaseMismatch:
		if caseRoute != nil {
			return fmt.Sprintf("refused: compared case-insensitively the path is route %q's (prefix %s), spelt exactly it is not, and an upstream that ignores case would serve it there (server.case_sensitive_upstreams)", caseRoute.Name, caseRoute.Prefix)
		}
	case ReasonMethod:
		return "method not allowed (allowed: " + d.Route.allow + ")"
	case ReasonAuthFailures:
		return "too many failed authentication attempts from this client IP: refused until the window ends"
	}
	switch d.Outcome {
	case OutcomeInvalid:
		return "invalid credentials"
	case OutcomeUnauthenticated:
		return "no credentials"
	}
	return d.Message
}

func prefixOf(prefix, path string) bool {
	return prefix == "/" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// upstreamView runs the real Rewrite on a copy of the request, after the
// same hop-by-hop removal ReverseProxy does, and reports the result.
func (g *Gateway) upstreamView(r *http.Request, st *reqState) (string, map[string]string) {
	in := r.Clone(context.WithValue(r.Context(), stateKey{}, st))
	out := r.Clone(r.Context())
	for _, f := range out.Header.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			out.Header.Del(strings.TrimSpace(name))
		}
	}
	for _, h := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		out.Header.Del(h)
	}
	st.ev.RequestID = "(generated per request)"
	g.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	return out.URL.String(), flatten(out.Header, st.route)
}

// flatten joins each header's values for output; with a route, the values
// of credential headers and of the signed assertion are [redacted].
func flatten(h http.Header, rt *Route) map[string]string {
	if len(h) == 0 {
		return nil
	}
	m := make(map[string]string, len(h))
	for k, v := range h {
		val := strings.Join(v, ", ")
		if rt != nil && (isCredentialHeader(k, rt) || k == HeaderToken) {
			val = "[redacted]"
		}
		m[k] = val
	}
	return m
}

func isCredentialHeader(name string, rt *Route) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Cookie", "Proxy-Authorization":
		return true
	}
	for _, h := range rt.credHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// SortedHeaderNames returns the header names of m in order (for output).
func SortedHeaderNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// hostMatches reports whether a route host (Route.Host) covers a request's
// host name, as Table.Match decides.
func hostMatches(routeHost, name string) bool {
	if routeHost == "" || routeHost == name {
		return true
	}
	suffix, ok := strings.CutPrefix(routeHost, "*.")
	return ok && suffix != "" && wildcardSuffix(name) == suffix
}
