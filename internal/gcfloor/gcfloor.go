// Package gcfloor keeps the garbage collector from collecting before a
// floor of allocation since the last collection.
//
// With Go's default (GOGC=100) the next collection starts when the heap is
// twice what the last one left live, and never below 4 MiB. A gateway keeps
// little live (2–4 MiB at rest: config, caches, pools) while it allocates
// about 10 KB per request, so under load it would collect several times a
// second. Each mark phase slows the requests that run during it, and on one
// or two cores that is what sets the p99. Letting the heap grow at least the
// floor past what is live makes collections rarer under load, and as rare
// with 10,000 cached sessions or keys (tens of MB live) as with none; once
// the live heap and the goroutine stacks reach the floor (many
// connections), GOGC=100 gives that much anyway and applies unchanged, so
// the peak heap does not grow.
//
// A large live heap takes long to mark (about 20 ms of a loaded core per
// collection with 10,000 cached sessions, 16 MiB), and every request in a
// mark phase is slowed: there the headroom grows with the live heap, to
// four times it, up to twice the floor, so such collections come half as
// often. Past that, and past twice the floor of live heap, Go's default.
//
// The gateway's floor is server.gc_heap_floor (default 32 MiB, 0 off).
package gcfloor

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// maxPercent bounds GOGC when the live heap is tiny (a floor of 32 MiB over
// a few hundred KiB of live heap), where the floor is reached anyway.
const maxPercent = 10000

// basePercent is GOGC above the floor: Go's default.
const basePercent = 100

// goalMetrics are the collection counter and the three inputs of the
// runtime's heap goal: live + (live + stacks + globals) × GOGC/100, all from
// the last collection, but at least runtimeHeapMinimum × GOGC/100
// (runtime/mgcpacer.go).
var goalMetrics = [...]string{"/gc/cycles/total:gc-cycles", "/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

const runtimeHeapMinimum = 4 << 20

// pollInterval is how often the tuner looks for a finished collection.
// Between a collection and the next poll the runtime's goal may be the
// floor's GOGC applied to a live heap that just grew (connections arriving);
// a short interval bounds what can be allocated meanwhile.
const pollInterval = 50 * time.Millisecond

// Tuner adjusts GOGC after every collection so that the next heap goal is
// at least the live heap plus the headroom (headroomFor), and never less
// than GOGC=100 gives.
//
// It polls the runtime's collection counter rather than hooking a cleanup
// on a sentinel object: under load a delayed cleanup can run during the
// next mark phase, allocate its successor already marked, and so miss a
// cycle while a raised GOGC lets the heap grow.
type Tuner struct {
	floor   uint64
	sample  []metrics.Sample
	percent int
	cycles  uint64

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Start begins tuning with the given floor in bytes, unless the GOGC
// environment variable is set (the operator's setting wins). It returns nil
// when it does not tune. GOMEMLIMIT keeps working: the runtime collects
// earlier as the heap nears the limit, whatever GOGC says.
func Start(floor uint64) *Tuner {
	if _, set := os.LookupEnv("GOGC"); set || floor == 0 {
		return nil
	}
	t := &Tuner{floor: floor, percent: basePercent, stop: make(chan struct{}), done: make(chan struct{})}
	for _, name := range goalMetrics {
		t.sample = append(t.sample, metrics.Sample{Name: name})
	}
	if !t.adjust() {
		return nil
	}
	go t.run()
	return t
}

// Stop ends tuning and restores GOGC=100. Safe on a nil Tuner and more
// than once.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.once.Do(func() { close(t.stop) })
	<-t.done
}

func (t *Tuner) run() {
	defer close(t.done)
	defer debug.SetGCPercent(basePercent)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.adjust()
		}
	}
}

// adjust sets GOGC for what the last collection left, if one finished since
// the last call, and reports whether the runtime has the metrics it needs.
func (t *Tuner) adjust() bool {
	metrics.Read(t.sample)
	var v [len(goalMetrics)]uint64
	for i, smp := range t.sample {
		if smp.Value.Kind() != metrics.KindUint64 {
			return false // not in this runtime: leave GOGC alone
		}
		v[i] = smp.Value.Uint64()
	}
	if v[0] == t.cycles && t.cycles != 0 {
		return true
	}
	t.cycles = v[0]
	p := percentFor(t.floor, v[1], v[2]+v[3])
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

// headroomMultiple and headroomCap: the headroom grows to headroomMultiple
// times the live heap and roots, but not past headroomCap floors.
const (
	headroomMultiple = 4
	headroomCap      = 2
)

// headroomFor is the allocation to leave between a collection and the next
// for scan bytes of live heap and roots: the floor, or more for a heap
// whose marking is long (see the package comment).
func headroomFor(floor, scan uint64) uint64 {
	return max(floor, min(headroomMultiple*scan, headroomCap*floor))
}

// percentFor is the GOGC that leaves at least headroomFor(floor, live +
// roots) bytes of allocation between the live heap and the next goal, but
// never under basePercent or over maxPercent. The runtime's goal is live +
// (live + roots) × GOGC/100, so GOGC = headroom × 100 / (live + roots),
// rounded up; once live + roots reaches the headroom that is Go's default.
// A cache holding tens of MB (10,000 sessions or API keys) then does not
// make collections more frequent than a small heap has them: the headroom,
// not the goal, is what sets how often a busy gateway collects. The
// runtime's own minimum (4 MiB × GOGC/100) must not push the goal past live
// + headroom either. Before the first
// collection live is 0: nothing is known yet, and a large GOGC there would
// let the heap grow unchecked.
func percentFor(floor, live, roots uint64) int {
	scan := live + roots
	headroom := headroomFor(floor, scan)
	if live == 0 || scan >= headroom {
		return basePercent
	}
	byFormula := (headroom*100 + scan - 1) / scan // rounded up: at least the headroom
	byMinimum := (live + headroom) * 100 / runtimeHeapMinimum
	return int(min(max(min(byFormula, byMinimum), basePercent), maxPercent))
}
