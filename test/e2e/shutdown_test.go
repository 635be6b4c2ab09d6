package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown: SIGTERM in the middle of a request lets it finish
// with 200, then the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, time.Second)
	g := startGateway(t, "routes:\n  - {name: site, path: /, upstream: \""+up.URL+"\", public: true}\n", nil)

	type result struct {
		resp *Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := doRaw(g.Addr, req("GET", "/slow"))
		done <- result{resp, err}
	}()
	select {
	case <-up.arrived: // the request is in flight at the upstream
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
	g.Signal(t, syscall.SIGTERM) // what a container runtime sends

	r := <-done
	if r.err != nil {
		t.Fatalf("in-flight request failed during shutdown: %v", r.err)
	}
	if r.resp.Status != 200 || string(r.resp.Body) != "upstream ok\n" {
		t.Errorf("in-flight request: status %d body %q, want 200 %q", r.resp.Status, r.resp.Body, "upstream ok\n")
	}
	if code := g.Wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code = %d, want 0\nstderr: %s", code, g.Stderr())
	}
	if !strings.Contains(g.Stdout(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown log line")
	}
}
