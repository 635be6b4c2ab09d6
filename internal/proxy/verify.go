package proxy

import (
	"net/http"
)

// VerifyPath is the forward-auth endpoint for nginx auth_request and Traefik
// ForwardAuth.
const VerifyPath = "/auth/verify"

// serveVerify applies the route rules to the original request that a
// trusted reverse proxy describes in X-Original-URI / X-Original-Method
// (nginx) or X-Forwarded-Uri / X-Forwarded-Method (Traefik), authenticating
// with the credentials the proxy passed along. 200 carries the identity
// headers for the proxy to forward; 401/403 deny. Only a peer in
// server.trusted_proxies may ask: anyone else could describe any request.
func (g *Gateway) serveVerify(w http.ResponseWriter, r *http.Request, st *reqState) {
	st.ev.Route = "verify"
	var d Decision
	uri, method, ok := originalRequest(r.Header)
	switch {
	case !st.peerTrusted:
		d = refuse(http.StatusForbidden, OutcomeForbidden, ReasonUntrustedCaller, "forward-auth caller is not a trusted proxy")
	case !ok:
		d = refuse(http.StatusBadRequest, OutcomeBadRequest, ReasonBadOriginalRequest,
			"need one consistent X-Original-URI/X-Original-Method or X-Forwarded-Uri/X-Forwarded-Method pair")
	default:
		// Strategies and the login redirect look at the original method.
		orig := *r
		orig.Method = method
		st.ev.Method = method
		r = &orig
		d = g.decide(r, st, uri, w.Header(), doorVerify)
	}
	st.record(&d)
	if d.Status != 0 {
		g.answer(w, r, st, &d)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if st.identity != nil {
		g.setIdentity(headerSetter{h, &st.values}, st)
	}
	st.ev.Status = http.StatusOK
	w.WriteHeader(http.StatusOK)
}

// originalRequest reads the described request. A proxy may pass the
// client's own headers along (Traefik does unless told otherwise, nginx
// always), so a client could add the other proxy's pair to describe a
// different request than the one being forwarded: when both pairs are
// present they must agree, each pair must be complete (no default method),
// and a header must not be repeated.
func originalRequest(h http.Header) (uri, method string, ok bool) {
	type pair struct{ uri, method []string }
	pairs := []pair{
		{h.Values("X-Original-URI"), h.Values("X-Original-Method")},
		{h.Values("X-Forwarded-Uri"), h.Values("X-Forwarded-Method")},
	}
	for _, p := range pairs {
		if len(p.uri) == 0 && len(p.method) == 0 {
			continue
		}
		if len(p.uri) != 1 || len(p.method) != 1 || p.uri[0] == "" || p.method[0] == "" {
			return "", "", false
		}
		if uri != "" && (p.uri[0] != uri || p.method[0] != method) {
			return "", "", false
		}
		uri, method = p.uri[0], p.method[0]
	}
	return uri, method, uri != ""
}

// setIdentity writes the identity headers of st's identity to h, and the
// signed assertion (X-Auth-Token) when the route asks for one: the same for
// a forwarded request and for a forward-auth answer, whose proxy passes
// them on to the app.
func (g *Gateway) setIdentity(s headerSetter, st *reqState) {
	setIdentityHeaders(s, st.identity)
	rt := st.route
	setTemplatedHeaders(s, rt.RequestHeaders, st.identity)
	if !rt.IdentityToken || g.opts.Asserter == nil {
		return
	}
	tok, err := g.opts.Asserter.Assert(st.identity, rt.Name)
	if err != nil {
		// Without an assertion the upstream treats the request as unproven;
		// on a signing failure it gets none (and we log).
		g.opts.Logger.Error("signing identity assertion", "route", rt.Name, "error", err)
		return
	}
	s.set(HeaderToken, tok)
}
