package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	opts       runOpts
	targets    []*target
	fixedRate  float64
	same       *sameProcess // nil: not measured
	mem        []memResult
	notes      []string
	started    time.Time
	elapsed    time.Duration
	loadBefore string
	loadAfter  string
	gatewayGo  string
	nginx      string
	wrk        string
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# authgateway load benchmark\n\n")
	p("The gateway next to a bare `httputil.ReverseProxy` on the same `proxy.NewTransport`, and nginx as an\n")
	p("external reference, measured in one run with interleaved rounds. Rerun with the command below;\n")
	p("bench/README.md explains the method and how to add a scenario.\n\n")
	p("| | |\n|---|---|\n")
	p("| command | `%s` |\n", o.command)
	p("| knobs | ROUNDS=%d DURATION=%s WARMUP=%s FIXED_DURATION=%s TOGETHER_DURATION=%s CONNS=%d RSS_CONNS=%d MISS_TOKENS=%d |\n",
		o.rounds, o.duration, o.warmup, o.fixedDuration, o.togetherDuration, o.conns, o.rssConns, o.missTokens)
	p("| date | %s (took %s) |\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.elapsed.Round(time.Second))
	p("| machine | nproc %d, %s, %s |\n", numCPU(), cpuModel(), memTotal())
	p("| load average before / after | %s / %s |\n", r.loadBefore, r.loadAfter)
	p("| Go | gateway built with %s; harness %s |\n", r.gatewayGo, runtime.Version())
	p("| tools | %s; %s |\n", r.wrk, r.nginx)
	if o.loadCPU != "" {
		p("| pinning | load generator on CPU %s; proxy under test + upstream (+ redis) on CPU %s (`taskset`) |\n", o.loadCPU, o.serverCPU)
	}
	p("\n")
	for _, n := range r.notes {
		p("> %s\n\n", n)
	}

	bare := find(r.targets, "bare-proxy")
	var bareRPS, bareCPU float64
	if bare != nil && bare.err == nil {
		bareRPS = median(rpsOf(bare.runs))
		bareCPU = median(cpuPerReq(bare.runs))
	}
	p("## Throughput, closed loop (wrk, 1 thread, %d connections, %d rounds × %s)\n\n", o.conns, o.rounds, o.duration)
	p("req/s is the median over rounds with min–max; p50/p99 are medians over rounds of wrk's per-run\n")
	p("latency percentiles. CPU µs/req is the proxy process's user+system time (nginx: master+worker) per\n")
	p("request, from /proc: the cost, and the column least disturbed by other load on the machine.\n")
	cpuLabel := "server CPU"
	if o.serverCPU != "" {
		cpuLabel = "CPU " + o.serverCPU
	}
	p("%s busy is (proxy + upstream CPU time) / run time: well under 100%% means something else took\n", cpuLabel)
	p("that CPU during the run. Peak RSS is VmHWM after the rounds. errors = socket errors + non-2xx.\n")
	p("\"vs baseline\" is req/s over that of the bare row sent the same (or the closest) requests, named in the\n")
	p("half-load table below; \"target\" is issue 22's goal for the row against it (authenticated paths ≥ %.2f×,\n", goalAuth)
	p("Basic ≥ %.2f×, scale runs ≥ %.2f×; — where the issue sets none).\n\n", goalBasic, goalScale)
	p("| scenario | req/s (median) | min–max | req/s vs bare | vs baseline | target | p50 | p99 | proxy CPU µs/req | CPU vs bare | upstream CPU µs/req | %s busy | peak RSS | errors |\n", cpuLabel)
	p("|---|--:|--:|--:|--:|:-:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var starved []string
	for _, t := range r.targets {
		if t.err != nil || len(t.runs) == 0 {
			reason := "not run"
			if t.err != nil {
				reason = oneLine(t.err.Error())
			}
			p("| %s | — | — | — | — | — | — | — | — | — | — | — | — | %s |\n", t.sc.name, reason)
			continue
		}
		rps, cpu := rpsOf(t.runs), cpuPerReq(t.runs)
		var p50, p99, upcpu, busy []float64
		var errs int64
		for _, run := range t.runs {
			p50 = append(p50, float64(run.P50US))
			p99 = append(p99, float64(run.P99US))
			if run.Requests > 0 {
				upcpu = append(upcpu, float64(run.UpstreamCPU.Microseconds())/float64(run.Requests))
			}
			if run.DurationUS > 0 {
				busy = append(busy, 100*float64((run.ProxyCPU+run.UpstreamCPU).Microseconds())/float64(run.DurationUS))
			}
			errs += run.errors()
		}
		ratio, cpuRatio := "—", "—"
		if bareRPS > 0 {
			ratio = fmt.Sprintf("%.2f", median(rps)/bareRPS)
		}
		if bareCPU > 0 {
			cpuRatio = fmt.Sprintf("%.2f", median(cpu)/bareCPU)
		}
		vsBase, goal := throughputGoal(r.targets, t)
		p("| %s | %.0f | %.0f–%.0f | %s | %s | %s | %s | %s | %.1f | %s | %.1f | %.0f%% | %s | %d |\n", t.sc.name, median(rps),
			slices.Min(rps), slices.Max(rps), ratio, vsBase, goal, us(median(p50)), us(median(p99)), median(cpu), cpuRatio,
			median(upcpu), median(busy), kb(t.peakRSS), errs)
		if len(busy) > 0 && median(busy) < minBusyPercent {
			starved = append(starved, t.sc.name)
		}
	}
	p("\n")
	if len(starved) > 0 {
		p("**Disturbed:** %s busy was under %.0f%% for %s: other load took that CPU, so those rows' req/s and\n", cpuLabel, minBusyPercent, strings.Join(starved, ", "))
		p("latency (and every ratio to them) are the machine's as much as the proxy's. The CPU µs/req column still holds.\n\n")
	}

	r.clusterRatios(p)
	r.scaleRuns(p)

	p("## p99 added by the gateway at half the bare proxy's peak load (open loop)\n\n")
	if r.fixedRate == 0 {
		p("Not measured: the bare proxy did not run.\n\n")
	} else {
		p("`benchtool fixedrate` (Go, %d connections, pinned like wrk) sends %.0f req/s — half the bare proxy's\n", o.conns, r.fixedRate)
		p("median peak — to each scenario below for %s in all (FIXED_DURATION per round), in 1 s slices that alternate between the\n", time.Duration(o.rounds)*o.fixedDuration)
		p("scenarios (after a %s warm-up each), so a disturbance on the shared machine hits them alike.\n", o.warmup)
		p("Latency counts from when each request was due, so queueing behind a stall is charged (no\n")
		p("coordinated omission). p50–p99.9 are over all samples; \"slice p99\" is the median (and min–max)\n")
		p("of the 1 s slices' p99s, robust to one disturbed slice. \"Added\" compares each scenario with the\n")
		p("bare proxy sent the same requests (its baseline column): slice by slice, each slice with the\n")
		p("baseline's slice of the same round (a few seconds apart), and the median of those differences —\n")
		p("then, for contrast, the p99s over all samples. Generator lag is how late the generator itself\n")
		p("issued requests: when it is large, CPU %s was busy with something else, and that much of every\n", o.loadCPU)
		p("latency is the machine, not the proxy.\n\n")
		p("| scenario | baseline | achieved req/s | p50 | p90 | p99 | p99.9 | slice p99 (median) | slice p99 min–max | p99 added (paired slices / all) | ≤ 1 ms | errors | generator lag p99 |\n")
		p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|--:|\n")
		for _, t := range r.targets {
			f := t.fixed
			if f == nil {
				continue
			}
			baseName, base, added := baselineOf(r.targets, t, fixedOf)
			verdict := "—"
			if base != nil {
				d := pairedDiff(f.SliceP99US, base.SliceP99US)
				added = signedUS(d) + " / " + signedUS(f.P99US-base.P99US)
				verdict = addedVerdict(d)
			}
			p("| %s | %s | %.0f | %s | %s | %s | %s | %s | %s–%s | %s | %s | %d | %s |\n", t.sc.name, baseName, f.Achieved,
				us(f.P50US), us(f.P90US), us(f.P99US), us(f.P999US), us(f.SliceP99MedianUS),
				us(f.SliceP99MinUS), us(f.SliceP99MaxUS), added, verdict, f.Errors, us(f.LagP99US))
		}
		p("\n")
		warnLag(p, r.targets, fixedOf)
	}

	var together []*target
	groups := 0
	for _, t := range r.targets {
		if t.together != nil && t.sc.target != targetBare {
			together = append(together, t)
			groups = max(groups, t.togetherGroup)
		}
	}
	if len(together) > 0 {
		p("### The same scenarios at the same instants (the verdict: p99 added ≤ 1 ms)\n\n")
		p("The slices above are seconds apart, and on a shared machine the tail moves that much between\n")
		p("seconds. Here the scenarios run at once in %d groups, each group the two bare baselines and up to %d\n", groups, togetherGroupSize)
		p("gateway scenarios, for %s per group (TOGETHER_DURATION), request by request in turn, %.0f req/s in all: CPU 1\n", o.togetherDuration, r.fixedRate)
		p("carries about the same load as above, shared by the processes. Each 1 s slice of a scenario is\n")
		p("paired with its baseline's slice over the same second of the same group; \"≤ 1 ms\" judges the median\n")
		p("of those differences (issue 22: the p99 added at half load stays ≤ 1 ms on every scenario).\n\n")
		p("| scenario | group | baseline | achieved req/s | p50 | p99 | slice p99 (median) | baseline slice p99 (median) | p99 added (paired slices: median; min–max) | ≤ 1 ms | errors | generator lag p99 |\n")
		p("|---|--:|---|--:|--:|--:|--:|--:|--:|:-:|--:|--:|\n")
		for _, t := range together {
			f, base := t.together, t.togetherBase
			added, verdict, baseP99 := "baseline did not run", "—", "—"
			if base != nil {
				d := pairedDiffs(f.SliceP99US, base.SliceP99US)
				added = fmt.Sprintf("**%s**; %s to %s", signedUS(median(d)), signedUS(extreme(d, slices.Min)), signedUS(extreme(d, slices.Max)))
				verdict, baseP99 = addedVerdict(median(d)), us(base.SliceP99MedianUS)
			}
			p("| %s | %d | %s | %.0f | %s | %s | %s | %s | %s | %s | %d | %s |\n", t.sc.name, t.togetherGroup, t.sc.baselineName(), f.Achieved,
				us(f.P50US), us(f.P99US), us(f.SliceP99MedianUS), baseP99, added, verdict, f.Errors, us(f.LagP99US))
		}
		p("\n")
		warnLag(p, together, togetherOf)
		for _, t := range together {
			if f := t.together; f.Renewed > 0 {
				p("- %s: %d requests renewed their session (%.1f%% of its requests here; the rate is fixed by the sessions, not the load), "+
					"their own p50 %s and p99 %s.\n", t.sc.name, f.Renewed, 100*float64(f.Renewed)/float64(max(f.Sent, 1)), us(f.RenewedP50US), us(f.RenewedP99US))
			}
		}
		p("\n")
	}

	if s := r.same; s != nil {
		p("### The JWT check's own share: two routes of one gateway at the same instants\n\n")
		p("Slices of different scenarios run seconds apart, and on a shared machine the tail moves that\n")
		p("much between seconds. Here one process, %s, gets %.0f req/s in all, alternating request by\n", s.scenario, s.rate)
		p("request between its public route and its JWT route (the same 1,000 tokens), for %s; each 1 s\n", time.Duration(o.rounds)*o.duration)
		p("slice of one route is paired with the same second of the other. The difference is what the JWT\n")
		p("check adds to the p99 on top of what every request through the gateway costs (the public\n")
		p("route's \"added\" above).\n\n")
		p("| route | achieved req/s | p50 | p90 | p99 | p99.9 | slice p99 (median) | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, row := range []struct {
			name string
			f    *fixedResult
		}{{"public", s.public}, {"jwt (HS256)", s.jwt}} {
			p("| %s | %.0f | %s | %s | %s | %s | %s | %d |\n", row.name, row.f.Achieved, us(row.f.P50US), us(row.f.P90US),
				us(row.f.P99US), us(row.f.P999US), us(row.f.SliceP99MedianUS), row.f.Errors)
		}
		p("\nJWT route − public route, p99: **%s** (median over %d paired slices; min %s, max %s); over all\n",
			signedUS(s.diffMedian()), len(s.diffs()), signedUS(s.diffMin()), signedUS(s.diffMax()))
		p("samples %s.\n\n", signedUS(s.jwt.P99US-s.public.P99US))
	}

	p("## Peak memory with %d concurrent keep-alive connections\n\n", o.rssConns)
	p("A fresh process per row; wrk holds %d connections busy for %s; VmHWM from /proc/PID/status.\n\n", o.rssConns, min(o.duration, rssDuration))
	if len(r.mem) == 0 {
		p("Not measured.\n\n")
	} else {
		p("| process | RSS idle | peak RSS (VmHWM) | req/s meanwhile | errors |\n|---|--:|--:|--:|--:|\n")
		for _, m := range r.mem {
			p("| %s | %s | %s | %.0f | %d |\n", m.name, kb(m.idleKB), kb(m.peakKB), m.rps, m.errors)
		}
		p("\n")
	}

	p("## Scenarios\n\n")
	for _, t := range r.targets {
		p("- **%s** — %s", t.sc.name, t.sc.desc)
		if t.ncreds > 0 {
			p(" (%d credentials)", t.ncreds)
		}
		if t.calls != nil && t.err == nil {
			var warm, measured, reqs int64
			for _, run := range t.runs {
				warm, measured, reqs = warm+run.WarmupCalls, measured+run.Calls, reqs+run.Requests
			}
			p(". %s: %d at setup (each credential sent once), %d in warm-ups, **%d in the measured runs** (%d requests",
				upperFirst(t.calls.what), t.setupCalls, warm, measured, reqs)
			if reqs > 0 {
				p(", %.4f per request", float64(measured)/float64(reqs))
			}
			p(")")
		}
		p("\n")
	}
	p("\nAll servers listen on 127.0.0.1. The upstream answers every request with a fixed %d-byte JSON body.\n", len(upstreamBody))
	p("The gateway runs as it ships: `authgateway serve -config <generated>`, auth-event log on (JSON to stdout,\n")
	p("which the harness sends to /dev/null: one write per request, no disk). The machine is shared, so\n")
	p("compare rows of one run (the ratios), not numbers across runs.\n")
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func signedUS(v float64) string {
	if v < 0 {
		return "−" + us(-v)
	}
	return "+" + us(v)
}

// cpuPerReq is the proxy's CPU microseconds per request of each run.
func cpuPerReq(runs []*loadResult) []float64 {
	var out []float64
	for _, r := range runs {
		if r.Requests > 0 {
			out = append(out, float64(r.ProxyCPU.Microseconds())/float64(r.Requests))
		}
	}
	return out
}

func us(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f ms", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2f ms", v/1000)
	default:
		return fmt.Sprintf("%.0f µs", v)
	}
}

func kb(v int64) string {
	if v <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(v)/1024)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

func numCPU() int { return runtime.NumCPU() }

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var v int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &v)
			return fmt.Sprintf("%.0f GiB RAM", float64(v)/(1<<20))
		}
	}
	return "RAM unknown"
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// binaryGoVersion is the Go release a binary was built with (`go version FILE`).
func binaryGoVersion(bin string) string {
	out, err := exec.Command("go", "version", bin).Output()
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return "unknown"
	}
	return f[len(f)-1]
}

// toolVersion runs `bin flag` and returns the first line it prints.
func toolVersion(bin, flag string) string {
	out, _ := exec.Command(bin, flag).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if line == "" {
		return bin + " (not found)"
	}
	if i := strings.Index(line, " Copyright"); i > 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

func jsonUnmarshal(out []byte, v any) error {
	if err := json.Unmarshal(bytes.TrimSpace(out), v); err != nil {
		return fmt.Errorf("parsing %q: %w", oneLine(string(out)), err)
	}
	return nil
}

// minBusyPercent: a proxy and its upstream that had CPU 1 less than this
// share of a closed-loop run were starved by other load on the machine.
const minBusyPercent = 95.0

// maxQuietLagUS is the generator's own lateness (p99) on an otherwise idle
// CPU 0: about 1 ms of timer and scheduling slack. More means other load.
const maxQuietLagUS = 1500

// fixedOf and togetherOf read one open-loop phase's result of a target.
func fixedOf(t *target) *fixedResult    { return t.fixed }
func togetherOf(t *target) *fixedResult { return t.together }

// baselineOf names t's baseline ("—" for a bare proxy) and returns its
// result in the phase res reads. Without one, added says why ("—", or
// "baseline did not run") and base is nil.
func baselineOf(ts []*target, t *target, res func(*target) *fixedResult) (name string, base *fixedResult, added string) {
	if t.sc.target == targetBare {
		return "—", nil, "—"
	}
	name = t.sc.baselineName()
	if b := find(ts, name); b != nil {
		base = res(b)
	}
	if base == nil {
		return name, nil, "baseline did not run"
	}
	return name, base, ""
}

// warnLag flags an open-loop phase whose generator ran late: its latencies
// are then mostly the machine's.
func warnLag(p func(string, ...any), ts []*target, res func(*target) *fixedResult) {
	var worst float64
	for _, t := range ts {
		if f := res(t); f != nil {
			worst = max(worst, f.LagP99US)
		}
	}
	if worst > maxQuietLagUS {
		p("**Disturbed:** the generator itself ran up to %s late (p99; about 1 ms when the machine is quiet):\n", us(worst))
		p("other load had its CPU, and this phase's latencies are mostly the machine's, not the proxies'.\n\n")
	}
}

// pairedDiff is the median of a[i]-b[i] over the slices both ran: each
// difference compares two slices of the same round, so a disturbance of the
// machine that spans the round cancels out.
func pairedDiff(a, b []float64) float64 { return median(pairedDiffs(a, b)) }

// pairedDiffs are a[i]-b[i] over the slices both ran.
func pairedDiffs(a, b []float64) []float64 {
	n := min(len(a), len(b))
	d := make([]float64, n)
	for i := range n {
		d[i] = a[i] - b[i]
	}
	return d
}

// clusterRatios writes each Redis Cluster scenario as ratios to its
// single-Redis scenario of the same run.
func (r *report) clusterRatios(p func(string, ...any)) {
	var rows []*target
	for _, t := range r.targets {
		if t.sc.versus != "" {
			rows = append(rows, t)
		}
	}
	if len(rows) == 0 {
		return
	}
	p("## Redis Cluster against a single Redis\n\n")
	p("Each `-rediscluster` scenario is its `-redis` scenario with `redis.url` naming a %d-master Redis Cluster\n", clusterMasters)
	p("(`redis+cluster://`, no replicas) instead of one redis-server, on the same CPU. Ratios are cluster ÷ single\n")
	p("of the medians above, same run: above 1 for req/s is faster on the cluster, above 1 for CPU and latency\n")
	p("is dearer. Redis commands per request come from the nodes' own counts (all of them for the cluster).\n\n")
	p("| scenario | vs | req/s | proxy CPU µs/req | p50 | p99 | Redis commands/req (single → cluster) |\n|---|---|--:|--:|--:|--:|--:|\n")
	for _, t := range rows {
		single := find(r.targets, t.sc.versus)
		switch {
		case single == nil:
			p("| %s | %s | — | — | — | — | %s not run |\n", t.sc.name, t.sc.versus, t.sc.versus)
			continue
		case t.err != nil || single.err != nil || len(t.runs) == 0 || len(single.runs) == 0:
			p("| %s | %s | — | — | — | — | a row did not run |\n", t.sc.name, t.sc.versus)
			continue
		}
		latency := func(ts *target, pick func(*loadResult) int64) float64 {
			var v []float64
			for _, run := range ts.runs {
				v = append(v, float64(pick(run)))
			}
			return median(v)
		}
		p50 := func(run *loadResult) int64 { return run.P50US }
		p99 := func(run *loadResult) int64 { return run.P99US }
		p("| %s | %s | **%.2f** | **%.2f** | %.2f | %.2f | %s → %s |\n", t.sc.name, t.sc.versus,
			median(rpsOf(t.runs))/median(rpsOf(single.runs)), median(cpuPerReq(t.runs))/median(cpuPerReq(single.runs)),
			latency(t, p50)/latency(single, p50), latency(t, p99)/latency(single, p99),
			callsPerRequest(single), callsPerRequest(t))
	}
	p("\n")
}

// callsPerRequest is the backing service's calls per measured request.
func callsPerRequest(t *target) string {
	var calls, reqs int64
	for _, run := range t.runs {
		calls, reqs = calls+run.Calls, reqs+run.Requests
	}
	if t.calls == nil || reqs == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(calls)/float64(reqs))
}

// maxAddedP99US is issue 22's bound on the p99 the gateway adds at half load.
const maxAddedP99US = 1000

// addedVerdict judges a p99 added (µs) against maxAddedP99US.
func addedVerdict(addedUS float64) string {
	if addedUS <= maxAddedP99US {
		return "✓"
	}
	return "✗"
}

// throughputGoal gives t's median req/s over its baseline's and issue 22's
// verdict on it ("—" where either is missing).
func throughputGoal(ts []*target, t *target) (ratio, verdict string) {
	if t.sc.target != targetGateway {
		return "—", "—"
	}
	base := find(ts, t.sc.baselineName())
	if base == nil || base.err != nil || len(base.runs) == 0 || len(t.runs) == 0 {
		return "—", "—"
	}
	v := median(rpsOf(t.runs)) / median(rpsOf(base.runs))
	ratio = fmt.Sprintf("%.2f", v)
	if t.sc.goal <= 0 {
		return ratio, "—"
	}
	mark := "✓"
	if v < t.sc.goal {
		mark = "✗"
	}
	return ratio, fmt.Sprintf("≥ %.2f× %s", t.sc.goal, mark)
}

// maxScaleRSSKB is issue 22's bound on a scale run's peak RSS (150 MiB).
const maxScaleRSSKB = 150 * 1024

// scaleRuns writes the scale runs: throughput against the baseline, peak
// RSS, and what a cold cache costs (the first pass over every rotating
// credential right after the start, against a second pass at once after).
func (r *report) scaleRuns(p func(string, ...any)) {
	var rows []*target
	for _, t := range r.targets {
		if t.sc.coldPass {
			rows = append(rows, t)
		}
	}
	if len(rows) == 0 {
		return
	}
	p("## Scale runs\n\n")
	p("Targets (issue 22): req/s ≥ %.2f× the baseline, peak RSS ≤ %d MiB. Peak RSS is VmHWM after the rounds. The\n", goalScale, maxScaleRSSKB/1024)
	p("cold-cache columns come from setup: right after the gateway started, every rotating credential was sent once\n")
	p("(%d requests in flight, from the harness, unpinned: every cache cold — API keys looked up in Redis, tokens\n", verifyWorkers)
	p("verified, routes matched for the first time), then all of them again at once (warm), the same way. Their\n")
	p("req/s is the harness's, not a peak; the gateway's CPU µs per request is the cost.\n\n")
	p("| scenario | rotating | req/s vs baseline | ≥ %.2f× | peak RSS | ≤ %d MiB | cold pass: time (req/s) | cold CPU µs/req | warm pass: time (req/s) | warm CPU µs/req | cold ÷ warm CPU | closed-loop CPU µs/req |\n", goalScale, maxScaleRSSKB/1024)
	p("|---|--:|--:|:-:|--:|:-:|--:|--:|--:|--:|--:|--:|\n")
	for _, t := range rows {
		if t.err != nil || t.cold == nil || len(t.runs) == 0 {
			reason := "not run"
			if t.err != nil {
				reason = oneLine(t.err.Error())
			}
			p("| %s | — | — | — | — | — | %s | — | — | — | — | — |\n", t.sc.name, reason)
			continue
		}
		ratio, verdict := throughputGoal(r.targets, t)
		if i := strings.LastIndexByte(verdict, ' '); i >= 0 {
			verdict = verdict[i+1:]
		}
		rss := "✓"
		if t.peakRSS > maxScaleRSSKB || t.peakRSS <= 0 {
			rss = "✗"
		}
		c := t.cold
		perReq := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(c.n) }
		rate := func(d time.Duration) float64 { return float64(c.n) / d.Seconds() }
		cw := "—"
		if c.warmCPU > 0 {
			cw = fmt.Sprintf("%.2f", float64(c.coldCPU)/float64(c.warmCPU))
		}
		p("| %s | %d | %s | %s | %s | %s | %s (%.0f) | %.1f | %s (%.0f) | %.1f | %s | %.1f |\n", t.sc.name, c.n, ratio, verdict,
			kb(t.peakRSS), rss, c.coldTime.Round(time.Millisecond), rate(c.coldTime), perReq(c.coldCPU),
			c.warmTime.Round(time.Millisecond), rate(c.warmTime), perReq(c.warmCPU), cw, median(cpuPerReq(t.runs)))
	}
	p("\n")
}
