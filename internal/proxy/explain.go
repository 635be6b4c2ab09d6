package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"slices"
	"sort"
	"strings"

	"github.com/authgateway/authgateway/internal/routing"
	"github.com/authgateway/authgateway/internal/strategies"
)

// Explanation is a dry run of the pipeline for one request: what the gateway
// would decide and forward, without calling the upstream or counting limits.
type Explanation struct {
	Method         string            `json:"method"`
	RequestTarget  string            `json:"request_target"`
	Path           string            `json:"path,omitempty"`
	PathError      string            `json:"path_error,omitempty"`
	Route          string            `json:"route,omitempty"`
	RoutePrefix    string            `json:"route_prefix,omitempty"`
	OtherRoutes    []RouteMiss       `json:"other_routes,omitempty"`
	Public         bool              `json:"public,omitempty"`
	Strategies     []StrategyOutcome `json:"strategies,omitempty"`
	Identity       *IdentityView     `json:"identity,omitempty"`
	RolesRequired  []string          `json:"roles_required,omitempty"`
	ScopesRequired []string          `json:"scopes_required,omitempty"`
	Authorization  string            `json:"authorization,omitempty"` // "ok", or why not
	RateLimit      string            `json:"rate_limit,omitempty"`
	Status         int               `json:"status"`
	Decision       string            `json:"decision"`
	Reason         string            `json:"reason,omitempty"`
	UpstreamURL    string            `json:"upstream_url,omitempty"`
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

// Explain runs the decision part of the pipeline on r (RequestURI, Method,
// Header, RemoteAddr) and reports each step.
func (g *Gateway) Explain(r *http.Request) *Explanation {
	ex := &Explanation{Method: r.Method, RequestTarget: r.RequestURI}
	path, query, err := routing.Normalize(r.RequestURI)
	if err != nil {
		ex.PathError = err.Error()
		return ex.decide(http.StatusBadRequest, "bad request path", "bad_path")
	}
	ex.Path = path
	if _, ok := g.opts.Endpoints[path]; ok {
		ex.Route = "gateway endpoint"
		return ex.decide(0, "answered by the gateway itself", "")
	}
	table := g.table.Load()
	rt, res := table.Match(path)
	ok := res == routing.Matched
	for _, other := range table.Routes() {
		if ok && other == rt {
			continue
		}
		why := "path is not under this prefix"
		switch {
		case res == routing.CaseMismatch && other == rt:
			why = "matches only when case is ignored"
		case res == routing.CaseMismatch && prefixOf(other.Prefix, path):
			why = "path is under this prefix, but a longer one matches when case is ignored"
		case prefixOf(other.Prefix, path):
			why = "a longer prefix matched"
		}
		ex.OtherRoutes = append(ex.OtherRoutes, RouteMiss{Route: other.Name, Prefix: other.Prefix, Why: why})
	}
	switch res {
	case routing.NoRoute:
		return ex.decide(http.StatusNotFound, "no route matches", "no_route")
	case routing.CaseMismatch:
		return ex.decide(http.StatusBadRequest, fmt.Sprintf("refused: compared case-insensitively the path is route %q's (prefix %s), spelt exactly it is not, and an upstream that ignores case would serve it there (server.case_sensitive_upstreams)", rt.Name, rt.Prefix), "path_case_mismatch")
	}
	ex.Route, ex.RoutePrefix, ex.Public = rt.Name, rt.Prefix, rt.Public
	if !rt.allowsMethod(r.Method, query) {
		return ex.decide(http.StatusMethodNotAllowed, "method not allowed (allowed: "+rt.allow+")", "method")
	}
	ip, trusted := g.opts.IPResolver.ClientIP(r)
	st := &reqState{route: rt, path: path, query: query, peerTrusted: trusted}
	st.ev.ClientIP = ip
	st.takeHeaders(r.Header)
	if !rt.Public {
		res := strategies.Run(r.Context(), rt.Chain, r, true)
		for _, o := range res.Outcomes {
			ex.Strategies = append(ex.Strategies, StrategyOutcome{Name: o.Strategy, Result: o.Result, Reason: string(o.Reason)})
		}
		ex.RolesRequired, ex.ScopesRequired = rt.Roles, rt.Scopes
		if res.Identity == nil {
			switch {
			case res.Invalid:
				return ex.decide(http.StatusUnauthorized, "invalid credentials", string(res.Reason))
			case res.Err != nil:
				return ex.decide(http.StatusServiceUnavailable, "authentication unavailable", "strategy_error")
			case rt.Login != "" && isBrowserNavigation(r):
				return ex.decide(http.StatusFound, "browser navigation without credentials: redirect to login", "no_credentials")
			default:
				return ex.decide(http.StatusUnauthorized, "no credentials", "no_credentials")
			}
		}
		id := res.Identity
		st.identity = id
		ex.Identity = &IdentityView{Subject: id.Subject, Email: id.Email, Roles: id.Roles, Scopes: id.Scopes, ClientID: id.ClientID, Strategy: id.Strategy}
		if id.FromCookie && g.crossOriginRefused(r, rt) {
			return ex.decide(http.StatusForbidden, "cross-origin request with the session cookie refused", "cross_origin_refused")
		}
		if reason := authorize(rt, id); reason != "" {
			ex.Authorization = reason
			return ex.decide(http.StatusForbidden, "forbidden", reason)
		}
		ex.Authorization = "ok"
	}
	if rt.Limit != nil {
		by := "subject"
		if rt.LimitByIP || st.identity == nil {
			by = "client IP " + ip.String()
		}
		ex.RateLimit = "per-route quota by " + by + " (not counted by explain)"
	}
	ex.UpstreamURL, ex.UpstreamHeaders = g.upstreamView(r, st)
	return ex.decide(http.StatusOK, "forwarded to the upstream", "")
}

func (ex *Explanation) decide(status int, decision, reason string) *Explanation {
	ex.Status, ex.Decision, ex.Reason = status, decision, reason
	return ex
}

func prefixOf(prefix, path string) bool {
	return prefix == "/" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// authorize checks roles (any of) and scopes (all of); "" means allowed.
func authorize(rt *Route, id *strategies.Identity) string {
	if len(rt.Roles) > 0 && !slices.ContainsFunc(rt.Roles, func(role string) bool { return slices.Contains(id.Roles, role) }) {
		return "missing_role"
	}
	for _, s := range rt.Scopes {
		if !slices.Contains(id.Scopes, s) {
			return "missing_scope"
		}
	}
	return ""
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
	headers := map[string]string{}
	for k, v := range out.Header {
		val := strings.Join(v, ", ")
		if isCredentialHeader(k, st.route) {
			val = "[redacted]"
		}
		headers[k] = val
	}
	return out.URL.String(), headers
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
