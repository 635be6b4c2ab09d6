package proxy

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/policy"
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
	// Policy is the route's allow_if, checked after roles and scopes; nil
	// when none.
	Policy *policy.Program
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
	rt.allow = defaultAllow
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

// defaultAllow is the Allow header of a route without methods: the methods
// it serves besides unregistered extension methods.
const defaultAllow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// explicitOnly reports whether a route serves method m only when its methods
// list it: TRACE and TRACK echo the request, credentials included, back to
// the client, and CONNECT asks for a tunnel. Any case counts: an upstream may
// read "trace" as TRACE.
func explicitOnly(m string) bool {
	return strings.EqualFold(m, "TRACE") || strings.EqualFold(m, "TRACK") || strings.EqualFold(m, "CONNECT")
}

// allowsMethod reports whether the route serves a request with method m and
// the raw query: the method, and every method a _method query parameter
// asks the upstream's framework to run instead, must be the route's.
func (rt *Route) allowsMethod(m, query string) bool {
	return rt.serves(m) && rt.servesMethodParams(query)
}

func (rt *Route) serves(m string) bool {
	if len(rt.Methods) == 0 {
		return !explicitOnly(m)
	}
	if m == "HEAD" && slices.Contains(rt.Methods, "GET") {
		return true
	}
	return slices.Contains(rt.Methods, m)
}

// servesMethodParams checks the _method query parameters. Express's
// method-override('_method'), Laravel and Symfony (with parameter override
// on) run the handler of the method it names instead of the request's, so
// a value naming a method the route does not serve is refused like that
// method. The name is matched decoded and in any case, and with "." or " "
// as its first character, which PHP reads as "_". An empty value overrides
// nothing. Form fields in a body are out of the gateway's sight (SECURITY.md).
func (rt *Route) servesMethodParams(query string) bool {
	for query != "" {
		var pair string
		if i := strings.IndexAny(query, "&;"); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			pair, query = query, ""
		}
		key, value, _ := strings.Cut(pair, "=")
		// "_method" is 7 characters, each at most 3 when escaped.
		if len(key) < 7 || len(key) > 21 {
			continue
		}
		key, err := url.QueryUnescape(key)
		if err != nil || !isMethodParam(key) {
			continue
		}
		value, err = url.QueryUnescape(value)
		if err != nil {
			return false // a framework may decode it some other way
		}
		if value != "" && !rt.serves(strings.ToUpper(value)) {
			return false
		}
	}
	return true
}

func isMethodParam(key string) bool {
	return len(key) == 7 && (key[0] == '_' || key[0] == '.' || key[0] == ' ') && strings.EqualFold(key[1:], "method")
}

// Table is an immutable set of compiled routes; a reload builds a new one.
type Table struct {
	routes *routing.Table[*Route]
	list   []*Route
}

// TableOptions configures a Table. The zero value is the safe default.
type TableOptions struct {
	// CaseSensitiveUpstreams says every upstream matches paths
	// case-sensitively (server.case_sensitive_upstreams), so a path spelt in
	// another case than a route is just another path. Default false: Match
	// refuses such a path when its case-insensitive match is another route,
	// and NewTable refuses route paths that differ only in case.
	CaseSensitiveUpstreams bool
}

// NewTable compiles routes into a table with the default options.
func NewTable(routes []*Route) (*Table, error) { return TableOptions{}.NewTable(routes) }

// NewTable compiles routes into a table.
func (o TableOptions) NewTable(routes []*Route) (*Table, error) {
	trie := routing.NewFoldTable[*Route]()
	if o.CaseSensitiveUpstreams {
		trie = routing.NewTable[*Route]()
	}
	t := &Table{routes: trie, list: routes}
	for _, rt := range routes {
		rt.compile()
		if err := t.routes.Add(rt.Prefix, rt); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Match returns the route for a canonical path, with routing.Matched; or
// routing.NoRoute; or, unless upstreams are case-sensitive,
// routing.CaseMismatch and the route the path matches case-insensitively,
// which must not serve it: the path is spelt as another route (or none), and
// an upstream that ignores case would serve it as this one.
//
// The check compares route identity, which is one path prefix today. When
// routes gain hosts and methods (DESIGN.md, "Routes that fit real
// deployments"), both matches must run over the same candidates: the host
// is chosen first (hosts compare case-insensitively anyway), the case check
// must span the fall-back from host routes to host-less ones (a path whose
// fold matches a host route while its spelling falls through to a host-less
// one is a mismatch), and the routes that share a host and path and split
// it by method must sit on one trie node, so that both spellings reach the
// same node and the method then picks the same route.
func (t *Table) Match(path string) (*Route, routing.Result) {
	rt, _, res := t.routes.Match(path)
	return rt, res
}

// Routes lists the table's routes in config order.
func (t *Table) Routes() []*Route { return t.list }
