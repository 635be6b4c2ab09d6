package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/headertmpl"
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
	// Upstreams, when set, picks each request's target among several
	// (upstream.Pool): Upstream then gives the scheme and base path only.
	Upstreams Balancer
	// Transport sends to the route's upstream instead of the gateway's
	// shared transport (https with h2 or upstream_tls, h2c); nil: shared.
	Transport http.RoundTripper

	// Host is "" (every host), a lower-case name, or "*.example.com" (one
	// more label). PreserveHost sends the client's Host upstream.
	Host         string
	PreserveHost bool
	// StripPrefix forwards the path without Prefix and sets
	// X-Forwarded-Prefix.
	StripPrefix bool
	// RequestHeaders are set on the forwarded request (and on a forward-auth
	// answer) from the identity; inbound copies of their names are deleted.
	RequestHeaders []HeaderTemplate
	// RemoveRequestHeaders are deleted from the forwarded request, in any
	// case and "_" spelling.
	RemoveRequestHeaders []string
	// ResponseHeaders are set on every answer to the client on this route.
	ResponseHeaders http.Header

	allow string // Allow header for 405
	// excluded are the methods sibling routes on the same host and path
	// list: a route without methods serves all but these.
	excluded []string
	// templated and removed are the names of RequestHeaders and
	// RemoveRequestHeaders folded as foldName does.
	templated    []string
	removed      []string
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
	rt.templated, rt.removed = nil, nil
	for _, h := range rt.RequestHeaders {
		rt.templated = append(rt.templated, foldName(h.Name))
	}
	for _, h := range rt.RemoveRequestHeaders {
		rt.removed = append(rt.removed, foldName(h))
	}
}

// HeaderTemplate is one of a route's request_headers: the header's
// canonical name and its compiled value.
type HeaderTemplate struct {
	Name     string
	Template *headertmpl.Template
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
		// In any case: an upstream may read "post" as POST, which a
		// sibling route on this path serves with its own rules.
		return !explicitOnly(m) && !slices.ContainsFunc(rt.excluded, func(x string) bool { return strings.EqualFold(x, m) })
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
//
// Matching (DESIGN.md, "Routes that fit real deployments") runs over tiers:
// the routes of the request's exact host, then those of its wildcard
// ("*.example.com" for "a.example.com"), then the host-less ones; the first
// tier with a route for the path decides, and within it the longest
// prefix. Routes that share a host and path sit on one trie node as a
// group, and the method picks among them. So the case check (a fold trie
// per tier) sees every candidate: a path whose fold matches a route of an
// earlier tier is refused there rather than falling through to a later
// one, and both spellings of a path reach the same group, where the method
// picks the same route.
type Table struct {
	exact map[string]*routing.Table[*group]
	wild  map[string]*routing.Table[*group] // by the name after "*."
	any   *routing.Table[*group]            // nil when every route has a host
	list  []*Route
	hosts bool // some route has a host
}

// group is the routes on one host and path: those with methods (disjoint)
// and at most one without, which takes the other methods.
type group struct {
	routes []*Route
	rest   *Route
}

// pick returns the route serving method m, or false and a route of the
// group to answer 405 with (its Allow lists the group's methods).
func (g *group) pick(m string) (*Route, bool) {
	for _, rt := range g.routes {
		if rt.serves(m) {
			return rt, true
		}
	}
	if g.rest != nil {
		return g.rest, g.rest.serves(m)
	}
	return g.routes[0], false
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

// NewTable compiles routes into a table. Routes may share a host and path
// only with disjoint methods (config validation says so with lines; this
// checks again).
func (o TableOptions) NewTable(routes []*Route) (*Table, error) {
	t := &Table{exact: map[string]*routing.Table[*group]{}, wild: map[string]*routing.Table[*group]{}, list: routes}
	newTrie := routing.NewFoldTable[*group]
	if o.CaseSensitiveUpstreams {
		newTrie = routing.NewTable[*group]
	}
	type key struct{ host, prefix string }
	groups := map[key]*group{}
	var order []key
	for _, rt := range routes {
		k := key{rt.Host, rt.Prefix}
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		if len(rt.Methods) == 0 {
			if g.rest != nil {
				return nil, fmt.Errorf("duplicate route path %q%s", rt.Prefix, hostNote(rt.Host))
			}
			g.rest = rt
			continue
		}
		for _, other := range g.routes {
			for _, m := range rt.Methods {
				if other.serves(m) || m == "GET" && other.serves("HEAD") {
					return nil, fmt.Errorf("routes %q and %q both serve %s on path %q%s", other.Name, rt.Name, m, rt.Prefix, hostNote(rt.Host))
				}
			}
		}
		g.routes = append(g.routes, rt)
	}
	for _, k := range order {
		g := groups[k]
		var claimed []string
		for _, rt := range g.routes {
			claimed = append(claimed, rt.Methods...)
		}
		members := g.routes
		if g.rest != nil {
			members = append(slices.Clone(members), g.rest)
		}
		for _, rt := range members {
			rt.compile()
			if len(members) > 1 {
				rt.excluded = nil
				if rt == g.rest {
					rt.excluded = claimed
				}
				rt.allow = groupAllow(g)
			}
		}
		tiers, name := t.exact, k.host
		if after, ok := strings.CutPrefix(k.host, "*."); ok {
			tiers, name = t.wild, after
		}
		t.hosts = t.hosts || k.host != ""
		trie := tiers[name]
		if k.host == "" {
			trie = t.any
		}
		if trie == nil {
			trie = newTrie()
			if k.host == "" {
				t.any = trie
			} else {
				tiers[name] = trie
			}
		}
		if err := trie.Add(k.prefix, g); err != nil {
			return nil, fmt.Errorf("%w%s", err, hostNote(k.host))
		}
	}
	return t, nil
}

func hostNote(h string) string {
	if h == "" {
		return ""
	}
	return " on host " + h
}

// groupAllow is the Allow header of a group's 405: every method a member
// serves (all of the default set when one takes the rest).
func groupAllow(g *group) string {
	if g.rest != nil {
		return defaultAllow
	}
	var ms []string
	for _, rt := range g.routes {
		for _, m := range rt.Methods {
			if !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
		if slices.Contains(rt.Methods, "GET") && !slices.Contains(ms, "HEAD") {
			ms = append(ms, "HEAD")
		}
	}
	return strings.Join(ms, ", ")
}

// Match returns the route for a request's host name (HostName's form),
// canonical path and method: routing.Matched and the route that serves
// them; routing.Matched and a route that does not serve the method (the
// caller answers 405 with its Allow); routing.NoRoute; or, unless upstreams
// are case-sensitive, routing.CaseMismatch and the route the path matches
// case-insensitively, which must not serve it: the path is spelt as another
// route (or none), and an upstream that ignores case would serve it as
// this one. It does not allocate.
func (t *Table) Match(host, path, method string) (*Route, routing.Result) {
	if host != "" {
		if tr := t.exact[host]; tr != nil {
			if rt, res := matchIn(tr, path, method); res != routing.NoRoute {
				return rt, res
			}
		}
		if suffix := wildcardSuffix(host); suffix != "" {
			if tr := t.wild[suffix]; tr != nil {
				if rt, res := matchIn(tr, path, method); res != routing.NoRoute {
					return rt, res
				}
			}
		}
	}
	if t.any == nil {
		return nil, routing.NoRoute
	}
	return matchIn(t.any, path, method)
}

func matchIn(tr *routing.Table[*group], path, method string) (*Route, routing.Result) {
	g, _, res := tr.Match(path)
	if res == routing.NoRoute {
		return nil, res
	}
	rt, _ := g.pick(method)
	return rt, res
}

// Routes lists the table's routes in config order.
func (t *Table) Routes() []*Route { return t.list }

// HostName returns the name of a request's host (http.Request.Host) as
// routes match it: without port and trailing dot, in lower case. It
// allocates only for a name that is not already in that form.
func HostName(host string) string {
	name := host
	if strings.HasPrefix(name, "[") { // IPv6 literal: no route matches it by name
		i := strings.IndexByte(name, ']')
		if i < 0 {
			// Unterminated: not a name either, and its port cannot be told
			// from its text. "[" matches no host route, with or without a
			// port ("[.example.com" once matched *.example.com, and
			// "[.example.com:8443" did not). plainHost refuses it wherever
			// routes choose by host.
			return "["
		}
		name = name[:i+1]
	} else if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// plainHost reports whether a request's host is a DNS name or an IP
// literal, with an optional trailing dot and numeric port, or empty
// (HTTP/1.0 without Host): the only hosts a table with host routes serves.
// Go's server already refuses hosts with bytes outside RFC 3986's
// authority (spaces, non-ASCII), not userinfo, "%" or sub-delims.
func plainHost(host string) bool {
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 || strings.Trim(host[1:end], "0123456789abcdefABCDEF:.") != "" {
			return false
		}
		name, port = "", host[end+1:]
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i:]
	}
	if port != "" && (port[0] != ':' || len(port) == 1 || strings.Trim(port[1:], "0123456789") != "") {
		return false
	}
	name = strings.TrimSuffix(name, ".")
	for len(name) > 0 {
		label, rest, more := strings.Cut(name, ".")
		if label == "" || more && rest == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i] | 0x20
			if !('a' <= c && c <= 'z' || '0' <= label[i] && label[i] <= '9' || label[i] == '-' || label[i] == '_') {
				return false
			}
		}
		name = rest
	}
	return true
}

// forwardedHost is the host the upstream is told the client asked for
// (X-Forwarded-Host, and Host with preserve_host): the request's host with
// its name as routes matched it and its port, if any, kept.
func forwardedHost(host, name string) string {
	port := ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		port = host[i:]
	}
	if len(host) == len(name)+len(port) && strings.HasPrefix(host, name) {
		return host // already in that form: no new string per request
	}
	return name + port
}

// wildcardSuffix is the name a "*.name" route must hold to cover host:
// host without its first label, or "" when it has none.
func wildcardSuffix(host string) string {
	if i := strings.IndexByte(host, '.'); i > 0 {
		return host[i+1:]
	}
	return ""
}
