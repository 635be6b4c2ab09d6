package proxy

import (
	"net/http"
	"strings"

	"github.com/authgateway/authgateway/internal/strategies"
)

// Identity headers sent to upstreams (contract).
const (
	HeaderSubject  = "X-Auth-Subject"
	HeaderEmail    = "X-Auth-Email"
	HeaderRoles    = "X-Auth-Roles"
	HeaderScopes   = "X-Auth-Scopes"
	HeaderClientID = "X-Auth-Client-Id"
	HeaderStrategy = "X-Auth-Strategy"
	// HeaderToken carries the optional signed identity assertion.
	HeaderToken = "X-Auth-Token"
	// HeaderClientCertSHA256 and HeaderClientCertSubject describe the
	// verified client certificate of an mtls identity: its SHA-256
	// fingerprint (hex) and subject DN. X-Auth-* like the others, so a
	// client's own copies are deleted.
	HeaderClientCertSHA256  = "X-Auth-Client-Cert-Sha256"
	HeaderClientCertSubject = "X-Auth-Client-Cert-Subject"
)

// headerClass is what the gateway does with a header a client sent.
type headerClass uint8

const (
	// headerForward: passed to the upstream as is.
	headerForward headerClass = iota
	// headerOwned: X-Auth-*, the identity only the gateway sets.
	headerOwned
	// headerDeleted: names that upstreams and their frameworks trust for
	// identity, path, method, the client's address, scheme or host, or a
	// client certificate (DESIGN.md's lists), and HTTP2-Settings: never
	// forwarded.
	headerDeleted
	// headerGatewaySet: the forwarding headers the gateway sets itself
	// (X-Forwarded-For/-Proto/-Host, Forwarded, X-Real-IP, X-Request-Id). A
	// client's copy is never forwarded: only the gateway's value, in its
	// canonical spelling, reaches the upstream.
	headerGatewaySet
	// headerTemplated: a name the route sets from the identity
	// (request_headers), like X-Auth-*.
	headerTemplated
)

// maxListedName is the length of the longest listed name,
// X-Forwarded-Preferred-Username.
const maxListedName = 30

// classifyHeader says what happens to a header a client sent. Names are
// compared with "_" read as "-" and in any ASCII case, because CGI-style
// servers (wsgiref, PHP, Rack) turn both spellings into one variable,
// HTTP_X_FORWARDED_FOR, and join their values: "X_Forwarded_For" is
// X-Forwarded-For. It does not allocate.
func classifyHeader(name string) headerClass {
	if len(name) < len("x-host") { // the shortest listed name
		return headerForward
	}
	// Every listed name starts with one of these letters: most browser
	// headers (Accept*, Sec-*, User-Agent, ...) stop here.
	switch name[0] | 0x20 {
	case 'x', 'r', 'c', 'f', 't', 'h':
	default:
		return headerForward
	}
	var buf [maxListedName]byte
	n := min(len(name), len(buf))
	for i := range n {
		c := name[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	folded := buf[:n]
	switch {
	case hasPrefix(folded, "x-auth-"):
		return headerOwned
	case hasPrefix(folded, "x-ssl-client-"), hasPrefix(folded, "x-client-cert"):
		return headerDeleted
	case len(name) > len(buf):
		return headerForward
	}
	switch string(folded) {
	case "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip", "x-request-id":
		return headerGatewaySet
	case
		// Identity, trusted by apps behind oauth2-proxy, Apache, Grafana's
		// auth proxy and legacy apps.
		"x-forwarded-user", "x-forwarded-email", "x-forwarded-preferred-username", "x-forwarded-groups",
		"x-forwarded-access-token", "remote-user", "x-remote-user", "x-webauth-user",
		// Path, trusted by IIS, Zend, Symfony (before 4.1), Envoy and
		// prefix-aware frameworks.
		"x-original-url", "x-original-uri", "x-rewrite-url", "x-forwarded-uri", "x-forwarded-path",
		"x-forwarded-prefix", "x-envoy-original-path",
		// Method overrides (Express, Rack, ASP.NET, Google APIs).
		"x-http-method-override", "x-http-method", "x-method-override",
		// The client's address, scheme, host or certificate.
		"client-ip", "x-proxyuser-ip", "true-client-ip", "x-client-ip", "cf-connecting-ip", "fastly-client-ip",
		"x-cluster-client-ip", "x-originating-ip", "x-forwarded-port", "x-forwarded-scheme", "x-forwarded-ssl",
		"front-end-https", "x-url-scheme", "x-original-host", "x-host", "x-forwarded-server", "x-forwarded-client-cert",
		// An h2c upgrade's settings: the upgrade itself is dropped at rewrite.
		"http2-settings":
		return headerDeleted
	}
	return headerForward
}

// hasPrefix is bytes.HasPrefix for a string prefix, without a conversion.
func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// classify is classifyHeader for a request on rt: the names of the route's
// request_headers are the gateway's too (headerTemplated), in any case and
// "_" spelling. rt may be nil (no route yet).
func (rt *Route) classify(name string) headerClass {
	if c := classifyHeader(name); c != headerForward || rt == nil {
		return c
	}
	for _, t := range rt.templated {
		if sameName(name, t) {
			return headerTemplated
		}
	}
	return headerForward
}

// sameName reports whether a header name is folded (lower case, "-"), as
// CGI-style servers read names: "X_WebAuth_User" is "x-webauth-user".
func sameName(name, folded string) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != folded[i] {
			return false
		}
	}
	return true
}

// foldName is the form sameName compares with.
func foldName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// stripInboundHeaders deletes, in one pass, every header a client may not
// send to an upstream of rt (nil: before a route is known): owned, deleted,
// gateway-set and the route's templated names in any spelling.
func stripInboundHeaders(h http.Header, rt *Route) {
	for name := range h {
		if rt.classify(name) != headerForward {
			delete(h, name)
		}
	}
}

// removeHeaders deletes the names of folded from h in any case and "_"
// spelling (remove_request_headers).
func removeHeaders(h http.Header, folded []string) {
	if len(folded) == 0 {
		return
	}
	for name := range h {
		for _, f := range folded {
			if sameName(name, f) {
				delete(h, name)
				break
			}
		}
	}
}

// headerValues holds the values of the single-valued headers the gateway
// sets on a request: the response's X-Request-Id, and on the forwarded
// request the forwarding, identity and templated headers. They live in
// the request's state (reqState) instead of one allocation per header.
// Each value slice handed out has capacity equal to its length, so an
// append by anyone else copies rather than writing into a neighbour; past
// len(buf) values, append moves on to a new array and the slices already
// handed out keep theirs.
type headerValues struct {
	buf  [16]string
	vals []string // buf, or the array that took over from it
}

func (v *headerValues) set(h http.Header, name, val string) {
	if v.vals == nil {
		v.vals = v.buf[:0]
	}
	v.vals = append(v.vals, val)
	n := len(v.vals)
	h[name] = v.vals[n-1 : n : n]
}

// headerSetter sets single-valued headers on h from v.
type headerSetter struct {
	h http.Header
	v *headerValues
}

func (s headerSetter) set(name, val string) { s.v.set(s.h, name, val) }

// setIdentityHeaders writes the identity headers; unknown values are omitted.
func setIdentityHeaders(s headerSetter, id *strategies.Identity) {
	s.set(HeaderSubject, id.Subject)
	s.set(HeaderStrategy, id.Strategy)
	if id.Email != "" {
		s.set(HeaderEmail, id.Email)
	}
	if len(id.Roles) > 0 {
		s.set(HeaderRoles, strings.Join(id.Roles, ","))
	}
	if len(id.Scopes) > 0 {
		s.set(HeaderScopes, strings.Join(id.Scopes, " "))
	}
	if id.ClientID != "" {
		s.set(HeaderClientID, id.ClientID)
	}
	if c := id.ClientCert; c != nil {
		s.set(HeaderClientCertSHA256, c.Fingerprint)
		if c.Subject != "" {
			s.set(HeaderClientCertSubject, c.Subject)
		}
	}
}

// GatewayCookiePrefix starts the names of every cookie the gateway sets
// (session access and refresh tokens, login state): never for upstreams.
const GatewayCookiePrefix = "__Host-authgw_"

// removeCookies drops the named cookies, and every cookie of the gateway's
// own, from the Cookie header(s), keeping the others for the upstream.
func removeCookies(h http.Header, names []string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	if len(names) == 0 && !strings.Contains(strings.Join(lines, ";"), GatewayCookiePrefix) {
		return
	}
	var kept []string
	for _, line := range lines {
		for _, part := range strings.Split(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			name, _, _ := strings.Cut(p, "=")
			drop := strings.HasPrefix(strings.TrimSpace(name), GatewayCookiePrefix)
			for _, n := range names {
				if strings.TrimSpace(name) == n {
					drop = true
					break
				}
			}
			if !drop {
				kept = append(kept, p)
			}
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(kept, "; ")}
}

// setTemplatedHeaders renders a route's request_headers for id; a header
// whose template has no value for id (or one with a control character) is
// not sent. Every value is rendered into one buffer and cut from one
// string, and the value slices share one backing array: two allocations
// per request however many templates.
func setTemplatedHeaders(s headerSetter, tmpls []HeaderTemplate, id *strategies.Identity) {
	if len(tmpls) == 0 {
		return
	}
	var (
		buf  [512]byte
		ends [16]int // where each template's value ends in out; -1: not sent
	)
	if len(tmpls) > len(ends) { // more than a route would set: the plain way
		for _, t := range tmpls {
			if v, ok := t.Template.Append(nil, id); ok {
				s.set(t.Name, string(v))
			}
		}
		return
	}
	out := buf[:0]
	for i, t := range tmpls {
		var ok bool
		// Append leaves out as it was when it sends nothing.
		if out, ok = t.Template.Append(out, id); ok {
			ends[i] = len(out)
		} else {
			ends[i] = -1
		}
	}
	all := string(out)
	start := 0
	for i, t := range tmpls {
		if ends[i] < 0 {
			continue
		}
		s.set(t.Name, all[start:ends[i]])
		start = ends[i]
	}
}
