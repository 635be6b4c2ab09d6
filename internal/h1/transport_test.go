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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/deadaddr"
)

// rawUpstream is a TCP server on loopback whose every connection is served
// by handle: for upstreams that misbehave in ways net/http will not.
type rawUpstream struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

func newRawUpstream(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); u.wg.Wait() })
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.ln.Addr().String() }

// httpUpstream is a net/http server on loopback counting its connections.
type httpUpstream struct {
	url   string
	conns atomic.Int64
	open  atomic.Int64
}

func newHTTPUpstream(t testing.TB, h http.Handler) *httpUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &httpUpstream{url: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.conns.Add(1)
			u.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			u.open.Add(-1)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return u
}

func newTransport(t testing.TB, mod func(*http.Transport)) *Transport {
	base := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	if mod != nil {
		mod(base)
	}
	tr := New(base)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func get(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url string, h http.Header) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, string(b), err
	}
	return resp, string(b), nil
}

func idleCount(tr *Transport) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, h := range tr.idle {
		n += len(h.conns)
	}
	return n
}

func TestReusesOneConnectionAndForwardsExactly(t *testing.T) {
	var seen atomic.Value
	up := newHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Clone())
		w.Header().Set("X-Answer", r.URL.RequestURI())
		_, _ = io.WriteString(w, "path="+r.URL.RequestURI())
	}))
	tr := newTransport(t, nil)
	for i := range 20 {
		path := fmt.Sprintf("/a%%2Fb/%d?q=%d", i, i)
		resp, body, err := get(t, tr, context.Background(), http.MethodGet, up.url+path, http.Header{"X-Auth-Subject": {"alice"}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode != 200 || body != "path="+path || resp.Header.Get("X-Answer") != path {
			t.Fatalf("request %d: %d %q %q", i, resp.StatusCode, body, resp.Header.Get("X-Answer"))
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections for 20 sequential requests, want 1", n)
	}
	h := seen.Load().(http.Header)
	if h.Get("X-Auth-Subject") != "alice" || h.Get("User-Agent") != "Go-http-client/1.1" || len(h) != 2 {
		t.Fatalf("upstream saw headers %v", h)
	}
	if idleCount(tr) != 1 {
		t.Fatalf("idle connections %d, want 1", idleCount(tr))
	}
}

// Many requests at once on shared connections: every answer is its own
// request's, never another's.
func TestConcurrentAnswersNeverCross(t *testing.T) {
	up := newHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") != "" {
			time.Sleep(time.Millisecond)
		}
		w.Header().Set("X-Id", r.Header.Get("X-Id"))
		_, _ = io.WriteString(w, r.Header.Get("X-Id"))
	}))
	tr := newTransport(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 150 {
				id := fmt.Sprintf("%d-%d", g, i)
				u := up.url + "/x"
				if i%7 == 0 {
					u += "?slow=1"
				}
				method := http.MethodGet
				if i%5 == 0 {
					method = http.MethodHead
				}
				resp, body, err := get(t, tr, context.Background(), method, u, http.Header{"X-Id": {id}})
				if err != nil {
					errs <- err
					return
				}
				want := id
				if method == http.MethodHead {
					want = ""
				}
				if resp.Header.Get("X-Id") != id || body != want {
					errs <- fmt.Errorf("request %s got header %q body %q", id, resp.Header.Get("X-Id"), body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := up.conns.Load(); n > 8 {
		t.Fatalf("%d connections for 8 concurrent clients", n)
	}
}

func TestOtherRequestsGoToTheFallback(t *testing.T) {
	up := newHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	tr := newTransport(t, nil)
	req, _ := http.NewRequest(http.MethodPost, up.url+"/x", strings.NewReader("payload"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST payload" {
		t.Fatalf("body %q", b)
	}
	if idleCount(tr) != 0 {
		t.Fatal("a POST was sent on the h1 connections")
	}

	mk := func(method string, mod func(*http.Request)) *http.Request {
		r, _ := http.NewRequest(method, "http://127.0.0.1:1/x", nil)
		if mod != nil {
			mod(r)
		}
		return r
	}
	for name, tc := range map[string]struct {
		req  *http.Request
		want bool
	}{
		"GET":          {mk(http.MethodGet, nil), true},
		"HEAD":         {mk(http.MethodHead, nil), true},
		"OPTIONS":      {mk(http.MethodOptions, nil), true},
		"DELETE":       {mk(http.MethodDelete, nil), false},
		"POST no body": {mk(http.MethodPost, nil), false},
		"GET body":     {mk(http.MethodGet, func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("x")); r.ContentLength = 1 }), false},
		"GET chunked":  {mk(http.MethodGet, func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }), false},
		"upgrade": {mk(http.MethodGet, func(r *http.Request) {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}), false},
		"close":    {mk(http.MethodGet, func(r *http.Request) { r.Close = true }), false},
		"https":    {mk(http.MethodGet, func(r *http.Request) { r.URL.Scheme = "https" }), false},
		"idn host": {mk(http.MethodGet, func(r *http.Request) { r.URL.Host = "bücher.example" }), false},
		"trailer":  {mk(http.MethodGet, func(r *http.Request) { r.Trailer = http.Header{"X": nil} }), false},
	} {
		if got := tr.Handles(tc.req); got != tc.want {
			t.Errorf("%s: Handles = %v, want %v", name, got, tc.want)
		}
	}
	capped := newTransport(t, func(b *http.Transport) { b.MaxConnsPerHost = 4 })
	if capped.Handles(mk(http.MethodGet, nil)) {
		t.Error("a transport with a connection cap handled a request itself")
	}
}

// An idle connection the upstream closed (its keep-alive timeout) is not
// used: the peek before reuse sees the close. If the close comes in the
// instant after the peek (simulated: no peek), the GET goes again, once, on
// a new connection. Either way it succeeds.
func TestClosedIdleConnection(t *testing.T) {
	for _, racing := range []bool{false, true} {
		t.Run(fmt.Sprintf("closed after the peek %v", racing), func(t *testing.T) {
			var requests atomic.Int64
			up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				requests.Add(1)
				_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(req.URL.Path), req.URL.Path)
				// then close: a keep-alive timeout of zero
			})
			tr := newTransport(t, nil)
			if _, body, err := get(t, tr, context.Background(), http.MethodGet, up.url()+"/one", nil); err != nil || body != "/one" {
				t.Fatalf("first: %q %v", body, err)
			}
			if idleCount(tr) != 1 {
				t.Fatal("the connection was not kept")
			}
			if racing {
				tr.mu.Lock()
				for _, h := range tr.idle {
					h.conns[0].probe = nil
				}
				tr.mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond) // the upstream's close arrives
			if _, body, err := get(t, tr, context.Background(), http.MethodGet, up.url()+"/two", nil); err != nil || body != "/two" {
				t.Fatalf("second: %q %v", body, err)
			}
			if requests.Load() != 2 || up.conns.Load() != 2 {
				t.Fatalf("upstream saw %d requests on %d connections, want 2 on 2", requests.Load(), up.conns.Load())
			}
		})
	}
}

// An answer cut off after it began is an error, not sent again: the
// upstream may have acted on the request.
func TestAnswerCutOffIsNotRetried(t *testing.T) {
	var requests atomic.Int64
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if requests.Add(1) == 1 {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
			return
		}
	})
	tr := newTransport(t, nil)
	if _, _, err := get(t, tr, context.Background(), http.MethodGet, up.url()+"/", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(t, tr, context.Background(), http.MethodGet, up.url()+"/", nil); err == nil {
		t.Fatal("a cut-off answer was not an error")
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("upstream saw %d requests, want 2 (no retry)", n)
	}
}

// An upstream that sends more than the answer asked for (a second,
// unsolicited response, at once or a moment later while the connection is
// idle) must not have it read as the next request's answer: the
// connection is dropped, not reused.
func TestBytesAfterTheAnswerAreNeverTheNextAnswer(t *testing.T) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(fmt.Sprintf("after %v", delay), func(t *testing.T) {
			up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					p := req.URL.Path
					smuggled := "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Smuggled: 1\r\n\r\nforged"
					if delay == 0 {
						_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s%s", len(p), p, smuggled)
						continue
					}
					_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(p), p)
					time.Sleep(delay)
					_, _ = io.WriteString(c, smuggled)
				}
			})
			tr := newTransport(t, nil)
			for _, p := range []string{"/alice", "/bob", "/carol"} {
				resp, body, err := get(t, tr, context.Background(), http.MethodGet, up.url()+p, nil)
				if err != nil {
					t.Fatal(err)
				}
				if body != p || resp.Header.Get("X-Smuggled") != "" {
					t.Fatalf("request %s was answered %q (smuggled header %q)", p, body, resp.Header.Get("X-Smuggled"))
				}
				time.Sleep(2 * delay)
			}
			if n := up.conns.Load(); n != 3 {
				t.Fatalf("%d connections: one with unread bytes was reused", n)
			}
		})
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = http.ReadRequest(br)
		<-release
	})
	defer close(release)
	tr := newTransport(t, func(b *http.Transport) { b.ResponseHeaderTimeout = 100 * time.Millisecond })
	start := time.Now()
	_, _, err := get(t, tr, context.Background(), http.MethodGet, up.url()+"/", nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("%d connections: a timed-out request was sent again", n)
	}
}

func TestCancelWhileWaitingClosesTheConnection(t *testing.T) {
	closed := make(chan struct{})
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = http.ReadRequest(br)
		_, _ = br.ReadByte() // returns when the gateway closes
		close(closed)
	})
	tr := newTransport(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, _, err := get(t, tr, ctx, http.MethodGet, up.url()+"/", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream connection stayed open")
	}
	if idleCount(tr) != 0 {
		t.Fatal("a cancelled request's connection was kept")
	}
}

// Cancelled while the body streams: the read ends, the connection is not kept.
func TestCancelDuringTheBody(t *testing.T) {
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = http.ReadRequest(br)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
		_, _ = br.ReadByte()
	})
	tr := newTransport(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up.url()+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("%q %v", buf, err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	resp.Body.Close()
	if idleCount(tr) != 0 {
		t.Fatal("the connection was kept")
	}
}

func TestHugeResponseHeadIsRefused(t *testing.T) {
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = http.ReadRequest(br)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for range 1000 { // about 1 MB of header, never ending the head
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	tr := newTransport(t, func(b *http.Transport) { b.MaxResponseHeaderBytes = 64 << 10 })
	_, _, err := get(t, tr, context.Background(), http.MethodGet, up.url()+"/", nil)
	if err == nil || !strings.Contains(err.Error(), "exceed") {
		t.Fatalf("err = %v, want the header limit", err)
	}
}

func TestInformationalAnswers(t *testing.T) {
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/hints":
				_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
					"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
			case "/switch":
				_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
			case "/many":
				for range 10 {
					_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\n\r\n")
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			}
		}
	})
	tr := newTransport(t, nil)
	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		},
	})
	resp, body, err := get(t, tr, ctx, http.MethodGet, up.url()+"/hints", nil)
	if err != nil || resp.StatusCode != 200 || body != "done" {
		t.Fatalf("%v %q %v", resp, body, err)
	}
	if len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload" {
		t.Fatalf("hints %q", hints)
	}
	if _, _, err := get(t, tr, context.Background(), http.MethodGet, up.url()+"/switch", nil); err == nil {
		t.Fatal("a 101 to a request without an upgrade was accepted")
	}
	if _, _, err := get(t, tr, context.Background(), http.MethodGet, up.url()+"/many", nil); err == nil {
		t.Fatal("ten 1xx answers were accepted")
	}
}

func TestConnectionKeptOnlyWhenTheAnswerWasReadWhole(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	up := newHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = io.WriteString(w, big)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "part1")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	tr := newTransport(t, nil)
	// Closed half-read: not kept.
	req, _ := http.NewRequest(http.MethodGet, up.url+"/big", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n, err := resp.Body.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatal("a closed body could still be read")
	}
	if idleCount(tr) != 0 {
		t.Fatal("a half-read answer's connection was kept")
	}
	// Connection: close: not kept.
	if _, body, err := get(t, tr, context.Background(), http.MethodGet, up.url+"/close", nil); err != nil || body != "bye" {
		t.Fatalf("%q %v", body, err)
	}
	if idleCount(tr) != 0 {
		t.Fatal("a Connection: close answer's connection was kept")
	}
	// Chunked with a trailer, no body, HEAD: read whole, kept and reused.
	before := up.conns.Load()
	resp, body, err := get(t, tr, context.Background(), http.MethodGet, up.url+"/chunked", nil)
	if err != nil || body != "part1part2" || resp.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("chunked: %q trailer %v %v", body, resp.Trailer, err)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
		resp, body, err := get(t, tr, context.Background(), m, up.url+"/empty", nil)
		if err != nil || resp.StatusCode != http.StatusNoContent || body != "" {
			t.Fatalf("%s: %v %q %v", m, resp, body, err)
		}
	}
	if _, body, err := get(t, tr, context.Background(), http.MethodHead, up.url+"/big", nil); err != nil || body != "" {
		t.Fatalf("HEAD: %q %v", body, err)
	}
	if n := up.conns.Load() - before; n != 1 {
		t.Fatalf("%d connections for five whole answers in turn, want 1", n)
	}
}

// A header value that would split the request (CR LF) is refused before
// anything is sent; the error does not carry the value.
func TestInvalidHeaderIsRefused(t *testing.T) {
	up := newHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tr := newTransport(t, nil)
	secret := "s3cret-value"
	for _, h := range []http.Header{
		{"X-Auth-Subject": {"alice\r\nX-Auth-Roles: admin"}},
		{"X-Auth-Subject": {secret + "\n"}},
		{"Bad Name": {"x"}},
	} {
		_, _, err := get(t, tr, context.Background(), http.MethodGet, up.url+"/", h)
		if err == nil {
			t.Fatalf("%v was sent", h)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the error carries the value: %v", err)
		}
	}
	if n := up.conns.Load(); n != 0 {
		t.Fatalf("the upstream saw %d connections", n)
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	up := newHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
	}))
	tr := newTransport(t, func(b *http.Transport) {
		b.IdleConnTimeout = 100 * time.Millisecond
		b.MaxIdleConnsPerHost = 2
	})
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, _, err := get(t, tr, context.Background(), http.MethodGet, up.url+"/slow", nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := idleCount(tr); n != 2 {
		t.Fatalf("%d idle connections, want MaxIdleConnsPerHost 2", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for up.open.Load() != 0 || idleCount(tr) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the idle timeout: %d open at the upstream, %d idle", up.open.Load(), idleCount(tr))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And the next request dials again.
	if _, _, err := get(t, tr, context.Background(), http.MethodGet, up.url+"/", nil); err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	for up.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("CloseIdleConnections left a connection open")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDialFailureIsADialError(t *testing.T) {
	tr := newTransport(t, nil)
	_, _, err := get(t, tr, context.Background(), http.MethodGet, "http://"+deadaddr.New(t)+"/", nil)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("err = %v, want a dial *net.OpError", err)
	}
}

// The probe alone (TestClosedIdleConnection passes through the retry as
// well): an open, silent connection is quiet; one with unread bytes or
// closed by its peer is not, and looking consumes nothing.
func TestIdleProbe(t *testing.T) {
	peers := make(chan net.Conn, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(peers)
			return
		}
		peers <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer := <-peers
	if peer == nil {
		t.Fatal("accept failed")
	}
	p := newIdleProbe(nc)
	if p == nil {
		t.Skip("no peek on this platform")
	}
	if !p.quiet() {
		t.Fatal("an open, silent connection was not quiet")
	}
	if _, err := io.WriteString(peer, "x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !p.quiet() }, "unread bytes")
	b := make([]byte, 1)
	if _, err := io.ReadFull(nc, b); err != nil || b[0] != 'x' {
		t.Fatalf("the peek consumed the byte: %q %v", b, err)
	}
	if !p.quiet() {
		t.Fatal("quiet again after the byte was read: want quiet")
	}
	peer.Close()
	waitFor(t, func() bool { return !p.quiet() }, "the peer's close")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("the probe never saw %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
