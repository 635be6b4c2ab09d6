package tracing

import (
	"context"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// queue is a batching span processor. The SDK's BatchSpanProcessor drops
// spans when its queue is full too, but counts the drops only through the
// SDK's experimental self-observability metrics; this one tells OnDrop, so
// /metrics can show them. A request ending a span never waits: a full
// queue drops the span.
type queue struct {
	exp     sdktrace.SpanExporter
	spans   chan sdktrace.ReadOnlySpan
	flushes chan chan struct{}
	onDrop  func()
	quit    chan struct{} // closed by Shutdown
	done    chan struct{} // closed when run has exported the rest
	stop    sync.Once
}

const (
	defaultQueueSize = 4096
	batchSize        = 512
	batchInterval    = time.Second
	exportTimeout    = 10 * time.Second
)

func newQueue(exp sdktrace.SpanExporter, size int, onDrop func()) *queue {
	if size <= 0 {
		size = defaultQueueSize
	}
	if onDrop == nil {
		onDrop = func() {}
	}
	q := &queue{exp: exp, spans: make(chan sdktrace.ReadOnlySpan, size), flushes: make(chan chan struct{}), onDrop: onDrop, quit: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (q *queue) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	select {
	case q.spans <- s:
	default:
		q.onDrop()
	}
}

func (q *queue) run() {
	defer close(q.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, batchSize)
	tick := time.NewTicker(batchInterval)
	defer tick.Stop()
	export := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
		// An unreachable collector loses this batch; the next one is tried
		// again. Spans are diagnostics, not data to hold requests for.
		_ = q.exp.ExportSpans(ctx, batch)
		cancel()
		clear(batch)
		batch = batch[:0]
	}
	drain := func() {
		for {
			select {
			case s := <-q.spans:
				if batch = append(batch, s); len(batch) == batchSize {
					export()
				}
			default:
				export()
				return
			}
		}
	}
	for {
		select {
		case s := <-q.spans:
			if batch = append(batch, s); len(batch) == batchSize {
				export()
			}
		case <-tick.C:
			export()
		case reply := <-q.flushes:
			drain()
			close(reply)
		case <-q.quit:
			drain()
			return
		}
	}
}

// ForceFlush exports every span queued so far.
func (q *queue) ForceFlush(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case q.flushes <- reply:
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued and stops the exporter.
func (q *queue) Shutdown(ctx context.Context) error {
	q.stop.Do(func() { close(q.quit) })
	select {
	case <-q.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return q.exp.Shutdown(ctx)
}
