package proxy

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// TransportOptions tunes the shared upstream transport.
type TransportOptions struct {
	// MaxIdleConnsPerHost sizes the keep-alive pool per upstream. Default 1024.
	MaxIdleConnsPerHost int
	// MaxConnsPerHost caps concurrent upstream connections. Default 0 (none).
	MaxConnsPerHost int
	// ResponseHeaderTimeout bounds the wait for upstream headers. Default 30s.
	ResponseHeaderTimeout time.Duration
}

// NewTransport returns the transport shared by every route. The stock
// http.DefaultTransport keeps only 2 idle connections per host, so under load
// a proxy would open and close a connection per request.
func NewTransport(o TransportOptions) *http.Transport {
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 1024
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = 30 * time.Second
	}
	return &http.Transport{
		Proxy: nil, // never route upstream traffic through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // bounded per host instead
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		MaxConnsPerHost:       o.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: 1 * time.Second,
		// Pass bodies through as the upstream encoded them.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
		// Every pooled upstream connection holds one read and one write
		// buffer for its lifetime (4 KiB each by default), and the GC's
		// headroom doubles what is held. Header blocks over 1 KiB cost an
		// extra read or write call, not correctness (a request with 1.7 KB
		// of browser headers: a few µs, within the noise of the benchmark),
		// and bodies bypass these buffers. 1 KiB instead of 4 KiB cut peak
		// RSS with 1,000 busy connections from about 105 to 93 MiB.
		ReadBufferSize:  1 << 10,
		WriteBufferSize: 1 << 10,
	}
}

// outboundHeaderRoom is how many headers rewrite may add besides the
// route's templates: X-Forwarded-For/-Host/-Proto/-Prefix, X-Real-Ip,
// X-Request-Id, the X-Auth-* identity headers (8 at most) and an assertion.
const outboundHeaderRoom = 15

func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*reqState)
	rt := st.route
	out := pr.Out

	// Forward exactly the path that was routed on: the canonical escaped
	// form, under the upstream's base path. Normalize guarantees it is a
	// valid escaping with no encoded '/', so Path and RawPath agree.
	raw := rt.upstreamPath + rt.upstreamRest(st.path)
	out.URL.Scheme, out.URL.Host = rt.Upstream.Scheme, rt.Upstream.Host
	if st.target != nil {
		out.URL.Scheme, out.URL.Host = st.target.URL.Scheme, st.target.URL.Host
	}
	out.URL.Opaque, out.URL.User, out.URL.Fragment = "", nil, ""
	// RawPath is always set: otherwise net/url would re-escape characters
	// such as '!' and the upstream would get another spelling than was routed.
	out.URL.RawPath = raw
	out.URL.Path = raw
	if strings.IndexByte(raw, '%') >= 0 {
		out.URL.Path = unescapePath(raw)
	}
	out.URL.RawQuery = st.query
	out.Host = ""
	if rt.PreserveHost {
		out.Host = st.forwardedHost()
	}

	// Out is a copy of In after takeHeaders: no header a client may not send
	// upstream is left in it. Trailers are only known here. Hop-by-hop
	// removal already ran on Out, so a "Connection: X-Auth-..." header
	// cannot remove what is set below.
	stripInboundHeaders(out.Trailer, rt)
	// A route with templates takes the outbound headers past what the
	// clone of the client's headers was sized for: one map of the final
	// size costs less than growing it (a plain route mostly fits).
	if len(rt.RequestHeaders) > 0 {
		want := len(out.Header) + outboundHeaderRoom + len(rt.RequestHeaders)
		h := make(http.Header, want)
		maps.Copy(h, out.Header)
		out.Header = h
	}
	dropH2CUpgrade(out.Header)
	removeHeaders(out.Header, rt.removed)

	hs := headerSetter{out.Header, &st.values}
	peer := hs.setForwarded(pr.In, st)
	if rt.StripPrefix && rt.Prefix != "/" {
		hs.set("X-Forwarded-Prefix", rt.Prefix)
	}
	hs.set("X-Real-Ip", realIP(st.ev.ClientIP, peer))

	if !rt.PassCredentials {
		for _, h := range rt.credHeaders {
			out.Header.Del(h)
		}
		removeCookies(out.Header, rt.credCookies)
	} else {
		removeCookies(out.Header, nil) // the gateway's own cookies never leave it
	}
	if st.identity != nil {
		g.setIdentity(hs, st)
	}
	hs.set("X-Request-Id", st.ev.RequestID)
}

// setForwarded sets the forwarding headers, which are the gateway's, by
// the rules of httputil.ProxyRequest.SetXForwarded (whose three values
// would cost an allocation each), with the host and scheme the gateway
// decided on:
//   - X-Forwarded-For: the peer's address, appended to a trusted proxy's
//     chain; none when the peer's address cannot be read;
//   - X-Forwarded-Host: the host that chose the route, in the form it was
//     matched;
//   - X-Forwarded-Proto: a trusted proxy's http or https, else the scheme
//     of the client's connection.
//
// It returns the peer's address as the connection gave it ("" if none).
func (s headerSetter) setForwarded(in *http.Request, st *reqState) (peer string) {
	peer, _, err := net.SplitHostPort(in.RemoteAddr)
	switch {
	case err != nil:
		peer = ""
		delete(s.h, "X-Forwarded-For")
	case len(st.forwardedFor) > 0:
		s.set("X-Forwarded-For", strings.Join(st.forwardedFor, ", ")+", "+peer)
	default:
		s.set("X-Forwarded-For", peer)
	}
	s.set("X-Forwarded-Host", st.forwardedHost())
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if p := st.forwardedProto; p == "https" || p == "http" {
		proto = p
	}
	s.set("X-Forwarded-Proto", proto)
	return peer
}

// realIP is ip as text: peer itself when it is ip's canonical form (the
// client is the peer, and the connection's address needs no new string).
func realIP(ip netip.Addr, peer string) string {
	var buf [48]byte
	if peer != "" && string(ip.AppendTo(buf[:0])) == peer {
		return peer
	}
	return ip.String()
}

// upstreamRest is the part of a canonical path the upstream gets under its
// base path: all of it, or with strip_prefix what follows the route's
// prefix ("/legacy/a" → "/a", "/legacy" → "/"), escapes untouched.
func (rt *Route) upstreamRest(path string) string {
	if !rt.StripPrefix || rt.Prefix == "/" {
		return path
	}
	if rest := path[len(rt.Prefix):]; rest != "" {
		return rest
	}
	return "/"
}

// forwardedHost is the request's host with its name as matched (lower
// case, no trailing dot) and its port kept.
func (st *reqState) forwardedHost() string { return forwardedHost(st.host, st.hostName) }

func (g *Gateway) modifyResponse(resp *http.Response) error {
	if st, ok := resp.Request.Context().Value(stateKey{}).(*reqState); ok {
		// The route's response_headers are already on the answer (decide):
		// the upstream's own copies would be added beside them.
		for name := range st.route.ResponseHeaders {
			delete(resp.Header, name)
		}
		st.ev.Status = resp.StatusCode
		if st.route.CORS != nil {
			stripUpstreamCORS(resp.Header)
		}
		st.ev.UpstreamDuration = time.Since(st.ev.forwardStart)
	}
	return nil
}

func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	if st == nil {
		st = &reqState{}
	}
	st.ev.UpstreamDuration = time.Since(st.ev.forwardStart)
	if errors.Is(r.Context().Err(), context.Canceled) {
		st.ev.Status, st.ev.Reason = 499, ReasonClientClosed // nginx's code for a client that went away
		return
	}
	status, reason, msg := http.StatusBadGateway, ReasonUpstreamUnavailable, "upstream unavailable"
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status, reason, msg = http.StatusGatewayTimeout, ReasonUpstreamTimeout, "upstream timeout"
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		status, reason, msg = http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "request body too large"
	}
	g.opts.Logger.LogAttrs(r.Context(), slog.LevelWarn, "upstream error",
		slog.String("route", st.ev.Route), slog.String("request_id", st.ev.RequestID), slog.String("error", err.Error()))
	st.ev.Status, st.ev.Reason = status, reason
	writeError(w, r, status, msg)
}

// dropH2CUpgrade removes h2c from a forwarded upgrade: an upstream that
// honoured it would switch the connection to HTTP/2 and take any request the
// client sent on it, past the gateway. ReverseProxy has replaced Connection
// with "Upgrade" and Upgrade with the client's list; other protocols in the
// list (WebSocket) stay. The request then goes on as plain HTTP/1.1, as
// RFC 9110 lets a server ignore an upgrade.
func dropH2CUpgrade(h http.Header) {
	vals := h["Upgrade"]
	if len(vals) == 0 {
		return
	}
	var kept []string
	found := false
	for _, v := range vals {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			proto, _, _ := strings.Cut(p, "/")
			switch {
			case strings.EqualFold(strings.TrimSpace(proto), "h2c"):
				found = true
			case p != "":
				kept = append(kept, p)
			}
		}
	}
	if !found {
		return
	}
	if len(kept) == 0 {
		delete(h, "Upgrade")
		delete(h, "Connection")
		return
	}
	h["Upgrade"] = []string{strings.Join(kept, ", ")}
}

// unescapePath decodes a canonical escaped path. Normalize only lets through
// valid escapes that do not decode to '/', so this cannot fail or change the
// segment structure.
func unescapePath(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// bufferPool recycles the copy buffers of ReverseProxy. It pools array
// pointers: a slice put back as *[]byte would cost a new slice header on
// the heap every time, and ReverseProxy returns the slice it got.
type bufferPool struct{ p sync.Pool }

type copyBuffer [16 << 10]byte

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new(copyBuffer) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*copyBuffer)[:] }

func (b *bufferPool) Put(p []byte) {
	if len(p) == len(copyBuffer{}) {
		b.p.Put((*copyBuffer)(p))
	}
}
