package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"testing/synctest"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		floor, live, roots uint64
		want               int
	}{
		{32 * mib, 2 * mib, 1 * mib, 850},     // the runtime's minimum (4 MiB × 8.5) is live + floor
		{32 * mib, 3 * mib, 2 * mib, 640},     // 3 + 5 × 6.4 = 3 + 32 MiB
		{32 * mib, 7 * mib, 1 * mib, 400},     // 4 × (7 + 1) = 32 MiB: the floor still
		{32 * mib, 10 * mib, 1 * mib, 400},    // 4 × 11 = 44 MiB of headroom: a longer mark, rarer
		{32 * mib, 16 * mib, 0, 400},          // 10,000 cached sessions: 64 MiB of headroom (the cap)
		{32 * mib, 20 * mib, 0, 320},          // capped at twice the floor (Go's default would leave 20)
		{32 * mib, 24 * mib, 8 * mib, 200},    // live + stacks at the floor: still the cap
		{32 * mib, 60 * mib, 4 * mib, 100},    // live + stacks reach twice the floor: Go's default
		{32 * mib, 64 * mib, 1 * mib, 100},    // never below the default
		{1 << 40, 1 * mib, 0, maxPercent},     // an absurd floor: bounded
		{32 * mib, 0, 0, basePercent},         // before the first collection: unknown
		{32 * mib, 0, 300 << 10, basePercent}, // (roots alone say nothing)
	} {
		got := percentFor(tt.floor, tt.live, tt.roots)
		if got != tt.want {
			t.Errorf("percentFor(%d, %d, %d) = %d, want %d", tt.floor, tt.live, tt.roots, got, tt.want)
		}
		goal := max(tt.live+(tt.live+tt.roots)*uint64(got)/100, runtimeHeapMinimum*uint64(got)/100)
		want := tt.live + headroomFor(tt.floor, tt.live+tt.roots)
		if tt.live > 0 && got != maxPercent && (goal < want-want/100 || (got > basePercent && goal > want+want/100)) {
			t.Errorf("percentFor(%d, %d, %d) = %d puts the goal (%d) away from live + floor (%d)", tt.floor, tt.live, tt.roots, got, goal, want)
		}
	}
}

func readMetrics(names ...string) []uint64 {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	metrics.Read(s)
	out := make([]uint64, len(s))
	for i := range s {
		out[i] = s[i].Value.Uint64()
	}
	return out
}

// collectAndLook runs a collection and lets the tuner take its next look
// (in a synctest bubble, one poll interval passes at once, and Wait returns
// once the tuner is idle again).
func collectAndLook() {
	runtime.GC()
	time.Sleep(pollInterval)
	synctest.Wait()
}

// The tests change process-wide GC settings, so none runs in parallel.

func TestFloorRaisesGoalForSmallHeap(t *testing.T) {
	t.Setenv("GOGC", "") // set-but-empty would count as the operator's: unset it
	unsetenv(t, "GOGC")
	const floor = 64 << 20
	// Start from a collected heap (an earlier run may have left a large one).
	runtime.GC()
	runtime.GC()
	if goal := readMetrics("/gc/heap/goal:bytes")[0]; goal >= floor {
		t.Fatalf("heap goal %d MiB before tuning: the test needs a small heap", goal>>20)
	}
	// In a synctest bubble the tuner looks exactly when the test lets a
	// poll interval pass: "after one collection" below means one
	// collection and one look, however busy the machine is.
	synctest.Test(t, func(t *testing.T) {
		tu := Start(floor)
		if tu == nil {
			t.Fatal("Start returned nil without GOGC in the environment")
		}
		defer tu.Stop()
		// A test binary's live heap is a few MiB: after one collection the
		// goal must be the floor past it ...
		collectAndLook()
		live, goal := readMetrics("/gc/heap/live:bytes")[0], readMetrics("/gc/heap/goal:bytes")[0]
		if goal < live+floor-floor/100 {
			t.Fatalf("heap goal %d MiB after a collection with %d MiB live, want the floor (%d MiB) more", goal>>20, live>>20, floor>>20)
		}
		// ... and not much more: the floor is a floor, not a new multiplier.
		if goal > live+floor+floor/8 {
			t.Errorf("heap goal %d MiB with %d MiB live, want about the floor (%d MiB) more", goal>>20, live>>20, floor>>20)
		}
		if p := readMetrics("/gc/gogc:percent")[0]; p <= basePercent {
			t.Errorf("GOGC = %d with a small live heap, want more than %d", p, basePercent)
		}

		// A live heap a quarter of the floor or more takes longer to mark:
		// four times it is left, so it is marked no more often per byte
		// allocated than a small one.
		mid := make([][]byte, 24)
		for i := range mid {
			mid[i] = make([]byte, 1<<20)
		}
		collectAndLook()
		live, goal = readMetrics("/gc/heap/live:bytes")[0], readMetrics("/gc/heap/goal:bytes")[0]
		if want := live + 4*live; goal < want-want/50 || goal > want+floor/8 {
			t.Errorf("heap goal %d MiB with %d MiB live, want about 4 × live (%d MiB) more", goal>>20, live>>20, 4*live>>20)
		}
		runtime.KeepAlive(mid)

		// A live heap above twice the floor (the headroom's cap) gets Go's
		// default back, so a busy gateway (many connections) peaks no
		// higher than without the floor. One collection must be enough: a
		// raised GOGC left in place after the live heap grew would let the
		// heap run to many times its size before the next one.
		big := make([][]byte, 160)
		for i := range big {
			big[i] = make([]byte, 1<<20)
		}
		collectAndLook()
		if p := readMetrics("/gc/gogc:percent")[0]; p != basePercent {
			t.Errorf("GOGC = %d after one collection with a large live heap, want %d", p, basePercent)
		}
		live, goal = readMetrics("/gc/heap/live:bytes")[0], readMetrics("/gc/heap/goal:bytes")[0]
		if goal > 2*live+(8<<20) {
			t.Errorf("goal %d MiB with %d MiB live: more than Go's default", goal>>20, live>>20)
		}
		runtime.KeepAlive(big)

		tu.Stop()
		if p := debug.SetGCPercent(basePercent); p != basePercent {
			t.Errorf("after Stop GOGC = %d, want %d", p, basePercent)
		}
	})
}

func TestOperatorGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "50")
	if tu := Start(64 << 20); tu != nil {
		tu.Stop()
		t.Fatal("Start tuned although GOGC is set")
	}
	if p := readMetrics("/gc/gogc:percent")[0]; p != basePercent {
		t.Errorf("GOGC = %d, want it untouched (%d)", p, basePercent)
	}
}

func TestStopNil(t *testing.T) {
	var tu *Tuner
	tu.Stop() // must not panic
}

// unsetenv removes name for the rest of the test (t.Setenv restores it).
func unsetenv(t *testing.T, name string) {
	t.Helper()
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}
