package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/deadaddr"
)

// counting is an upstream instance that counts what it received.
type counting struct {
	*httptest.Server
	n       atomic.Int64
	healthy atomic.Bool
}

func newCounting(t *testing.T) *counting {
	c := &counting{}
	c.healthy.Store(true)
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !c.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		c.n.Add(1)
	}))
	t.Cleanup(c.Close)
	return c
}

// refusedURL is a loopback address nobody listens on (not a freed :0
// port, which a server started next may be given).
func refusedURL(t *testing.T) *url.URL {
	return &url.URL{Scheme: "http", Host: deadaddr.New(t)}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

func send(t *testing.T, p *Pool, method, body string) (int, error) {
	t.Helper()
	tg := p.Pick()
	if tg == nil {
		return 0, nil
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, tg.URL.String()+"/x", rd)
	resp, _, err := p.RoundTrip(req, tg)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestRoundRobin(t *testing.T) {
	a, b := newCounting(t), newCounting(t)
	p := New(Options{Route: "r", Targets: []*url.URL{mustURL(a.URL), mustURL(b.URL)}, Transport: http.DefaultTransport})
	for range 10 {
		if code, err := send(t, p, "GET", ""); err != nil || code != 200 {
			t.Fatalf("got %d, %v", code, err)
		}
	}
	if a.n.Load() != 5 || b.n.Load() != 5 {
		t.Errorf("a got %d, b got %d; want 5 and 5", a.n.Load(), b.n.Load())
	}
}

func TestRefusedTargetEjectedAndIdempotentRetried(t *testing.T) {
	a := newCounting(t)
	dead := refusedURL(t)
	p := New(Options{Route: "r", Targets: []*url.URL{dead, mustURL(a.URL)}, Transport: http.DefaultTransport})
	// The first GET goes to the dead target, is refused and retried on a.
	if code, err := send(t, p, "GET", ""); err != nil || code != 200 {
		t.Fatalf("GET: got %d, %v; want 200 after one retry", code, err)
	}
	if p.Targets()[0].Up() {
		t.Error("the refusing target is still up")
	}
	for range 4 {
		send(t, p, "GET", "")
	}
	if a.n.Load() != 5 {
		t.Errorf("a got %d, want all 5", a.n.Load())
	}
}

// TestPostNeverRetried: a POST whose connection failed is not sent again
// (attack: a retry must never repeat a write the app may have seen).
func TestPostNeverRetried(t *testing.T) {
	a := newCounting(t)
	p := New(Options{Route: "r", Targets: []*url.URL{refusedURL(t), mustURL(a.URL)}, Transport: http.DefaultTransport})
	if _, err := send(t, p, "POST", "pay=1"); err == nil {
		t.Fatal("POST to the refusing target succeeded: it was retried")
	}
	if a.n.Load() != 0 {
		t.Errorf("the other target got %d POSTs, want 0", a.n.Load())
	}
	for _, m := range []string{"POST", "PATCH"} {
		req, _ := http.NewRequest(m, "http://x/", nil)
		if Retryable(req) {
			t.Errorf("%s is retryable", m)
		}
	}
	req, _ := http.NewRequest("PUT", "http://x/", strings.NewReader("b"))
	if Retryable(req) {
		t.Error("a PUT with a body is retryable")
	}
}

// TestPostReachedAppNotRetried: the app read the POST and dropped the
// connection: the error is not a dial failure, so no retry.
func TestPostReachedAppNotRetried(t *testing.T) {
	var got atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
	}))
	defer hang.Close()
	b := newCounting(t)
	p := New(Options{Route: "r", Targets: []*url.URL{mustURL(hang.URL), mustURL(b.URL)}, Transport: &http.Transport{}})
	for _, m := range []string{"POST", "GET"} {
		got.Store(0)
		b.n.Store(0)
		p.next.Store(0)
		_, _ = send(t, p, m, "")
		if got.Load() != 1 || b.n.Load() != 0 {
			t.Errorf("%s: first target got %d, second %d; want 1 and 0", m, got.Load(), b.n.Load())
		}
	}
}

func TestNoneHealthy(t *testing.T) {
	p := New(Options{Route: "r", Targets: []*url.URL{refusedURL(t), refusedURL(t)}, Transport: http.DefaultTransport})
	if _, err := send(t, p, "GET", ""); err == nil {
		t.Fatal("want an error")
	}
	if tg := p.Pick(); tg != nil {
		t.Errorf("Pick = %s, want nil: both refused", tg.Name)
	}
}

func TestHealthCheckTakesOutAndBack(t *testing.T) {
	a, b := newCounting(t), newCounting(t)
	p := New(Options{Route: "r", Targets: []*url.URL{mustURL(a.URL), mustURL(b.URL)}, Transport: http.DefaultTransport,
		Check: &Check{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond, UnhealthyAfter: 2, HealthyAfter: 2}})
	p.Start(context.Background())
	defer p.Close()
	a.healthy.Store(false)
	waitFor(t, func() bool { return !p.Targets()[0].Up() })
	if tg := p.Peek(); tg.Name != b.URL {
		t.Errorf("Peek = %s, want %s", tg.Name, b.URL)
	}
	a.healthy.Store(true)
	waitFor(t, func() bool { return p.Targets()[0].Up() })
}

func TestCloseEndsHealthChecks(t *testing.T) {
	a := newCounting(t)
	before := runtime.NumGoroutine()
	for range 20 {
		p := New(Options{Route: "r", Targets: []*url.URL{mustURL(a.URL), mustURL(a.URL + "/")}, Transport: http.DefaultTransport,
			Check: &Check{Path: "/healthz", Interval: time.Millisecond, Timeout: time.Second, UnhealthyAfter: 1, HealthyAfter: 1}})
		p.Start(context.Background())
		p.Close()
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before+2 })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkPick(b *testing.B) {
	p := New(Options{Route: "r", Targets: []*url.URL{mustURL("http://a:1"), mustURL("http://b:1"), mustURL("http://c:1")}, Transport: http.DefaultTransport})
	p.Targets()[1].up.Store(false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if p.Pick() == nil {
				b.Fatal("nil")
			}
		}
	})
}

// answering is a transport whose every target answers at once, or, for
// the host "refused", fails to connect: the pool's own cost, without a
// network.
type answering struct{}

func (answering) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "refused:1" {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "refused"}}
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

// BenchmarkRoundTrip: direct is a healthy target; retry is a refused
// target ejected, then the request retried on the other (every iteration).
func BenchmarkRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		down bool
	}{{"direct", false}, {"retry", true}} {
		b.Run(bc.name, func(b *testing.B) {
			p := New(Options{Route: "r", Targets: []*url.URL{mustURL("http://refused:1"), mustURL("http://ok:1")}, Transport: answering{}})
			tg := p.targets[0]
			if !bc.down {
				tg = p.targets[1]
			}
			req, _ := http.NewRequest("GET", tg.URL.String()+"/x", nil)
			b.ReportAllocs()
			for b.Loop() {
				tg.up.Store(true) // back in, to be ejected again
				_, used, err := p.RoundTrip(req, tg)
				if err != nil || used.Name != "http://ok:1" {
					b.Fatal(err)
				}
			}
		})
	}
}
