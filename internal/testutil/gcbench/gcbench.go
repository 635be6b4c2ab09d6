// Package gcbench measures what a cache's live entries cost the garbage
// collector: the heap objects and bytes they keep live, and the time of a
// full collection with them in memory. Every collection marks the whole
// live heap, so with tens of thousands of cached tokens, keys or sessions
// this is what sets the length of the mark phases under load.
package gcbench

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// Run calls fill (which must keep what it builds reachable, e.g. in a cache
// it returns through keep), then times full collections: ns/op is one
// collection with the filled heap live; live-objs and live-MB are what
// fill added to the live heap, scan-MB the part of it the collector must
// scan for pointers (the rest, string bytes and the like, it only marks).
func Run(b *testing.B, fill func() (keep any)) {
	b.Helper()
	before := liveHeap()
	keep := fill()
	after := liveHeap()
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(keep)
	// After the loop: b.Loop's start clears metrics reported before it.
	b.ReportMetric(float64(after.objects)-float64(before.objects), "live-objs")
	b.ReportMetric((float64(after.bytes)-float64(before.bytes))/(1<<20), "live-MB")
	b.ReportMetric((float64(after.scan)-float64(before.scan))/(1<<20), "scan-MB")
}

type heap struct{ objects, bytes, scan uint64 }

func liveHeap() heap {
	runtime.GC()
	runtime.GC() // the second finishes the sweep of the first's garbage
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	scan := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(scan)
	return heap{m.HeapObjects, m.HeapAlloc, scan[0].Value.Uint64()}
}
