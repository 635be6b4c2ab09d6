package tracing

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// stuckExporter stands for a collector that does not answer: its first
// export blocks until released. entered (buffered) says it is stuck: a
// send that waited for a reader could miss a test not yet reading.
type stuckExporter struct {
	*tracetest.InMemoryExporter
	entered, release chan struct{}
	first            sync.Once
	exported         atomic.Int64
}

func (e *stuckExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.first.Do(func() {
		e.entered <- struct{}{}
		<-e.release
	})
	e.exported.Add(int64(len(spans)))
	return e.InMemoryExporter.ExportSpans(ctx, spans)
}

// TestQueueNeverBlocks: with the exporter stuck, ending spans does not
// wait; what the queue cannot hold is dropped and counted, and what it
// held is exported once the collector answers.
func TestQueueNeverBlocks(t *testing.T) {
	exp := &stuckExporter{InMemoryExporter: tracetest.NewInMemoryExporter(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	var dropped atomic.Int64
	q := newQueue(exp, 4, func() { dropped.Add(1) })
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(q))
	tr := tp.Tracer("test")
	_, s := tr.Start(context.Background(), "first")
	s.End()
	go func() { _ = q.ForceFlush(context.Background()) }()
	<-exp.entered // the exporter is now stuck on the first span
	start := time.Now()
	for range 20 {
		_, s := tr.Start(context.Background(), "more")
		s.End()
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("ending 20 spans took %v with the exporter stuck", d)
	}
	if got := dropped.Load(); got != 16 {
		t.Errorf("dropped = %d, want 16 (20 ended, 4 queued)", got)
	}
	close(exp.release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported.Load(); got != 5 {
		t.Errorf("exported %d spans, want 5 (the first and the 4 queued)", got)
	}
}
