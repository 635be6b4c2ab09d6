package server

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedSink blocks every Write until released, recording what it got.
type gatedSink struct {
	mu      sync.Mutex
	got     bytes.Buffer
	gate    chan struct{}
	entered chan struct{}
}

func newGatedSink() *gatedSink {
	return &gatedSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (s *gatedSink) Write(p []byte) (int, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.Write(p)
}

func (s *gatedSink) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.got.String() }

// TestLogWriterKeepsEveryLineInOrder: lines from concurrent writers all
// arrive, whole, each writer's in its order.
func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	lw := NewLogWriter(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) }))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				fmt.Fprintf(lw, "w%d %06d %s\n", w, i, strings.Repeat("x", i%300))
			}
		}()
	}
	wg.Wait()
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*5000 {
		t.Fatalf("%d lines, want %d", len(lines), 8*5000)
	}
	for _, l := range lines {
		var w string
		var i int
		if _, err := fmt.Sscanf(l, "%s %d", &w, &i); err != nil || len(l) != len(w)+8+i%300 {
			t.Fatalf("torn line %q", l)
		}
		if i != next[w] {
			t.Fatalf("%s: line %d after %d", w, i, next[w]-1)
		}
		next[w]++
	}
}

// TestLogWriterDoesNotWaitForASlowSink: while the sink is stuck, writers
// carry on until logMaxBuffered bytes wait; then they wait (nothing is
// dropped), and everything arrives once the sink moves again.
func TestLogWriterDoesNotWaitForASlowSink(t *testing.T) {
	sink := newGatedSink()
	lw := NewLogWriter(sink)
	line := []byte(strings.Repeat("y", 99) + "\n")
	// Fill past logFlushAt so a write-out starts and blocks in the sink.
	for range logFlushAt/len(line) + 1 {
		_, _ = lw.Write(line)
	}
	<-sink.entered
	// The sink is stuck; a megabyte more must still go in without waiting.
	wrote := make(chan int)
	go func() {
		n := 0
		for range (1 << 20) / len(line) {
			_, _ = lw.Write(line)
			n++
		}
		wrote <- n
	}()
	var n int
	select {
	case n = <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("writers waited for a stuck sink with far less than logMaxBuffered buffered")
	}
	// Past the bound, a writer waits.
	blocked := make(chan struct{})
	go func() {
		for range logMaxBuffered/len(line) + 1 {
			_, _ = lw.Write(line)
		}
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Fatal("writers were never held back: the buffer grew past logMaxBuffered")
	case <-time.After(200 * time.Millisecond):
	}
	close(sink.gate) // the sink recovers
	select {
	case <-blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("writers still held after the sink recovered")
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	total := logFlushAt/len(line) + 1 + n + logMaxBuffered/len(line) + 1
	if got := strings.Count(sink.String(), "\n"); got != total {
		t.Fatalf("%d lines reached the sink, want %d", got, total)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// BenchmarkLogWriterLine is the request path's cost of one auth-event line.
func BenchmarkLogWriterLine(b *testing.B) {
	lw := NewLogWriter(writerFunc(func(p []byte) (int, error) { return len(p), nil }))
	defer lw.Close()
	line := []byte(`{"time":"2026-11-26T23:30:00.123456789Z","level":"INFO","msg":"auth","component":"proxy","request_id":"01HZX","route":"api","method":"GET","path":"/api/items","client_ip":"127.0.0.1","strategy":"jwt","outcome":"authenticated","subject":"user-1","status":200,"duration_us":412}` + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_, _ = lw.Write(line)
	}
}
