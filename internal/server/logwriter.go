package server

import (
	"io"
	"sync"
	"time"
)

// LogWriter buffers log lines and writes them out every 100 ms (sooner when
// 64 KiB are waiting, and on Close), so that logging one event per request
// does not cost a write system call per request. Every Write is one whole
// line from its caller, kept whole and in order.
//
// Requests never wait for the output itself: lines go into one buffer while
// a background goroutine writes the other, so a log sink that is slow for a
// moment (a pipe whose reader lags) does not stall request handling. Only
// when maxBuffered bytes are waiting do writers block, until the sink
// catches up: no line is dropped, and memory stays bounded.
type LogWriter struct {
	out io.Writer

	mu    sync.Mutex
	room  *sync.Cond // signalled when a write-out finishes
	buf   []byte     // lines waiting
	spare []byte     // the other buffer; nil while it is being written out

	flushMu sync.Mutex // one write-out at a time
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

const (
	logFlushEvery  = 100 * time.Millisecond
	logFlushAt     = 64 << 10 // bytes waiting that start a write-out early
	logMaxBuffered = 4 << 20  // bytes waiting that make writers wait
)

// NewLogWriter starts a LogWriter on out.
func NewLogWriter(out io.Writer) *LogWriter {
	lw := &LogWriter{out: out, buf: make([]byte, 0, logFlushAt), spare: make([]byte, 0, logFlushAt),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	lw.room = sync.NewCond(&lw.mu)
	go lw.flushLoop()
	return lw
}

func (lw *LogWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	for len(lw.buf) > 0 && len(lw.buf)+len(p) > logMaxBuffered {
		lw.room.Wait()
	}
	lw.buf = append(lw.buf, p...)
	full := len(lw.buf) >= logFlushAt
	lw.mu.Unlock()
	if full {
		select {
		case lw.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes out what is buffered, and returns the sink's error if any.
func (lw *LogWriter) Flush() error {
	lw.flushMu.Lock()
	defer lw.flushMu.Unlock()
	lw.mu.Lock()
	if len(lw.buf) == 0 {
		lw.mu.Unlock()
		return nil
	}
	out := lw.buf
	lw.buf, lw.spare = lw.spare[:0], nil
	lw.room.Broadcast() // the buffer writers wait on is empty now
	lw.mu.Unlock()

	_, err := lw.out.Write(out)

	lw.mu.Lock()
	if cap(out) > logMaxBuffered {
		out = make([]byte, 0, logFlushAt) // a burst grew it: do not keep that much
	}
	lw.spare = out[:0]
	lw.room.Broadcast()
	lw.mu.Unlock()
	return err
}

func (lw *LogWriter) flushLoop() {
	defer close(lw.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-lw.stop:
			return
		case <-t.C:
		case <-lw.kick:
		}
		_ = lw.Flush()
	}
}

// Close stops the flusher and flushes.
func (lw *LogWriter) Close() error {
	close(lw.stop)
	<-lw.done
	return lw.Flush()
}
