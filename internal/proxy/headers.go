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
)

// isOwnedHeader reports whether a header name is one the gateway owns: any
// name that starts with X-Auth- in any case, also spelt with underscores
// (some servers and CGI-style frameworks treat _ and - alike).
func isOwnedHeader(name string) bool {
	if len(name) < 7 {
		return false
	}
	for i := 0; i < 7; i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != "x-auth-"[i] {
			return false
		}
	}
	return true
}

// stripOwnedHeaders deletes every inbound header the gateway owns.
func stripOwnedHeaders(h http.Header) {
	for name := range h {
		if isOwnedHeader(name) {
			delete(h, name)
		}
	}
}

// setIdentityHeaders writes the identity headers; unknown values are omitted.
func setIdentityHeaders(h http.Header, id *strategies.Identity) {
	// One backing array for every value slice: one allocation per request
	// instead of six. Each slice's capacity is its length, so an append by
	// anyone else copies rather than writing into a neighbour.
	vals := make([]string, 0, 6)
	set := func(name, v string) {
		vals = append(vals, v)
		n := len(vals)
		h[name] = vals[n-1 : n : n]
	}
	set(HeaderSubject, id.Subject)
	set(HeaderStrategy, id.Strategy)
	if id.Email != "" {
		set(HeaderEmail, id.Email)
	}
	if len(id.Roles) > 0 {
		set(HeaderRoles, strings.Join(id.Roles, ","))
	}
	if len(id.Scopes) > 0 {
		set(HeaderScopes, strings.Join(id.Scopes, " "))
	}
	if id.ClientID != "" {
		set(HeaderClientID, id.ClientID)
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
