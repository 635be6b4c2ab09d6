package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"
)

// Defaults keep `make bench` at about 20 minutes on the 2-core machine
// (26 scenarios; see bench/README.md).
const (
	defRounds   = 3
	defDuration = 5 * time.Second
	defWarmup   = time.Second
	defConns    = 64
	defRSSConns = 1000
	defFixed    = 2 * time.Second
	// defTogether is each same-instant group's time: 30 one-second
	// slices per scenario for the verdict's median (15, at ROUNDS ×
	// DURATION, moved it by more than a millisecond between quiet runs).
	defTogether   = 30 * time.Second
	defMissTokens = 30000
	rssDuration   = 3 * time.Second
)

// runOpts are the knobs of one benchmark run.
type runOpts struct {
	gatewayBin string
	out        string
	command    string
	rounds     int
	duration   time.Duration
	warmup     time.Duration
	// fixedDuration is each scenario's open-loop time per round in the
	// sequential half-load phase (FIXED_DURATION).
	fixedDuration time.Duration
	// togetherDuration is each same-instant group's time in all
	// (TOGETHER_DURATION).
	togetherDuration time.Duration
	conns            int
	rssConns         int
	missTokens       int
	only             map[string]bool // SCENARIOS; nil = every non-optional one
	all              bool
	loadCPU          string // the load generator's CPU
	serverCPU        string // the proxies' and the upstream's CPU
}

// env is what scenarios build on: the temp dir, the upstream, the processes.
type env struct {
	opts     runOpts
	dir      string
	self     string
	upstream string
	procs    *procs
	// upstreamProc is the one upstream every target forwards to.
	upstreamProc *proc
	keys         map[string]map[string]any
	missTokens   int
	nginxBin     string
	// keySet holds the api keys both api_key scenarios serve.
	keySet *keySet
	// op is the oauth2 scenario's authorization server, started on demand.
	op *authServer
	// redisSingle and redisCluster are the Redis deployments of the
	// Redis-backed scenarios, each started on first use (nil: not yet).
	redisSingle, redisCluster *redisDeploy
}

// target is one scenario's running server and what was measured on it.
type target struct {
	sc        *scenario
	url       string
	proc      *proc
	credsFile string // one value of credsHeader per line; "" = no credentials
	credsHdr  string
	ncreds    int
	// calls counts the gateway's requests to a backing service (nil: none);
	// setupCalls is how many it made from its start to the first warm-up.
	calls      *counter
	setupCalls int64
	sent       int64 // requests sent so far: where the next run starts rotating
	err        error

	runs  []*loadResult
	fixed *fixedResult
	// together: the same open loop with every fixed-rate scenario at once,
	// request by request in turn, at the same rate in all.
	together *fixedResult
	// togetherBase is the baseline's result in this target's same-instant
	// group, togetherGroup that group's number (from 1).
	togetherBase  *fixedResult
	togetherGroup int
	peakRSS       int64 // kB, after the rounds
	// cold is the first pass over the credentials (coldPass scenarios).
	cold *coldResult
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := runOpts{loadCPU: "0", serverCPU: "1"}
	fs.StringVar(&o.gatewayBin, "gateway", "bin/authgateway", "the authgateway binary")
	fs.StringVar(&o.out, "out", "bench/results.md", "results file (markdown)")
	fs.StringVar(&o.command, "command", "", "the command line to print in the results (default: this one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.rounds, err = envInt("ROUNDS", defRounds); err != nil {
		return err
	}
	if o.conns, err = envInt("CONNS", defConns); err != nil {
		return err
	}
	if o.rssConns, err = envInt("RSS_CONNS", defRSSConns); err != nil {
		return err
	}
	if o.missTokens, err = envInt("MISS_TOKENS", defMissTokens); err != nil {
		return err
	}
	if o.duration, err = envDuration("DURATION", defDuration); err != nil {
		return err
	}
	if o.warmup, err = envDuration("WARMUP", defWarmup); err != nil {
		return err
	}
	if o.fixedDuration, err = envDuration("FIXED_DURATION", defFixed); err != nil {
		return err
	}
	if o.togetherDuration, err = envDuration("TOGETHER_DURATION", defTogether); err != nil {
		return err
	}
	if s := strings.TrimSpace(os.Getenv("SCENARIOS")); s == "all" {
		o.all = true
	} else if s != "" {
		o.only = map[string]bool{}
		for _, n := range strings.Split(s, ",") {
			o.only[strings.TrimSpace(n)] = true
		}
	}
	if o.command = strings.TrimSpace(o.command); o.command == "" {
		o.command = strings.Join(os.Args, " ")
	}
	if o.gatewayBin, err = filepath.Abs(o.gatewayBin); err != nil {
		return err
	}
	return benchmark(ctx, o, stdout, stderr)
}

func benchmark(ctx context.Context, o runOpts, stdout, stderr io.Writer) (err error) {
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	notes := prepareTools(&o, logf)
	raiseFileLimit()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "authgw-bench-")
	if err != nil {
		return err
	}
	// nginx workers run as an unprivileged user and must reach their config.
	_ = os.Chmod(dir, 0o755)
	if os.Getenv("BENCH_KEEP") != "" {
		// For digging: every process's stderr (e.g. GODEBUG=gctrace=1) stays.
		logf("keeping %s (BENCH_KEEP)", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{opts: o, dir: dir, self: self, procs: &procs{cpu: o.serverCPU},
		keys: map[string]map[string]any{}, missTokens: o.missTokens}
	if p, err := exec.LookPath("nginx"); err == nil {
		e.nginxBin = p
	}
	defer e.procs.stopAll()
	defer func() { e.op.stop() }()
	defer e.closeRedis()

	started := time.Now()
	loadBefore := loadAvg()
	if err := e.startUpstream(ctx); err != nil {
		return err
	}

	var targets []*target
	for _, sc := range scenarios() {
		if !selected(o, sc) {
			continue
		}
		t := &target{sc: sc}
		targets = append(targets, t)
		if err := e.setup(ctx, t, sc.name); err != nil {
			t.err = err
			logf("%s: %v (skipped)", sc.name, err)
			continue
		}
		logf("%s ready on %s", sc.name, t.url)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	script := filepath.Join(dir, "rotate.lua")
	if err := os.WriteFile(script, rotateLua, 0o644); err != nil {
		return err
	}

	// Closed loop, interleaved: every round visits every scenario, starting
	// one further along each round, so drift on the shared machine spreads
	// over all rows instead of landing on one.
	live := slices.DeleteFunc(slices.Clone(targets), func(t *target) bool { return t.err != nil })
	for r := range o.rounds {
		for i := range live {
			t := live[(i+r)%len(live)]
			if t.err != nil {
				continue
			}
			if err := e.measure(ctx, t, script); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				t.err = err
				logf("%s: %v", t.sc.name, err)
				continue
			}
			last := t.runs[len(t.runs)-1]
			calls := ""
			if t.calls != nil {
				calls = fmt.Sprintf("  %s: %d in warm-up, %d measured", t.calls.what, last.WarmupCalls, last.Calls)
			}
			logf("round %d/%d %-28s %8.0f req/s  p50 %5dus  p99 %6dus  errors %d%s%s", r+1, o.rounds, t.sc.name, last.rps(), last.P50US, last.P99US, last.errors(), last.errorDetail(), calls)
		}
	}
	for _, t := range live {
		if t.err == nil {
			t.peakRSS = memKB(t.proc.pid(), "VmHWM")
		}
	}

	// Open loop at half the bare proxy's peak, interleaved in rounds too.
	var fixedRate float64
	if bare := find(targets, "bare-proxy"); bare != nil && bare.err == nil {
		fixedRate = median(rpsOf(bare.runs)) / 2
	}
	// Every scenario but nginx takes part: first one after another in 1 s
	// slices, FIXED_DURATION each per round; then at the same instants, in
	// groups of a few scenarios with both bare baselines (see togetherGroups).
	var fixedTargets []*target
	for _, t := range live {
		if t.err == nil && t.sc.target != targetNginx && fixedRate > 0 {
			fixedTargets = append(fixedTargets, t)
		}
	}
	logFixed := func(mode string, ts []*target, res func(*target) *fixedResult) {
		for _, t := range ts {
			if f := res(t); f != nil {
				renewed := ""
				if f.Renewed > 0 {
					renewed = fmt.Sprintf("  renewing %d: p50 %6.0fus p99 %6.0fus", f.Renewed, f.RenewedP50US, f.RenewedP99US)
				}
				logf("%s %.0f req/s %-28s achieved %6.0f  p50 %6.0fus  p99 %6.0fus (slice median %6.0fus)  p99.9 %6.0fus  lag p99 %5.0fus%s",
					mode, fixedRate, t.sc.name, f.Achieved, f.P50US, f.P99US, f.SliceP99MedianUS, f.P999US, f.LagP99US, renewed)
			}
		}
	}
	if len(fixedTargets) > 0 {
		if err := e.fixedRate(ctx, fixedTargets, fixedRate, time.Duration(o.rounds)*o.fixedDuration, false); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("fixed rate: %v", err)
		}
		logFixed("fixed", fixedTargets, fixedOf)
	}
	for i, group := range togetherGroups(fixedTargets) {
		if err := e.fixedRate(ctx, group, fixedRate, o.togetherDuration, true); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("together group %d: %v", i+1, err)
			continue
		}
		for _, t := range group {
			if t.together != nil && t.togetherGroup == 0 {
				t.togetherGroup = i + 1
			}
		}
		logFixed(fmt.Sprintf("together (group %d)", i+1), group, togetherOf)
	}

	// The JWT check's own share of the tail: gw-jwt-hs256's public and JWT
	// routes together, request by request, so every slice pairs them at the
	// same instants in the same process.
	var same *sameProcess
	if jwt := find(live, sameProcessScenario); jwt != nil && jwt.err == nil && fixedRate > 0 {
		var err error
		if same, err = e.sameProcess(ctx, jwt, fixedRate); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("same process: %v", err)
		} else {
			logf("same process %.0f req/s in all: %s JWT route − public route slice p99 %+.0fus (min %+.0f, max %+.0f)",
				fixedRate, jwt.sc.name, same.diffMedian(), same.diffMin(), same.diffMax())
		}
	}

	// Peak RSS with many keep-alive connections, each on a fresh process.
	var mem []memResult
	for _, name := range []string{"bare-proxy", "gw-public", "gw-jwt-hs256"} {
		sc := findScenario(name)
		if sc == nil || (o.only != nil && !o.only[name]) {
			continue
		}
		m, err := e.rss(ctx, sc, script)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("%s rss: %v", name, err)
			continue
		}
		mem = append(mem, *m)
		logf("rss %-28s idle %d kB  peak %d kB with %d connections (%.0f req/s)", name, m.idleKB, m.peakKB, o.rssConns, m.rps)
	}

	rep := &report{opts: o, targets: targets, fixedRate: fixedRate, same: same, mem: mem, notes: notes,
		started: started, elapsed: time.Since(started), loadBefore: loadBefore, loadAfter: loadAvg(),
		gatewayGo: binaryGoVersion(o.gatewayBin), nginx: toolVersion("nginx", "-v"), wrk: toolVersion("wrk", "-v")}
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	// A gateway scenario that did not answer 200 measured nothing worth
	// reading: say so with the exit status too, not only in its row.
	var failed []string
	for _, t := range targets {
		if t.err != nil && t.sc.target == targetGateway && !errors.Is(t.err, errNotInstalled) {
			failed = append(failed, t.sc.name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d scenario(s) failed (see their rows): %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// errNotInstalled marks a scenario that could not run for want of a tool:
// reported in its row, but not a failure of the run.
var errNotInstalled = errors.New("not installed")

func selected(o runOpts, sc *scenario) bool {
	switch {
	case o.only != nil:
		return o.only[sc.name]
	case o.all:
		return true
	default:
		return !sc.optional
	}
}

func find(ts []*target, name string) *target {
	for _, t := range ts {
		if t.sc.name == name {
			return t
		}
	}
	return nil
}

func findScenario(name string) *scenario {
	for _, sc := range scenarios() {
		if sc.name == name {
			return sc
		}
	}
	return nil
}

func rpsOf(runs []*loadResult) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = r.rps()
	}
	return out
}

// maxWarmups bounds the warm-ups of a scale scenario before a measured run.
const maxWarmups = 10

// measure does one warm-up and one measured wrk run against t.
func (e *env) measure(ctx context.Context, t *target, script string) error {
	a := wrkArgs{url: t.url, path: t.sc.path, header: t.credsHdr, credsFile: t.credsFile, mode: t.sc.credMode,
		conns: e.opts.conns, cpu: e.opts.loadCPU, script: script}
	// wrk cannot keep a session's cookies: login scenarios run in Go.
	load := func(d time.Duration) (*loadResult, error) {
		if t.sc.goLoad || t.sc.credMode == credBrowser {
			return e.runClosedLoop(ctx, t, d)
		}
		a.duration, a.offset = d, t.sent
		return runWrk(ctx, a)
	}
	callsBefore := t.readCalls()
	// A scale scenario's caches expire between rounds (the API key cache
	// holds an entry 30 s): it warms up until every rotating credential was
	// sent once, so the measured run is the warm state and the cold cost is
	// the setup's first pass, reported on its own.
	var warmed int64
	for pass := 0; e.opts.warmup > 0 && (pass == 0 || t.sc.coldPass && warmed < int64(t.ncreds) && pass < maxWarmups); pass++ {
		w, err := load(e.opts.warmup)
		if err != nil {
			return err
		}
		t.sent += w.Requests
		warmed += w.Requests
		// Every credential was checked at setup; a refusal now means the
		// gateway changed its mind under load, and the run would measure
		// error responses.
		if w.ErrStatus > 0 {
			return fmt.Errorf("warm-up: %d of %d responses were not 2xx", w.ErrStatus, w.Requests)
		}
	}
	if t.proc.exited() {
		return fmt.Errorf("process exited: %s", t.proc.stderrTail())
	}
	callsWarm := t.readCalls()
	upPID := e.upstreamProc.pid()
	proxyBefore, _ := cpuTime(t.proc.pid())
	upBefore, _ := cpuTime(upPID)
	r, err := load(e.opts.duration)
	if err != nil {
		return err
	}
	proxyAfter, _ := cpuTime(t.proc.pid())
	upAfter, _ := cpuTime(upPID)
	r.ProxyCPU, r.UpstreamCPU = proxyAfter-proxyBefore, upAfter-upBefore
	r.WarmupCalls, r.Calls = callsWarm-callsBefore, t.readCalls()-callsWarm
	t.sent += r.Requests
	t.runs = append(t.runs, r)
	return nil
}

// readCalls reads t's backend-call counter (0 without one).
func (t *target) readCalls() int64 {
	if t.calls == nil {
		return 0
	}
	return t.calls.read()
}

// togetherGroupSize is how many gateway scenarios share one same-instant
// group with their bare baseline: few enough that each still gets a
// quarter of the rate (hundreds of samples per 1 s slice at the p99).
const togetherGroupSize = 3

// togetherGroups splits ts into the same-instant groups: up to
// togetherGroupSize gateway scenarios of one baseline with that baseline,
// so each scenario's slices pair with its baseline's over the same seconds.
func togetherGroups(ts []*target) [][]*target {
	var bare, gw []*target
	for _, t := range ts {
		if t.sc.target == targetBare {
			bare = append(bare, t)
		} else {
			gw = append(gw, t)
		}
	}
	if len(gw) == 0 {
		if len(bare) < 2 {
			return nil
		}
		return [][]*target{bare}
	}
	// Scenarios of one baseline together: fewer processes share each group.
	byBase := map[string][]*target{}
	var bases []string
	for _, t := range gw {
		b := t.sc.baselineName()
		if byBase[b] == nil {
			bases = append(bases, b)
		}
		byBase[b] = append(byBase[b], t)
	}
	slices.Sort(bases)
	var groups [][]*target
	for _, b := range bases {
		var base []*target
		if i := slices.IndexFunc(bare, func(t *target) bool { return t.sc.name == b }); i >= 0 {
			base = bare[i : i+1]
		}
		for chunk := range slices.Chunk(byBase[b], togetherGroupSize) {
			groups = append(groups, append(slices.Clone(base), chunk...))
		}
	}
	return groups
}

// fixedRate runs the open-loop generator against ts for d each: in
// alternating one-second slices at rate each, or (together) all at once,
// request by request in turn, at rate in all. Together, each gateway target
// also keeps its baseline's result of the same run (togetherBase); a bare
// target keeps its result of the first group.
func (e *env) fixedRate(ctx context.Context, ts []*target, rate float64, d time.Duration, together bool) error {
	var specs, primes []string
	for _, t := range ts {
		specs = append(specs, t.targetSpec(t.sc.name, t.sc.path))
		// Together is the verdict's phase: each gateway as it runs for
		// good, its caches holding what is in rotation and its sessions'
		// refreshes falling due at their own instants (see prime). The
		// alternating slices are seconds apart, longer than the caches and
		// tokens of these scenarios last, so priming could not hold there.
		switch {
		case !together:
		case t.sc.refreshEvery > 0:
			primes = append(primes, t.sc.name+"="+t.sc.refreshEvery.String())
		case t.sc.coldPass:
			primes = append(primes, t.sc.name+"=all")
		}
	}
	res, err := e.runFixedRate(ctx, rate, d, together, specs, primes)
	if err != nil {
		return err
	}
	perTarget := rate
	if together {
		perTarget = rate / float64(len(ts))
	}
	for _, t := range ts {
		if f := res[t.sc.name]; f != nil {
			switch {
			case !together:
				t.fixed = f
			case t.sc.target == targetBare:
				if t.together == nil {
					t.together = f
				}
			default:
				t.together, t.togetherBase = f, res[t.sc.baselineName()]
			}
			t.sent += f.Sent + int64(perTarget*e.opts.warmup.Seconds())
		}
	}
	return nil
}

// targetSpec is a fixedrate -target for t's process at path, named name,
// with t's credentials (if any) continuing where its last run stopped.
func (t *target) targetSpec(name, path string) string {
	spec := name + "," + t.url + path
	if t.credsFile != "" {
		spec += "," + t.credsHdr + "," + t.credsFile + "," + strconv.FormatInt(t.sent, 10)
		if t.sc.credMode != "" {
			spec += "," + t.sc.credMode
		}
	}
	return spec
}

// runFixedRate runs `benchtool fixedrate` pinned like wrk, d per target
// after WARMUP, and returns its results by target name.
func (e *env) runFixedRate(ctx context.Context, rate float64, d time.Duration, together bool, specs, primes []string) (map[string]*fixedResult, error) {
	argv := []string{e.self, "fixedrate",
		"-rate", strconv.FormatFloat(rate, 'f', 0, 64), "-slice", "1s",
		"-duration", d.String(),
		"-warmup", e.opts.warmup.String(), "-conns", strconv.Itoa(e.opts.conns)}
	if together {
		argv = append(argv, "-together")
	}
	for _, spec := range specs {
		argv = append(argv, "-target", spec)
	}
	for _, p := range primes {
		argv = append(argv, "-prime", p)
	}
	if e.opts.loadCPU != "" {
		argv = append([]string{"taskset", "-c", e.opts.loadCPU}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("fixedrate: %w", err)
	}
	res := map[string]*fixedResult{}
	if err := jsonUnmarshal(out, &res); err != nil {
		return nil, err
	}
	return res, nil
}

// sameProcessScenario is the gateway whose public and JWT routes are
// measured together.
const sameProcessScenario = "gw-jwt-hs256"

// sameProcess is one gateway's public and JWT routes measured together.
type sameProcess struct {
	scenario    string
	rate        float64 // in all, half to each route
	public, jwt *fixedResult
}

// diffs are the JWT route's slice p99s less the public route's, slice by
// slice: each pair was measured over the same second.
func (s *sameProcess) diffs() []float64 { return pairedDiffs(s.jwt.SliceP99US, s.public.SliceP99US) }

func (s *sameProcess) diffMedian() float64 { return median(s.diffs()) }
func (s *sameProcess) diffMin() float64    { return extreme(s.diffs(), slices.Min) }
func (s *sameProcess) diffMax() float64    { return extreme(s.diffs(), slices.Max) }

func extreme(v []float64, f func([]float64) float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return f(v)
}

// sameProcess sends rate req/s in all to t's public route and its JWT route
// (t's credentials), alternating request by request, for ROUNDS × DURATION.
func (e *env) sameProcess(ctx context.Context, t *target, rate float64) (*sameProcess, error) {
	res, err := e.runFixedRate(ctx, rate, time.Duration(e.opts.rounds)*e.opts.duration, true, []string{
		"public," + t.url + pathPublic, // without credentials, as gw-public
		t.targetSpec("jwt", t.sc.path),
	}, nil)
	if err != nil {
		return nil, err
	}
	if res["public"] == nil || res["jwt"] == nil || len(res["jwt"].SliceP99US) == 0 {
		return nil, errors.New("fixedrate -together: no result for the public or the JWT route")
	}
	t.sent += res["jwt"].Sent + int64(rate/2*e.opts.warmup.Seconds())
	return &sameProcess{scenario: t.sc.name, rate: rate, public: res["public"], jwt: res["jwt"]}, nil
}

type memResult struct {
	name   string
	idleKB int64
	peakKB int64
	rps    float64
	errors int64
}

// rss starts a fresh instance of sc, holds rssConns keep-alive connections
// busy for one DURATION and reads the process's peak RSS (VmHWM).
func (e *env) rss(ctx context.Context, sc *scenario, script string) (*memResult, error) {
	t := &target{sc: sc}
	if err := e.setup(ctx, t, sc.name+"-rss"); err != nil {
		return nil, err
	}
	defer e.procs.remove(t.proc)
	m := &memResult{name: sc.name, idleKB: memKB(t.proc.pid(), "VmRSS")}
	// The peak comes within a second or two of opening the connections.
	a := wrkArgs{url: t.url, path: sc.path, header: t.credsHdr, credsFile: t.credsFile, mode: sc.credMode,
		conns: e.opts.rssConns, duration: min(e.opts.duration, rssDuration), cpu: e.opts.loadCPU, script: script}
	r, err := runWrk(ctx, a)
	if err != nil {
		return nil, err
	}
	m.peakKB, m.rps, m.errors = memKB(t.proc.pid(), "VmHWM"), r.rps(), r.errors()
	return m, nil
}

// setup starts sc's server under the given instance name and waits until an
// authenticated request through it answers 200.
func (e *env) setup(ctx context.Context, t *target, name string) error {
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	t.url = "http://" + listen
	var (
		c       *creds
		cfgPath string
	)
	if t.sc.target == targetGateway || t.sc.creds != nil {
		// A bare target with credentials gets a config too: the tokens are
		// minted from its tokens section, exactly as for the gateway.
		if cfgPath, err = e.writeGatewayConfig(ctx, t.sc, listen, dir); err != nil {
			return err
		}
	}
	timed := func(what string, f func() (*creds, error)) error {
		start := time.Now()
		if c, err = f(); err != nil {
			return err
		}
		if d := time.Since(start); d > time.Second {
			fmt.Fprintf(os.Stderr, "bench: %s: %d %s in %s\n", name, len(c.values), what, d.Round(100*time.Millisecond))
		}
		return nil
	}
	if t.sc.creds != nil {
		if err := timed("credentials", func() (*creds, error) { return t.sc.creds(ctx, e, cfgPath) }); err != nil {
			return err
		}
	}
	switch t.sc.target {
	case targetBare:
		t.proc, err = e.procs.start(name, dir, e.self, "bareproxy", "-listen", listen, "-upstream", e.upstream)
	case targetNginx:
		t.proc, err = e.startNginx(name, dir, listen)
	case targetGateway:
		t.proc, err = e.procs.start(name, dir, e.opts.gatewayBin, "serve", "-config", cfgPath)
	default:
		return fmt.Errorf("unknown target %q", t.sc.target)
	}
	if err != nil {
		return err
	}
	// A gateway is ready when its public route answers (every config has
	// one); its credentials are checked below, one by one.
	readyURL, readyHdr, readyVal := t.url+pathPublic, "", ""
	if t.sc.target != targetGateway {
		readyURL = t.url + t.sc.path
		if c != nil && len(c.values) > 0 && t.sc.credMode == "" {
			readyHdr, readyVal = c.header, c.values[0]
		}
	}
	if err := waitReady(ctx, t.proc, readyURL, readyHdr, readyVal); err != nil {
		return err
	}
	if t.sc.login != nil {
		// Sessions are made by logging in at the running gateway.
		if err := timed("sessions", func() (*creds, error) { return t.sc.login(ctx, e, t.url, cfgPath) }); err != nil {
			return err
		}
	}
	if c == nil {
		return nil
	}
	if len(c.values) == 0 || c.header == "" {
		return errors.New("scenario minted no credentials")
	}
	t.credsFile, t.credsHdr = filepath.Join(dir, "creds.txt"), c.header
	t.ncreds, t.calls = len(c.values), c.calls
	t.setupCalls = -t.readCalls()
	g := &generator{url: t.url + t.sc.path, header: c.header, values: c.values, mode: t.sc.credMode,
		file: t.credsFile, client: newLoadClient(verifyWorkers)}
	defer g.client.CloseIdleConnections()
	if t.sc.coldPass {
		if t.cold, err = e.coldPass(ctx, t, g); err != nil {
			return err
		}
	} else if err := checkCreds(ctx, g, maxVerify); err != nil {
		return err
	}
	if err := os.WriteFile(t.credsFile, []byte(strings.Join(g.values, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	t.setupCalls += t.readCalls()
	return nil
}

// maxVerify bounds the credentials verifyCreds sends: all of a 1,000-key
// scenario, an even sample of the 30,000-token ones (checking each of those
// would take longer than measuring them).
const maxVerify = 1000

// verifyWorkers is how many requests the credential check has in flight.
const verifyWorkers = 4

// verifyCreds sends each credential (up to maxVerify, evenly spread) once
// and fails unless every one gets a 200: a scenario whose credentials the
// gateway refuses would otherwise measure the speed of 401s.
func verifyCreds(ctx context.Context, url, header string, values []string) error {
	g := &generator{url: url, header: header, values: values, client: newLoadClient(verifyWorkers)}
	defer g.client.CloseIdleConnections()
	return checkCreds(ctx, g, maxVerify)
}

// checkCreds sends g's credentials once each (at most limit, evenly spread;
// 0: all), verifyWorkers at a time, and fails unless every one gets a 200.
func checkCreds(ctx context.Context, g *generator, limit int) error {
	step := 1
	if limit > 0 {
		step = max(len(g.values)/limit, 1)
	}
	idx := make(chan int)
	eg, ctx := errgroup.WithContext(ctx)
	for range verifyWorkers {
		eg.Go(func() error {
			for i := range idx {
				status, body, err := g.send(ctx, i)
				if err != nil {
					return fmt.Errorf("credential %d of %d: %w", i+1, len(g.values), err)
				}
				if status != http.StatusOK {
					return fmt.Errorf("credential %d of %d: status %d: %s", i+1, len(g.values), status, body)
				}
			}
			return nil
		})
	}
	eg.Go(func() error {
		defer close(idx)
		for i := 0; i < len(g.values); i += step {
			select {
			case idx <- i:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	})
	return eg.Wait()
}

// coldResult is the first pass over a scale scenario's credentials right
// after the gateway started (every cache cold), and a second pass at once
// after it (warm), the same way: verifyWorkers requests in flight.
type coldResult struct {
	n                  int
	coldTime, warmTime time.Duration
	coldCPU, warmCPU   time.Duration // the gateway's CPU time in each pass
}

// coldPass sends every credential of t twice, timing each pass and the
// gateway's CPU time in it; every answer must be a 200.
func (e *env) coldPass(ctx context.Context, t *target, g *generator) (*coldResult, error) {
	r := &coldResult{n: len(g.values)}
	for _, pass := range []struct {
		wall, cpu *time.Duration
	}{{&r.coldTime, &r.coldCPU}, {&r.warmTime, &r.warmCPU}} {
		cpu0, _ := cpuTime(t.proc.pid())
		start := time.Now()
		if err := checkCreds(ctx, g, 0); err != nil {
			return nil, err
		}
		*pass.wall = time.Since(start)
		cpu1, _ := cpuTime(t.proc.pid())
		*pass.cpu = cpu1 - cpu0
	}
	return r, nil
}

// writeGatewayConfig generates sc's gateway config listening on listen and
// returns its path.
func (e *env) writeGatewayConfig(ctx context.Context, sc *scenario, listen, dir string) (string, error) {
	cfg := baseConfig(listen, e.upstream)
	if sc.gateway != nil {
		if err := sc.gateway(ctx, e, cfg); err != nil {
			return "", err
		}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "gateway.yaml")
	return path, os.WriteFile(path, b, 0o600)
}

func (e *env) startUpstream(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	p, err := e.procs.start("upstream", e.dir, e.self, "upstream", "-listen", listen)
	if err != nil {
		return err
	}
	e.upstream, e.upstreamProc = "http://"+listen, p
	return waitReady(ctx, p, e.upstream+"/", "", "")
}

const nginxConf = `# generated by benchtool: nginx as a plain reverse proxy, for reference
worker_processes 1;
daemon off;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
    access_log /dev/null;
    client_body_temp_path {{DIR}}/client_body;
    proxy_temp_path {{DIR}}/proxy;
    fastcgi_temp_path {{DIR}}/fastcgi;
    uwsgi_temp_path {{DIR}}/uwsgi;
    scgi_temp_path {{DIR}}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream backend {
        server {{UPSTREAM}};
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 90s;
    }
    server {
        listen {{LISTEN}};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
`

func (e *env) startNginx(name, dir, listen string) (*proc, error) {
	if e.nginxBin == "" {
		return nil, errors.New("nginx is not installed")
	}
	conf := strings.NewReplacer("{{DIR}}", dir, "{{LISTEN}}", listen,
		"{{UPSTREAM}}", strings.TrimPrefix(e.upstream, "http://")).Replace(nginxConf)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return e.procs.start(name, dir, e.nginxBin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
}

// waitReady polls url (with one credential, if given) until it answers 200,
// the process dies, or 20 s pass.
func waitReady(ctx context.Context, p *proc, url, header, value string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for {
		if p.exited() {
			return fmt.Errorf("%s exited: %s", p.name, p.stderrTail())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if header != "" {
			req.Header.Set(header, value)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %s", p.name, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// prepareTools installs wrk and nginx when they are missing (as root, with
// apt-get) and turns off pinning without taskset. It returns notes for the report.
func prepareTools(o *runOpts, logf func(string, ...any)) []string {
	var notes []string
	var missing []string
	for _, bin := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 && os.Geteuid() == 0 {
		logf("installing %s with apt-get", strings.Join(missing, " "))
		cmd := exec.Command("apt-get", append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			logf("apt-get failed: %v\n%s", err, lastLines(string(out), 5))
		}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		o.loadCPU, o.serverCPU = "", ""
		notes = append(notes, "taskset not found: processes were not pinned to CPUs.")
	} else if n := numCPU(); n < 2 {
		o.loadCPU, o.serverCPU = "", ""
		notes = append(notes, "fewer than 2 CPUs: processes were not pinned.")
	}
	return notes
}

// raiseFileLimit lifts RLIMIT_NOFILE to its hard limit for this process and
// so for its children (wrk with RSS_CONNS connections, the proxies).
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func envInt(name string, def int) (int, error) {
	s := strings.TrimSpace(os.Getenv(name))
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, s)
	}
	return v, nil
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	s := strings.TrimSpace(os.Getenv(name))
	if s == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(s); err == nil { // bare seconds, like wrk
		s = strconv.Itoa(n) + "s"
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 5s", name, s)
	}
	return v, nil
}
