package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// probeLoop checks t every interval until ctx ends: UnhealthyAfter
// failures in a row take it out, HealthyAfter successes in a row (counted
// afresh after a passive ejection) put it back.
func (p *Pool) probeLoop(ctx context.Context, t *Target) {
	c := p.check
	var okRun, failRun int
	ejections := t.ejections.Load()
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	for {
		err := p.probe(ctx, t)
		if ctx.Err() != nil {
			return
		}
		t.probed.Store(true)
		if n := t.ejections.Load(); n != ejections {
			ejections, okRun = n, 0 // refused a request since: start over
		}
		if err == nil {
			okRun, failRun = okRun+1, 0
			if okRun >= c.HealthyAfter {
				p.setUp(t, true, fmt.Sprintf("%d health checks passed", okRun))
			}
		} else {
			okRun, failRun = 0, failRun+1
			if failRun >= c.UnhealthyAfter {
				p.setUp(t, false, fmt.Sprintf("%d health checks failed, last: %v", failRun, err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe sends one health check to t: GET the check's path under the
// target's base path; a 2xx or 3xx answer within the timeout passes.
func (p *Pool) probe(ctx context.Context, t *Target) error {
	ctx, cancel := context.WithTimeout(ctx, p.check.Timeout)
	defer cancel()
	u := *t.URL
	u.Path = strings.TrimSuffix(u.Path, "/") + p.check.Path
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "authgateway-health-check")
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
