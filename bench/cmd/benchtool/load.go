package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed rotate.lua
var rotateLua []byte

// loadResult is one closed-loop run of wrk.
type loadResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	ErrConnect int64 `json:"err_connect"`
	ErrRead    int64 `json:"err_read"`
	ErrWrite   int64 `json:"err_write"`
	ErrStatus  int64 `json:"err_status"` // responses other than 2xx/3xx
	ErrTimeout int64 `json:"err_timeout"`
	P50US      int64 `json:"p50_us"`
	P90US      int64 `json:"p90_us"`
	P99US      int64 `json:"p99_us"`
	MaxUS      int64 `json:"max_us"`

	// Filled by the harness from /proc around the run.
	ProxyCPU    time.Duration `json:"-"`
	UpstreamCPU time.Duration `json:"-"`
}

func (r *loadResult) rps() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

func (r *loadResult) errors() int64 {
	return r.ErrConnect + r.ErrRead + r.ErrWrite + r.ErrStatus + r.ErrTimeout
}

// errorDetail breaks errors down by kind, for the progress log.
func (r *loadResult) errorDetail() string {
	if r.errors() == 0 {
		return ""
	}
	return fmt.Sprintf(" (connect %d, read %d, write %d, non-2xx %d, timeout %d)",
		r.ErrConnect, r.ErrRead, r.ErrWrite, r.ErrStatus, r.ErrTimeout)
}

// wrkArgs describes one wrk run.
type wrkArgs struct {
	url, path   string
	header      string
	credsFile   string
	offset      int64
	conns       int
	duration    time.Duration
	cpu, script string
}

// runWrk runs wrk with one thread pinned to the load generator's CPU.
func runWrk(ctx context.Context, a wrkArgs) (*loadResult, error) {
	argv := []string{"wrk", "-t1", "-c", strconv.Itoa(a.conns), "-d", secs(a.duration),
		"--timeout", "5s", "-s", a.script, a.url, "--", a.path, a.header, a.credsFile, strconv.FormatInt(a.offset, 10)}
	if a.cpu != "" {
		argv = append([]string{"taskset", "-c", a.cpu}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "BENCHJSON "); ok {
			var r loadResult
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return nil, fmt.Errorf("parsing wrk output: %w", err)
			}
			return &r, nil
		}
	}
	return nil, fmt.Errorf("wrk printed no result: %s", strings.TrimSpace(out.String()+stderr.String()))
}

// secs formats d for wrk, which takes whole seconds ("5s").
func secs(d time.Duration) string {
	return strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1)) + "s"
}

// fixedResult is one open-loop run at a fixed rate. Latency is measured from
// the moment each request was due, not when it was sent, so a stalled server
// is charged for the requests that queued behind the stall (no coordinated
// omission).
type fixedResult struct {
	Rate     float64 `json:"rate"`
	Achieved float64 `json:"achieved"`
	Sent     int64   `json:"sent"`
	Errors   int64   `json:"errors"`
	P50US    float64 `json:"p50_us"`
	P90US    float64 `json:"p90_us"`
	P99US    float64 `json:"p99_us"`
	P999US   float64 `json:"p999_us"`
	MaxUS    float64 `json:"max_us"`
	// LagP99US is how late the generator itself issued requests (p99, its
	// own scheduling delay, not queueing for a connection): part of every
	// latency above, whatever the server.
	LagP99US float64 `json:"lag_p99_us"`
}

// cmdFixedRate is the open-loop generator: wrk cannot hold a fixed rate.
func cmdFixedRate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fixedrate", flag.ContinueOnError)
	target := fs.String("url", "", "URL to request (loopback)")
	rate := fs.Float64("rate", 1000, "requests per second")
	dur := fs.Duration("duration", 5*time.Second, "measured duration")
	warm := fs.Duration("warmup", time.Second, "unmeasured warm-up at the same rate")
	conns := fs.Int("conns", 64, "connections (and concurrent requests)")
	header := fs.String("header", "", "header to rotate")
	credsFile := fs.String("creds", "", "file with one header value per line")
	offset := fs.Int64("offset", 0, "start after this many values")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" || *rate <= 0 || *conns <= 0 {
		return errors.New("need -url, -rate > 0 and -conns > 0")
	}
	var values []string
	if *credsFile != "" {
		b, err := os.ReadFile(*credsFile)
		if err != nil {
			return err
		}
		values = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	}
	g := &generator{
		url: *target, header: *header, values: values, next: *offset,
		client: &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				Proxy: nil, MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns,
				DisableCompression: true, IdleConnTimeout: time.Minute,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if *warm > 0 {
		g.run(ctx, *rate, *warm, *conns)
	}
	res := g.run(ctx, *rate, *dur, *conns)
	if err := ctx.Err(); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

type generator struct {
	url    string
	header string
	values []string
	client *http.Client

	mu   sync.Mutex
	next int64
}

func (g *generator) value() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.values[g.next%int64(len(g.values))]
	g.next++
	return v
}

func (g *generator) run(ctx context.Context, rate float64, d time.Duration, conns int) *fixedResult {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, n)
	per := make([][]time.Duration, conns)
	errs := make([]int64, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range due {
				if !g.do(ctx) {
					errs[w]++
				}
				per[w] = append(per[w], time.Since(t))
			}
		}()
	}
	lag := make([]float64, 0, n)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		t := start.Add(time.Duration(i) * interval)
		if wait := time.Until(t); wait > 0 {
			time.Sleep(wait)
		}
		lag = append(lag, float64(time.Since(t).Microseconds()))
		due <- t
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)

	var lat []float64
	res := &fixedResult{Rate: rate}
	for w := range conns {
		for _, d := range per[w] {
			lat = append(lat, float64(d.Microseconds()))
		}
		res.Errors += errs[w]
	}
	res.Sent = int64(len(lat))
	res.Achieved = float64(res.Sent-res.Errors) / elapsed.Seconds()
	slices.Sort(lat)
	slices.Sort(lag)
	res.P50US, res.P90US, res.P99US = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
	res.P999US, res.MaxUS = percentile(lat, 99.9), percentile(lat, 100)
	res.LagP99US = percentile(lag, 99)
	return res
}

// do sends one request and reports whether it got a 2xx.
func (g *generator) do(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return false
	}
	if len(g.values) > 0 {
		req.Header.Set(g.header, g.value())
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// percentile of sorted values, nearest rank; 0 for none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// median of values (not necessarily sorted); 0 for none.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
