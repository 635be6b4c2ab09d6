package proxy

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/routing"
	"github.com/authgateway/authgateway/internal/strategies"
)

// Route is one compiled route: everything the hot path needs, resolved once.
type Route struct {
	Name     string
	Prefix   string
	Methods  []string // empty: every method
	Upstream *url.URL
	Public   bool
	Chain    []strategies.Named
	Roles    []string // any of
	Scopes   []string // all of
	// PassCredentials keeps credential headers for the upstream.
	PassCredentials bool
	MaxBodyBytes    int64 // <= 0: no limit
	Timeout         time.Duration
	// Limit is the per-route quota, nil when none; LimitByIP keys it by client
	// IP instead of subject.
	Limit     *ratelimit.Limiter
	LimitByIP bool
	// CORS is the route's cross-origin policy, nil when none.
	CORS *CORSPolicy
	// IdentityToken adds a signed X-Auth-Token assertion for the upstream.
	IdentityToken bool
	// Login is the login URL prefix for browser navigations without
	// credentials ("" when no strategy of the route does browser login).
	Login string

	allow        string // Allow header for 405
	credHeaders  []string
	credCookies  []string
	challenges   []string
	upstreamPath string // upstream's escaped path without trailing slash
}

// Challenger is implemented by strategies that have a WWW-Authenticate challenge.
type Challenger interface{ Challenge() string }

// CredentialCarrier is implemented by strategies that read credentials from
// headers or cookies, which are removed before forwarding.
type CredentialCarrier interface {
	CredentialHeaders() []string
	CredentialCookie() string
}

func (rt *Route) compile() {
	if len(rt.Methods) > 0 {
		m := slices.Clone(rt.Methods)
		if slices.Contains(m, "GET") && !slices.Contains(m, "HEAD") {
			m = append(m, "HEAD")
		}
		rt.allow = strings.Join(m, ", ")
	}
	for _, n := range rt.Chain {
		if c, ok := n.Strategy.(Challenger); ok && !slices.Contains(rt.challenges, c.Challenge()) {
			rt.challenges = append(rt.challenges, c.Challenge())
		}
		if c, ok := n.Strategy.(CredentialCarrier); ok {
			for _, h := range c.CredentialHeaders() {
				if !slices.Contains(rt.credHeaders, h) {
					rt.credHeaders = append(rt.credHeaders, h)
				}
			}
			if ck := c.CredentialCookie(); ck != "" && !slices.Contains(rt.credCookies, ck) {
				rt.credCookies = append(rt.credCookies, ck)
			}
		}
	}
	if len(rt.challenges) == 0 {
		rt.challenges = []string{`Bearer realm="authgateway"`}
	}
	rt.upstreamPath = strings.TrimSuffix(rt.Upstream.EscapedPath(), "/")
}

func (rt *Route) allowsMethod(m string) bool {
	if len(rt.Methods) == 0 {
		return true
	}
	if m == "HEAD" && slices.Contains(rt.Methods, "GET") {
		return true
	}
	return slices.Contains(rt.Methods, m)
}

// Table is an immutable set of compiled routes; a reload builds a new one.
type Table struct {
	routes *routing.Table[*Route]
	list   []*Route
}

// NewTable compiles routes into a table.
func NewTable(routes []*Route) (*Table, error) {
	t := &Table{routes: routing.NewTable[*Route](), list: routes}
	for _, rt := range routes {
		rt.compile()
		if err := t.routes.Add(rt.Prefix, rt); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Match returns the route for a canonical path.
func (t *Table) Match(path string) (*Route, bool) {
	rt, _, ok := t.routes.Match(path)
	return rt, ok
}

// Routes lists the table's routes in config order.
func (t *Table) Routes() []*Route { return t.list }
