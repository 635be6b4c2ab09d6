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
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
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
	// Backend calls (introspection) during the warm-up and the measured run.
	WarmupCalls int64 `json:"-"`
	Calls       int64 `json:"-"`
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
	mode        string // "" or credPaths (credBrowser runs in Go, not wrk)
	offset      int64
	conns       int
	duration    time.Duration
	cpu, script string
}

// runWrk runs wrk with one thread pinned to the load generator's CPU.
func runWrk(ctx context.Context, a wrkArgs) (*loadResult, error) {
	argv := []string{"wrk", "-t1", "-c", strconv.Itoa(a.conns), "-d", secs(a.duration),
		"--timeout", "5s", "-s", a.script, a.url, "--", a.path, a.header, a.credsFile, strconv.FormatInt(a.offset, 10), a.mode}
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

// fixedResult is one target's open-loop measurement at a fixed rate.
// Latency is measured from the moment each request was due, not when it was
// sent, so a stalled server is charged for the requests that queued behind
// the stall (no coordinated omission).
type fixedResult struct {
	Rate     float64 `json:"rate"`
	Achieved float64 `json:"achieved"`
	Sent     int64   `json:"sent"`
	Errors   int64   `json:"errors"`
	// Percentiles over every sample of every slice.
	P50US  float64 `json:"p50_us"`
	P90US  float64 `json:"p90_us"`
	P99US  float64 `json:"p99_us"`
	P999US float64 `json:"p999_us"`
	MaxUS  float64 `json:"max_us"`
	// The p99 of each slice: its median shrugs off a slice that another
	// process on the machine disturbed.
	SliceP99MedianUS float64 `json:"slice_p99_median_us"`
	SliceP99MinUS    float64 `json:"slice_p99_min_us"`
	SliceP99MaxUS    float64 `json:"slice_p99_max_us"`
	Slices           int     `json:"slices"`
	// SliceP99US lists the slices' p99s in the order they ran: slice i of
	// every target fell in the same round, so the harness can pair them.
	SliceP99US []float64 `json:"slice_p99_us"`
	// LagP99US is how late the generator itself issued requests (median over
	// slices of the p99): its own scheduling delay, part of every latency.
	LagP99US float64 `json:"lag_p99_us"`
	// Renewed* are over the requests that renewed a browser session (the
	// response set its cookies): how many, and their own p50 and p99.
	Renewed      int64   `json:"renewed,omitempty"`
	RenewedP50US float64 `json:"renewed_p50_us,omitempty"`
	RenewedP99US float64 `json:"renewed_p99_us,omitempty"`
}

// fixedTarget is one -target of cmdFixedRate.
type fixedTarget struct {
	name string
	g    *generator

	lat, sliceP99, sliceLag []float64
	renewed                 []float64
	errors                  int64
	elapsed                 time.Duration
}

// targetFlags collects repeated -target NAME,URL[,HEADER,FILE,OFFSET[,MODE]] flags.
type targetFlags []string

func (t *targetFlags) String() string     { return strings.Join(*t, " ") }
func (t *targetFlags) Set(v string) error { *t = append(*t, v); return nil }

// cmdFixedRate is the open-loop generator (wrk cannot hold a fixed rate).
// With several targets it alternates between them in short slices, so
// whatever else runs on the machine disturbs every target alike.
func cmdFixedRate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fixedrate", flag.ContinueOnError)
	var specs targetFlags
	fs.Var(&specs, "target", "NAME,URL[,HEADER,CREDSFILE,OFFSET[,MODE]] (repeatable); CREDSFILE has one header value per line; MODE paths: lines are PATH VALUE, browser: values are session cookies, kept as the responses set them")
	rate := fs.Float64("rate", 1000, "requests per second")
	dur := fs.Duration("duration", 5*time.Second, "measured time per target")
	slice := fs.Duration("slice", time.Second, "targets alternate every slice")
	warm := fs.Duration("warmup", time.Second, "unmeasured warm-up per target at the same rate")
	conns := fs.Int("conns", 64, "connections (and concurrent requests) per target")
	var primes primeFlags
	fs.Var(&primes, "prime", "NAME=all: send each of NAME's credentials once before its warm-up (its caches warm, as a deployment's are after its first minutes); "+
		"NAME=DURATION (browser sessions): renew each session once, at instants spread evenly over DURATION, so that their refreshes fall due spread out as real users' do (repeatable)")
	together := fs.Bool("together", false, "send to all targets at once, request by request in turn, at -rate in all: "+
		"each slice then pairs targets at the same instants (for a same-process comparison, e.g. two routes of one gateway)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(specs) == 0 || *rate <= 0 || *conns <= 0 || *slice <= 0 {
		return errors.New("need -target, -rate > 0, -conns > 0 and -slice > 0")
	}
	var targets []*fixedTarget
	for _, spec := range specs {
		t, err := parseTarget(spec, *conns)
		if err != nil {
			return err
		}
		targets = append(targets, t)
	}
	record := func(t *fixedTarget, r sliceResult) {
		t.lat = append(t.lat, r.lat...)
		t.renewed = append(t.renewed, r.renewed...)
		t.sliceP99 = append(t.sliceP99, percentile(r.lat, 99))
		t.sliceLag = append(t.sliceLag, percentile(r.lag, 99))
		t.errors += r.errors
		t.elapsed += r.elapsed
	}
	gens := make([]*generator, len(targets))
	for i, t := range targets {
		gens[i] = t.g
	}
	// All targets are primed at once, so that each ends just before the
	// warm-up: sessions spread over a refresh period and then kept waiting
	// for another target's priming would have expired, and would all renew
	// in the warm-up's first instant again.
	pg, pctx := errgroup.WithContext(ctx)
	for name, spread := range primes {
		i := slices.IndexFunc(targets, func(t *fixedTarget) bool { return t.name == name })
		if i < 0 {
			return fmt.Errorf("-prime %s: no such target", name)
		}
		pg.Go(func() error {
			if err := targets[i].g.prime(pctx, spread, *conns); err != nil {
				return fmt.Errorf("priming %s: %w", name, err)
			}
			return nil
		})
	}
	if err := pg.Wait(); err != nil {
		return err
	}
	nslices := max(int((*dur+*slice-1) / *slice), 1)
	if *together {
		if *warm > 0 {
			runTogether(ctx, gens, *rate, *warm, *conns)
		}
		for range nslices {
			for j, r := range runTogether(ctx, gens, *rate, *slice, *conns) {
				record(targets[j], r)
			}
		}
	} else {
		if *warm > 0 {
			for _, t := range targets {
				t.g.run(ctx, *rate, *warm, *conns)
			}
		}
		for i := range nslices {
			for j := range targets {
				t := targets[(i+j)%len(targets)]
				record(t, t.g.run(ctx, *rate, *slice, *conns))
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, t := range targets {
		if err := t.g.save(); err != nil {
			return err
		}
	}
	out := map[string]*fixedResult{}
	for _, t := range targets {
		slices.Sort(t.lat)
		res := &fixedResult{Rate: *rate, Sent: int64(len(t.lat)), Errors: t.errors, Slices: len(t.sliceP99),
			P50US: percentile(t.lat, 50), P90US: percentile(t.lat, 90), P99US: percentile(t.lat, 99),
			P999US: percentile(t.lat, 99.9), MaxUS: percentile(t.lat, 100),
			SliceP99MedianUS: median(t.sliceP99), SliceP99MinUS: slices.Min(t.sliceP99),
			SliceP99MaxUS: slices.Max(t.sliceP99), SliceP99US: t.sliceP99, LagP99US: median(t.sliceLag)}
		if len(t.renewed) > 0 {
			slices.Sort(t.renewed)
			res.Renewed, res.RenewedP50US, res.RenewedP99US = int64(len(t.renewed)), percentile(t.renewed, 50), percentile(t.renewed, 99)
		}
		if t.elapsed > 0 {
			res.Achieved = float64(res.Sent-res.Errors) / t.elapsed.Seconds()
		}
		out[t.name] = res
	}
	return json.NewEncoder(stdout).Encode(out)
}

// primeFlags collects repeated -prime NAME=all|DURATION flags: target
// name to spread (0 for all).
type primeFlags map[string]time.Duration

func (p *primeFlags) String() string { return fmt.Sprint(map[string]time.Duration(*p)) }
func (p *primeFlags) Set(v string) error {
	name, how, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("-prime %q: want NAME=all or NAME=DURATION", v)
	}
	var spread time.Duration
	if how != "all" {
		d, err := time.ParseDuration(how)
		if err != nil || d <= 0 {
			return fmt.Errorf("-prime %q: want NAME=all or NAME=DURATION > 0", v)
		}
		spread = d
	}
	if *p == nil {
		*p = primeFlags{}
	}
	(*p)[name] = spread
	return nil
}

func parseTarget(spec string, conns int) (*fixedTarget, error) {
	f := strings.Split(spec, ",")
	if len(f) != 2 && len(f) != 5 && len(f) != 6 {
		return nil, fmt.Errorf("-target %q: want NAME,URL or NAME,URL,HEADER,CREDSFILE,OFFSET[,MODE]", spec)
	}
	g := &generator{url: f[1], client: newLoadClient(conns)}
	if len(f) >= 5 && f[3] != "" {
		b, err := os.ReadFile(f[3])
		if err != nil {
			return nil, err
		}
		g.header, g.file = f[2], f[3]
		g.values = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if g.next, err = strconv.ParseInt(f[4], 10, 64); err != nil {
			return nil, fmt.Errorf("-target %q: bad offset: %w", spec, err)
		}
		if len(f) == 6 {
			if g.mode = f[5]; g.mode != credPaths && g.mode != credBrowser {
				return nil, fmt.Errorf("-target %q: mode %q, want %s or %s", spec, g.mode, credPaths, credBrowser)
			}
		}
	}
	return &fixedTarget{name: f[0], g: g}, nil
}

// newLoadClient is a load generator's HTTP client: conns keep-alive
// connections, no redirects followed, no proxy, no compression.
func newLoadClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			DisableCompression: true, IdleConnTimeout: time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Credential modes: how a line of a credentials file becomes a request.
const (
	// credPaths: "PATH VALUE", the request goes to PATH with the header
	// set to VALUE (the routes scale run: Host and path both rotate).
	credPaths = "paths"
	// credBrowser: the value is a Cookie header of a login session, and
	// the session cookies each response sets replace their old values, as a
	// browser keeps them (transparent refresh rotates them).
	credBrowser = "browser"
)

type generator struct {
	url    string // the target's URL with the scenario's path
	header string
	values []string
	mode   string // "", credPaths or credBrowser
	file   string // where values came from; credBrowser writes them back
	client *http.Client

	mu   sync.Mutex
	next int64
}

// pick returns the index of the next credential in rotation.
func (g *generator) pick() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := int(g.next % int64(len(g.values)))
	g.next++
	return i
}

// request builds the request of credential i (i < 0: none).
func (g *generator) request(ctx context.Context, i int) (*http.Request, error) {
	url, value := g.url, ""
	if i >= 0 {
		g.mu.Lock()
		value = g.values[i]
		g.mu.Unlock()
		if g.mode == credPaths {
			path, v, _ := strings.Cut(value, " ")
			url, value = baseURL(g.url)+path, v
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case i < 0:
	case http.CanonicalHeaderKey(g.header) == "Host":
		req.Host = value
	default:
		req.Header.Set(g.header, value)
	}
	return req, nil
}

// send sends credential i (i < 0: none) and answers the status and the
// start of the body; a browser session keeps the cookies set.
func (g *generator) send(ctx context.Context, i int) (int, string, error) {
	status, head, _, err := g.exchange(ctx, i)
	return status, head, err
}

// exchange is send, also reporting whether the response renewed a browser
// session (set its cookies).
func (g *generator) exchange(ctx context.Context, i int) (int, string, bool, error) {
	req, err := g.request(ctx, i)
	if err != nil {
		return 0, "", false, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, "", false, err
	}
	var head []byte
	if resp.StatusCode/100 != 2 {
		head, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	renewed := false
	if g.mode == credBrowser && i >= 0 {
		set := resp.Cookies()
		g.keep(i, set)
		renewed = len(set) > 0
	}
	return resp.StatusCode, strings.TrimSpace(string(head)), renewed, nil
}

// keep replaces session i's cookies with those a response set.
func (g *generator) keep(i int, set []*http.Cookie) {
	if len(set) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.values[i] = mergeCookies(g.values[i], set)
}

// mergeCookies replaces in a Cookie header the values of the cookies set
// (an empty value deletes one, as a browser would).
func mergeCookies(header string, set []*http.Cookie) string {
	var out []string
	seen := map[string]bool{}
	for _, c := range set {
		seen[c.Name] = true
		if c.Value != "" && c.MaxAge >= 0 {
			out = append(out, c.Name+"="+c.Value)
		}
	}
	for _, pair := range strings.Split(header, "; ") {
		name, _, _ := strings.Cut(pair, "=")
		if pair != "" && !seen[name] {
			out = append(out, pair)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// save writes a browser generator's sessions back to its file, so the next
// run continues with the cookies the gateway last set.
func (g *generator) save() error {
	if g.mode != credBrowser || g.file == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return os.WriteFile(g.file, []byte(strings.Join(g.values, "\n")+"\n"), 0o600)
}

// baseURL is scheme://host of a URL.
func baseURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[:i+3+j]
		}
	}
	return u
}

// sliceResult is one run of the generator: sorted latencies and lags in µs.
type sliceResult struct {
	lat, lag []float64
	renewed  []float64 // the latencies of the requests that renewed a session
	errors   int64
	elapsed  time.Duration
}

// run sends rate requests per second for d and waits for the last answer.
func (g *generator) run(ctx context.Context, rate float64, d time.Duration, conns int) sliceResult {
	return runTogether(ctx, []*generator{g}, rate, d, conns)[0]
}

// runTogether sends rate requests per second in all for d, request i to
// gens[i%len(gens)] (each with its own conns workers), and waits for the
// last answer. Each generator's lag is that of the requests it was sent.
func runTogether(ctx context.Context, gens []*generator, rate float64, d time.Duration, conns int) []sliceResult {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	type worker struct {
		due  chan time.Time
		per  [][]time.Duration
		ren  [][]time.Duration // per connection: the requests that renewed a session
		errs []int64
		lag  []float64
	}
	ws := make([]*worker, len(gens))
	var wg sync.WaitGroup
	for i, g := range gens {
		w := &worker{due: make(chan time.Time, n/len(gens)+1), per: make([][]time.Duration, conns),
			ren: make([][]time.Duration, conns), errs: make([]int64, conns)}
		ws[i] = w
		for c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for t := range w.due {
					ok, renewed := g.do(ctx)
					if !ok {
						w.errs[c]++
					}
					d := time.Since(t)
					w.per[c] = append(w.per[c], d)
					if renewed {
						w.ren[c] = append(w.ren[c], d)
					}
				}
			}()
		}
	}
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		t := start.Add(time.Duration(i) * interval)
		if wait := time.Until(t); wait > 0 {
			time.Sleep(wait)
		}
		w := ws[i%len(ws)]
		w.lag = append(w.lag, float64(time.Since(t).Microseconds()))
		w.due <- t
	}
	for _, w := range ws {
		close(w.due)
	}
	wg.Wait()
	elapsed := time.Since(start)
	out := make([]sliceResult, len(ws))
	for i, w := range ws {
		r := sliceResult{lag: w.lag, elapsed: elapsed}
		for c := range conns {
			for _, d := range w.per[c] {
				r.lat = append(r.lat, float64(d.Microseconds()))
			}
			for _, d := range w.ren[c] {
				r.renewed = append(r.renewed, float64(d.Microseconds()))
			}
			r.errors += w.errs[c]
		}
		slices.Sort(r.lat)
		slices.Sort(r.lag)
		out[i] = r
	}
	return out
}

// prime readies g's credentials before a measurement, as a long-running
// deployment has them. spread 0 sends each credential once, conns at a
// time: the gateway's caches then hold them, as after a deployment's first
// minutes (the cold pass has its own table). spread > 0, for browser
// sessions: each session is renewed once, session i at i/n of spread, by a
// request carrying only its refresh cookie, as a browser's whose access
// cookie has expired; real users sign in and come back at their own
// instants, so their refreshes fall due spread out over the access token's
// life, whereas sessions last used all at once (a previous phase) would
// all fall due in the same instant, a storm no deployment sees.
func (g *generator) prime(ctx context.Context, spread time.Duration, conns int) error {
	n := len(g.values)
	if n == 0 || (spread > 0 && g.mode != credBrowser) {
		return errors.New("prime: no credentials, or a spread for credentials that are not browser sessions")
	}
	var bad, failed atomic.Int64
	sem := make(chan struct{}, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if spread > 0 {
			if wait := time.Until(start.Add(spread * time.Duration(i) / time.Duration(n))); wait > 0 {
				time.Sleep(wait)
			}
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if spread > 0 {
				g.mu.Lock()
				g.values[i] = onlyCookie(g.values[i], refreshCookie)
				g.mu.Unlock()
			}
			status, _, err := g.send(ctx, i)
			switch {
			case err != nil:
				failed.Add(1)
			case status/100 != 2:
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if bad.Load()+failed.Load() > 0 {
		return fmt.Errorf("%d of %d requests failed, %d answered other than 2xx", failed.Load(), n, bad.Load())
	}
	return nil
}

// onlyCookie keeps of a Cookie header only the cookie named name.
func onlyCookie(header, name string) string {
	for pair := range strings.SplitSeq(header, "; ") {
		if n, _, _ := strings.Cut(pair, "="); n == name {
			return pair
		}
	}
	return header
}

// do sends the next request in rotation and reports whether it got a 2xx,
// and whether it renewed a browser session (set its cookies).
func (g *generator) do(ctx context.Context) (ok, renewed bool) {
	i := -1
	if len(g.values) > 0 {
		i = g.pick()
	}
	status, _, renewed, err := g.exchange(ctx, i)
	return err == nil && status/100 == 2, renewed
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
