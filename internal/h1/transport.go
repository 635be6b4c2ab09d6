// Package h1 sends the gateway's simple forwarded requests — GET, HEAD or
// OPTIONS with no body and no upgrade, to a plain-HTTP upstream — over
// keep-alive HTTP/1.1 connections of its own, written and read by the
// goroutine that forwards the request. http.Transport runs two goroutines
// per connection and hands every request and response between them over
// channels; at the gateway's rates those hand-offs and wake-ups were a
// measurable part of each request's CPU. Every other request (a body, an
// upgrade, TLS, a connection cap) goes to the http.Transport it wraps,
// whose settings it shares: dialer, idle pool size and timeout, response
// header timeout and size limit.
//
// http.Transport keeps a read pending on every idle connection, and so
// learns at once that the upstream closed one or sent bytes nobody asked
// for. Here an idle connection is looked at (one non-blocking peek) when
// it is taken for a request, and dropped for either; one the upstream
// closes in the instant between is found by the request, which (a GET,
// HEAD or OPTIONS that received nothing) is sent again on a new
// connection, as http.Transport does.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Defaults as http.Transport's when its fields are zero.
const (
	defaultMaxIdlePerHost = http.DefaultMaxIdleConnsPerHost
	defaultMaxHeaderBytes = 10 << 20
	// max1xx bounds the informational answers before the final one.
	max1xx = 5
	// bufSize is the pooled read and write buffers' size. An idle
	// connection holds neither: they are taken for a request and given
	// back when its answer has been read.
	bufSize = 4 << 10
)

// Transport is an http.RoundTripper; see the package comment.
type Transport struct {
	fallback       *http.Transport
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdlePerHost int
	idleTimeout    time.Duration
	headerTimeout  time.Duration
	maxHeaderBytes int64
	// off sends everything to fallback: a per-host connection cap is
	// http.Transport's to keep, and one pool must count every connection.
	off bool

	readers sync.Pool // *bufio.Reader
	writers sync.Pool // *bufio.Writer

	mu     sync.Mutex
	idle   map[string]*hostIdle // by the URL's host[:port]
	sweeps bool                 // a sweep of idle connections is scheduled
}

// hostIdle is one upstream's idle connections, the most recent last.
type hostIdle struct{ conns []*conn }

// New returns a Transport sending what it does not handle with fallback,
// whose settings it reads now (later changes to fallback are not seen).
func New(fallback *http.Transport) *Transport {
	t := &Transport{
		fallback:       fallback,
		dial:           fallback.DialContext,
		maxIdlePerHost: fallback.MaxIdleConnsPerHost,
		idleTimeout:    fallback.IdleConnTimeout,
		headerTimeout:  fallback.ResponseHeaderTimeout,
		maxHeaderBytes: fallback.MaxResponseHeaderBytes,
		off:            fallback.MaxConnsPerHost > 0 || fallback.Proxy != nil || fallback.DialTLSContext != nil,
		idle:           map[string]*hostIdle{},
	}
	if t.dial == nil {
		var d net.Dialer
		t.dial = d.DialContext
	}
	if t.maxIdlePerHost <= 0 {
		t.maxIdlePerHost = defaultMaxIdlePerHost
	}
	if t.maxHeaderBytes <= 0 {
		t.maxHeaderBytes = defaultMaxHeaderBytes
	}
	t.readers.New = func() any { return bufio.NewReaderSize(nil, bufSize) }
	t.writers.New = func() any { return bufio.NewWriterSize(nil, bufSize) }
	return t
}

// Handles reports whether req is sent on the Transport's own connections
// rather than the fallback's.
func (t *Transport) Handles(req *http.Request) bool {
	if t.off || req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	if (req.Body != nil && req.Body != http.NoBody) || req.ContentLength != 0 ||
		len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 || req.Close {
		return false
	}
	// An upgrade (ReverseProxy keeps Connection only for one) is
	// http.Transport's: the connection becomes the response's body.
	if _, ok := req.Header["Upgrade"]; ok {
		return false
	}
	if _, ok := req.Header["Connection"]; ok {
		return false
	}
	// A name to be converted to punycode for dialing is the fallback's.
	for i := 0; i < len(req.URL.Host); i++ {
		if req.URL.Host[i] >= 0x80 {
			return false
		}
	}
	return true
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.Handles(req) {
		return t.fallback.RoundTrip(req)
	}
	if err := validHeaders(req.Header); err != nil {
		return nil, err
	}
	ctx := req.Context()
	fresh := false
	for {
		c, reused, err := t.get(ctx, req.URL, fresh)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		c.close()
		// A reused connection that the upstream had closed fails before
		// a byte of the answer: the request did not reach it, and a
		// GET, HEAD or OPTIONS is sent again, once, on a new connection.
		if reused && c.received == 0 && ctx.Err() == nil && !c.timedOut && retryable(err) {
			fresh = true
			continue
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
}

// retryable reports whether err is how a connection closed by its peer
// shows itself: EOF, a reset, a broken pipe.
func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || isConnReset(err)
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// dialAddr is u's host with its port, 80 when the URL has none.
func dialAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// validHeaders refuses what http.Transport refuses to write: a header
// name or value that is not valid HTTP (a value with CR or LF would
// otherwise be written with them replaced, not refused). The value is
// never in the error: it may be a credential.
func validHeaders(h http.Header) error {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("forward request: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("forward request: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

// get returns an idle connection to u's host (reused true), or a new one.
// fresh skips the idle ones.
func (t *Transport) get(ctx context.Context, u *url.URL, fresh bool) (*conn, bool, error) {
	host := u.Host
	for !fresh {
		c := t.pop(host)
		if c == nil {
			break
		}
		if t.idleTimeout > 0 && time.Since(c.idleSince) > t.idleTimeout || !c.probe.quiet() {
			c.close()
			continue
		}
		return c, true, nil
	}
	nc, err := t.dial(ctx, "tcp", dialAddr(u))
	if err != nil {
		return nil, false, err
	}
	c := &conn{t: t, host: host, nc: nc, probe: newIdleProbe(nc)}
	c.abortFn = c.abort
	return c, false, nil
}

// pop takes host's most recently used idle connection, nil if none.
func (t *Transport) pop(host string) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.idle[host]
	if h == nil || len(h.conns) == 0 {
		return nil
	}
	c := h.conns[len(h.conns)-1]
	h.conns[len(h.conns)-1] = nil
	h.conns = h.conns[:len(h.conns)-1]
	return c
}

// put keeps c for reuse, or closes it when its host's pool is full.
func (t *Transport) put(c *conn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	h := t.idle[c.host]
	if h == nil {
		h = &hostIdle{}
		t.idle[c.host] = h
	}
	if len(h.conns) >= t.maxIdlePerHost {
		t.mu.Unlock()
		c.close()
		return
	}
	h.conns = append(h.conns, c)
	sweep := !t.sweeps && t.idleTimeout > 0
	t.sweeps = t.sweeps || sweep
	t.mu.Unlock()
	if sweep {
		time.AfterFunc(t.idleTimeout, t.sweep)
	}
}

// sweep closes the connections idle longer than the idle timeout, and
// comes back while any are left: an upstream that is no longer called
// does not keep its connections, or the gateway its descriptors.
func (t *Transport) sweep() {
	cutoff := time.Now().Add(-t.idleTimeout)
	var stale []*conn
	t.mu.Lock()
	left := 0
	for host, h := range t.idle {
		// The oldest are first: the pool is used from its end.
		n := 0
		for n < len(h.conns) && !h.conns[n].idleSince.After(cutoff) {
			n++
		}
		stale = append(stale, h.conns[:n]...)
		h.conns = append(h.conns[:0], h.conns[n:]...)
		clear(h.conns[len(h.conns):cap(h.conns)])
		if len(h.conns) == 0 {
			delete(t.idle, host)
		}
		left += len(h.conns)
	}
	t.sweeps = left > 0
	t.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
	if left > 0 {
		time.AfterFunc(t.idleTimeout, t.sweep)
	}
}

// CloseIdleConnections closes the idle connections, its own and the
// fallback's.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string]*hostIdle{}
	t.mu.Unlock()
	for _, h := range idle {
		for _, c := range h.conns {
			c.close()
		}
	}
	t.fallback.CloseIdleConnections()
}

// conn is one upstream connection. Between a request and the end of its
// answer it belongs to that request alone.
type conn struct {
	t         *Transport
	host      string
	nc        net.Conn
	probe     *idleProbe
	idleSince time.Time

	// For the request on it now.
	br       *bufio.Reader
	lr       limitedReader
	received int64 // bytes of the answer read
	aborted  atomic.Bool
	timedOut bool
	stop     func() bool // stops the context's abort
	// abortFn is c.abort as a func value, made once per connection
	// rather than once per request.
	abortFn func()
}

// roundTrip writes req and reads the answer's head. On success the
// answer's body (or, for none, roundTrip itself) gives the connection back.
func (c *conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	c.received, c.timedOut = 0, false
	c.aborted.Store(false)
	c.stop = context.AfterFunc(ctx, c.abortFn)

	bw := c.t.writers.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	c.t.writers.Put(bw)
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("forward request: write: %w", err)
	}

	if c.t.headerTimeout > 0 {
		c.setReadDeadline(time.Now().Add(c.t.headerTimeout))
	}
	c.lr = limitedReader{c: c, left: c.t.maxHeaderBytes}
	c.br = c.t.readers.Get().(*bufio.Reader)
	c.br.Reset(&c.lr)
	resp, err := c.readHead(ctx, req)
	if err != nil {
		c.stop()
		c.releaseBuffer()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !c.aborted.Load() {
			c.timedOut = true
			err = fmt.Errorf("forward request: no response headers within %s: %w", c.t.headerTimeout, err)
		}
		return nil, err
	}
	c.lr.left = -1 // the body is not limited
	if c.t.headerTimeout > 0 {
		c.setReadDeadline(time.Time{})
	}
	if resp.Body == http.NoBody {
		c.finish(!resp.Close)
		return resp, nil
	}
	resp.Body = &body{c: c, rc: resp.Body, close: resp.Close}
	return resp, nil
}

// readHead reads the final answer's head, handing informational answers
// (103 Early Hints) to the request's client trace as http.Transport does.
func (c *conn) readHead(ctx context.Context, req *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if c.lr.left == 0 {
				return nil, fmt.Errorf("forward request: response headers exceed %d bytes", c.t.maxHeaderBytes)
			}
			return nil, fmt.Errorf("forward request: read response: %w", err)
		}
		code := resp.StatusCode
		if code < 100 || code >= 200 {
			return resp, nil
		}
		if code == http.StatusSwitchingProtocols {
			return nil, errors.New("forward request: 101 Switching Protocols to a request without an upgrade")
		}
		if n+1 >= max1xx {
			return nil, errors.New("forward request: too many 1xx responses")
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
		c.lr.left = c.t.maxHeaderBytes
	}
}

// setReadDeadline sets d unless the request was aborted, whose deadline
// in the past stands.
func (c *conn) setReadDeadline(d time.Time) {
	_ = c.nc.SetReadDeadline(d)
	if c.aborted.Load() {
		_ = c.nc.SetDeadline(aLongTimeAgo)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// abort wakes a read or write blocked on the connection: the request's
// context is done.
func (c *conn) abort() {
	c.aborted.Store(true)
	_ = c.nc.SetDeadline(aLongTimeAgo)
}

// finish ends the request on c: the connection goes back to the pool when
// reusable and the answer was read to its end with nothing after it (an
// upstream that sent more than it was asked would otherwise answer the
// next request with it).
func (c *conn) finish(reusable bool) {
	stopped := c.stop()
	reusable = reusable && stopped && !c.aborted.Load() && c.br.Buffered() == 0
	c.releaseBuffer()
	if reusable {
		c.t.put(c)
		return
	}
	c.close()
}

func (c *conn) releaseBuffer() {
	if c.br != nil {
		c.br.Reset(nil)
		c.t.readers.Put(c.br)
		c.br = nil
	}
}

func (c *conn) close() { _ = c.nc.Close() }

// limitedReader reads c's connection, at most left bytes while left ≥ 0
// (the answer's head), and counts what it read.
type limitedReader struct {
	c    *conn
	left int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, errHeadTooLarge
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.c.nc.Read(p)
	r.c.received += int64(n)
	if r.left > 0 {
		r.left -= int64(n)
	}
	return n, err
}

var errHeadTooLarge = errors.New("response headers too large")

// body is an answer's body: read to its end, it gives the connection back.
type body struct {
	mu    sync.Mutex
	c     *conn // nil once given back or closed
	rc    io.ReadCloser
	close bool // the upstream will close the connection
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.c.finish(!b.close)
		b.c = nil
	case err != nil:
		if b.c.aborted.Load() {
			err = fmt.Errorf("forward request: read response body: %w", context.Canceled)
		}
		b.c.finish(false)
		b.c = nil
	}
	return n, err
}

// Close gives up the rest of the answer, and the connection with it.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		b.c.finish(false)
		b.c = nil
	}
	return nil
}

var errBodyClosed = errors.New("http: read on closed response body")
