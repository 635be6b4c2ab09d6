package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/authgateway/authgateway/internal/headertmpl"
	"github.com/authgateway/authgateway/internal/routing"
)

// routeKeys checks what routes may share: host and path when their methods
// are disjoint (at most one of them without methods, which takes the rest),
// and, unless upstreams are case-sensitive, no two paths on one host that
// differ only in case.
type routeKeys struct {
	v      *validator
	byPath map[string][]int // host + " " + canonical path → routes
	byFold map[string]int   // host + " " + folded path → latest route
}

func newRouteKeys(v *validator) *routeKeys {
	return &routeKeys{v: v, byPath: map[string][]int{}, byFold: map[string]int{}}
}

// add checks routes[i], whose path is canonical cp, against the earlier ones.
func (k *routeKeys) add(i int, r *Route, cp string) {
	v, path := k.v, fmt.Sprintf("routes[%d]", i)
	key := r.HostName + " " + cp
	for _, j := range k.byPath[key] {
		other := v.cfg.Routes[j]
		if len(r.Methods) == 0 && len(other.Methods) == 0 {
			v.errorf(path+".path", "duplicate path %q%s (also routes[%d]): routes may share a path only with disjoint methods", r.Path, onHost(r.Host), j)
			continue
		}
		if m, ok := sharedMethod(r.Methods, other.Methods); ok {
			v.errorf(path+".methods", "method %s overlaps routes[%d] on path %q%s: routes on one path need disjoint methods (GET also serves HEAD)", m, j, r.Path, onHost(r.Host))
		}
	}
	k.byPath[key] = append(k.byPath[key], i)
	if v.cfg.Server.CaseSensitiveUpstreams {
		return
	}
	fold := r.HostName + " " + routing.FoldPrefix(cp)
	if j, dup := k.byFold[fold]; dup && v.cfg.Routes[j].CanonicalPath != cp {
		v.errorf(path+".path", "path %q differs only in case from routes[%d].path %q: an upstream that ignores case cannot tell them apart (set server.case_sensitive_upstreams: true if no upstream does)",
			r.Path, j, v.cfg.Routes[j].Path)
	}
	k.byFold[fold] = i
}

func onHost(h string) string {
	if h == "" {
		return ""
	}
	return fmt.Sprintf(" on host %q", h)
}

// sharedMethod returns a method both lists serve; one empty list serves
// every method the other does not list, so it shares none.
func sharedMethod(a, b []string) (string, bool) {
	if len(a) == 0 || len(b) == 0 {
		return "", false
	}
	serves := func(ms []string, m string) bool {
		return slices.Contains(ms, m) || m == "HEAD" && slices.Contains(ms, "GET")
	}
	for _, m := range append(slices.Clone(a), "HEAD") {
		if serves(a, m) && serves(b, m) {
			return m, true
		}
	}
	return "", false
}

// routeExtras validates host, request_headers, remove_request_headers and
// response_headers of routes[i].
func (v *validator) routeExtras(path string, r *Route) {
	if r.Host != "" {
		if err := checkHostPattern(r.HostName); err != nil {
			v.errorf(path+".host", "%v", err)
		}
	}
	seen := map[string]string{}
	for _, name := range sortedKeys(r.RequestHeaders) {
		hp := path + ".request_headers." + name
		if msg := headerNameProblem(name, true); msg != "" {
			v.errorf(hp, "%s", msg)
		} else if other, dup := seen[foldHeaderName(name)]; dup {
			v.errorf(hp, "header %q is also set as %q: a lenient upstream reads both as one", name, other)
		}
		seen[foldHeaderName(name)] = name
		if _, err := headertmpl.Parse(r.RequestHeaders[name]); err != nil {
			v.errorf(hp, "%v", err)
		}
	}
	if r.StripPrefix {
		if _, ok := seen["x-forwarded-prefix"]; ok {
			v.errorf(path+".request_headers", "X-Forwarded-Prefix is set by the gateway with strip_prefix")
		}
	}
	for j, name := range r.RemoveRequestHeaders {
		if !validHeaderName(name) {
			v.errorf(fmt.Sprintf("%s.remove_request_headers[%d]", path, j), "%q is not a header name", name)
		}
	}
	for _, name := range sortedKeys(r.ResponseHeaders) {
		hp := path + ".response_headers." + name
		if msg := headerNameProblem(name, false); msg != "" {
			v.errorf(hp, "%s", msg)
		}
		if val := r.ResponseHeaders[name]; val == "" || strings.ContainsFunc(val, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			v.errorf(hp, "value must be non-empty and hold no control character")
		}
	}
}

// checkHostPattern checks a route host, in lower case without a trailing
// dot: a DNS name or IPv4 address, or "*." and a name (one more label).
func checkHostPattern(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if strings.ContainsAny(h, ":[]") {
		return fmt.Errorf("host %q: a name without port (the port is ignored when matching; IPv6 literals are not supported)", h)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("host %q: want a DNS name such as legacy.example.com, or *.example.com for exactly one more label", h)
		}
	}
	if name == h || strings.Contains(name, ".") {
		return nil
	}
	return fmt.Errorf("host %q: a wildcard needs at least two labels after \"*.\"", h)
}

// headerNameProblem says why a configured header name cannot be set by a
// route ("" when it can): the gateway's own headers, and the framing and
// routing headers of HTTP itself.
func headerNameProblem(name string, request bool) string {
	if !validHeaderName(name) {
		return fmt.Sprintf("%q is not a header name", name)
	}
	f := foldHeaderName(name)
	switch {
	case strings.HasPrefix(f, "x-auth-"):
		return fmt.Sprintf("%s: X-Auth-* are the gateway's identity headers", name)
	case slices.Contains([]string{"content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
		"proxy-connection", "host", "content-encoding"}, f):
		return fmt.Sprintf("%s: a framing header of HTTP itself cannot be set", name)
	case request && slices.Contains([]string{"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip", "x-request-id"}, f):
		return fmt.Sprintf("%s is set by the gateway", name)
	case !request && (strings.HasPrefix(f, "access-control-") || strings.HasPrefix(f, "ratelimit-") || slices.Contains([]string{"set-cookie",
		"content-type", "location", "www-authenticate", "retry-after", "allow", "vary", "x-request-id", "strict-transport-security"}, f)):
		// The route's response headers replace the upstream's copies and
		// go on the gateway's own answers: these carry one answer's meaning.
		return fmt.Sprintf("%s: set per answer by the upstream or the gateway, not per route", name)
	}
	return ""
}

// foldHeaderName is name in lower case with "_" read as "-", as CGI-style
// servers read it.
func foldHeaderName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
