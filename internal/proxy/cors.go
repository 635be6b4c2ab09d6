package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORSPolicy is a route's compiled cross-origin policy.
type CORSPolicy struct {
	origins      map[string]bool // exact match only: no suffix, regex or "null" surprises
	anyOrigin    bool
	methods      []string
	allowMethods string
	headers      map[string]bool // lower-case
	allowHeaders string
	expose       string
	credentials  bool
	maxAge       string
}

// NewCORSPolicy compiles a policy. Origins are compared byte for byte with
// the browser's Origin header; "*" allows any origin but never with
// credentials (config validation refuses that combination).
func NewCORSPolicy(origins, methods, headers, expose []string, credentials bool, maxAge time.Duration) *CORSPolicy {
	p := &CORSPolicy{origins: map[string]bool{}, headers: map[string]bool{}, credentials: credentials}
	for _, o := range origins {
		if o == "*" && !credentials {
			p.anyOrigin = true
			continue
		}
		p.origins[o] = true
	}
	p.methods = slices.Clone(methods)
	p.allowMethods = strings.Join(methods, ", ")
	for _, h := range headers {
		p.headers[strings.ToLower(h)] = true
	}
	p.allowHeaders = strings.Join(headers, ", ")
	p.expose = strings.Join(expose, ", ")
	p.maxAge = strconv.Itoa(int(maxAge.Seconds()))
	return p
}

func (p *CORSPolicy) allowedOrigin(origin string) bool {
	return origin != "" && (p.anyOrigin || p.origins[origin])
}

// isPreflight reports a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight judges a preflight, which needs no authentication: true (the
// gateway answers 204) with the policy's headers in h when origin, method
// and headers are allowed; false (403) otherwise.
func (p *CORSPolicy) preflight(h http.Header, r *http.Request) (ok bool) {
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	if !p.allowedOrigin(origin) || !slices.Contains(p.methods, r.Header.Get("Access-Control-Request-Method")) {
		return false
	}
	for _, line := range r.Header.Values("Access-Control-Request-Headers") {
		for _, name := range strings.Split(line, ",") {
			if n := strings.ToLower(strings.TrimSpace(name)); n != "" && !p.headers[n] {
				return false
			}
		}
	}
	p.setOrigin(h, origin)
	h.Set("Access-Control-Allow-Methods", p.allowMethods)
	if p.allowHeaders != "" {
		h.Set("Access-Control-Allow-Headers", p.allowHeaders)
	}
	h.Set("Access-Control-Max-Age", p.maxAge)
	return true
}

// decorate adds the CORS response headers for an actual (non-preflight)
// request, on gateway answers and forwarded ones alike.
func (p *CORSPolicy) decorate(h http.Header, origin string) {
	h.Add("Vary", "Origin")
	if !p.allowedOrigin(origin) {
		return
	}
	p.setOrigin(h, origin)
	if p.expose != "" {
		h.Set("Access-Control-Expose-Headers", p.expose)
	}
}

func (p *CORSPolicy) setOrigin(h http.Header, origin string) {
	if p.anyOrigin && !p.origins[origin] {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// stripUpstreamCORS removes an upstream's own CORS headers on a route whose
// policy the gateway enforces, so the two cannot combine into a looser one.
func stripUpstreamCORS(h http.Header) {
	for name := range h {
		if strings.HasPrefix(name, "Access-Control-") {
			delete(h, name)
		}
	}
}
