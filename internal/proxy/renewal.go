package proxy

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
)

// renewal is a session rotation running beside the request whose access
// token fell due (still valid): the rotation's round trip to the session
// store overlaps the upstream's instead of adding to it. The request is
// authorized by the token it carries, as it would have been a moment
// earlier; the rotation only gives the browser its next cookies, so the
// response waits for them (renewalWriter). A rotation that fails leaves the
// request as it would be without one: a refused one (a reused refresh
// token) clears the cookies and, as in the sequential order, does not
// recall a request its still-valid token authorized.
type renewal struct {
	done   chan struct{}
	header http.Header // the renewer's response headers: Set-Cookie, Cache-Control
}

// startRenewal rotates r's session in the background. The renewer gets a
// copy of r (the forwarded request's headers are rewritten meanwhile) with
// r's context, which carries the request's state.
func (g *Gateway) startRenewal(r *http.Request) *renewal {
	rn := &renewal{done: make(chan struct{}), header: make(http.Header, 2)}
	rc := r.Clone(r.Context())
	go func() {
		defer close(rn.done)
		defer func() {
			// Not the connection's goroutine: a panic here would end the
			// process. The browser keeps its cookies; its token is still valid.
			if p := recover(); p != nil {
				clear(rn.header)
				g.opts.Logger.LogAttrs(rc.Context(), slog.LevelError, "session renewal panicked", slog.String("panic", fmt.Sprint(p)))
			}
		}()
		g.opts.Sessions.Renew(rc, rn.header, true)
	}()
	return rn
}

// wait blocks until the rotation is over.
func (rn *renewal) wait() { <-rn.done }

// mergeInto waits for the rotation and adds its headers to h: its cookies
// beside any the upstream set, and its Cache-Control in place of the
// upstream's (a response that sets session cookies is never stored).
func (rn *renewal) mergeInto(h http.Header) {
	rn.wait()
	for k, vs := range rn.header {
		if k == "Set-Cookie" {
			h[k] = append(h[k], vs...)
			continue
		}
		h[k] = vs
	}
}

// renewalWriter holds back the response head until the renewal beside the
// request is over, then adds its cookies: whatever writes the response (the
// upstream's through ReverseProxy, its error, a refusal after the
// strategies, an upgrade), the browser gets them.
type renewalWriter struct {
	http.ResponseWriter
	rn     *renewal
	merged bool
}

func (w *renewalWriter) merge() {
	if !w.merged {
		w.merged = true
		w.rn.mergeInto(w.ResponseWriter.Header())
	}
}

func (w *renewalWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.merge() // not before an informational (1xx) head: the final one carries them
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *renewalWriter) Write(b []byte) (int, error) {
	w.merge()
	return w.ResponseWriter.Write(b)
}

// Flush and Hijack are found by http.ResponseController before Unwrap: a
// flush writes the head, and an upgrade writes it itself after hijacking.
func (w *renewalWriter) Flush() { _ = w.FlushError() }

func (w *renewalWriter) FlushError() error {
	w.merge()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *renewalWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.merge()
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *renewalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
