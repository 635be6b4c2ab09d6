package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// logLines collects a JSON logger's records.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// messages returns the msg of every record so far.
func (l *logLines) messages(t *testing.T) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec.Msg)
	}
	return out
}

// countPrefix counts the messages that start with p.
func countPrefix(msgs []string, p string) int {
	n := 0
	for _, m := range msgs {
		if strings.HasPrefix(m, p) {
			n++
		}
	}
	return n
}

// outageLimiters builds two Redis limiters on s sharing an OutageLog with
// the given reminder interval, and a function making n calls across them.
func outageLimiters(t *testing.T, s *redistest.Server, interval time.Duration) (*logLines, []*Limiter, func(n int)) {
	t.Helper()
	lines := &logLines{}
	outages := NewOutageLog(slog.New(slog.NewJSONHandler(lines, nil)), interval)
	var limiters []*Limiter
	for _, name := range []string{"auth_failures", "route:a"} {
		limiters = append(limiters, newRedisLimiter(t, newClient(t, s.Addr()), Options{Name: name, Limit: 100,
			Period: time.Minute, Timeout: 50 * time.Millisecond, Outages: outages}))
	}
	return lines, limiters, func(n int) {
		for i := range n {
			limiters[i%2].Take(context.Background(), "k")
		}
	}
}

// TestOutageLogOnePerIncident: with Redis stopped, many failed calls of
// several limiters sharing an OutageLog give one line naming the outage;
// the first call that works again ends the incident with one line; a new
// outage is a new incident.
func TestOutageLogOnePerIncident(t *testing.T) {
	s := redistest.Start(t)
	lines, limiters, calls := outageLimiters(t, s, time.Hour)
	calls(4)
	if msgs := lines.messages(t); len(msgs) != 0 {
		t.Fatalf("Redis up: logged %q, want nothing", msgs)
	}

	s.Stop()
	calls(20)
	if msgs := lines.messages(t); len(msgs) != 1 || countPrefix(msgs, "rate limit store outage: Redis is not answering") != 1 {
		t.Fatalf("20 failed calls: logged %q, want one outage line", msgs)
	}

	s.Restart()
	poll.Until(t, 10*time.Second, "the limiter working with Redis back", func() error {
		return limiters[0].Take(context.Background(), "k").StoreError
	})
	calls(4)
	msgs := lines.messages(t)
	if countPrefix(msgs, "rate limit store outage over") != 1 || countPrefix(msgs, "rate limit store outage:") != 1 {
		t.Errorf("after the restart: logged %q, want one outage line and one end-of-outage line", msgs)
	}

	s.Stop()
	calls(3)
	if n := countPrefix(lines.messages(t), "rate limit store outage:"); n != 2 {
		t.Errorf("a second outage: %d outage lines in all, want 2", n)
	}
}

// TestOutageLogReminds: an outage that goes on is mentioned again once per
// interval, not on every failed call. The clock is the log's own, moved by
// the test, so the count is exact whatever the machine's load.
func TestOutageLogReminds(t *testing.T) {
	lines := &logLines{}
	o := NewOutageLog(slog.New(slog.NewJSONHandler(lines, nil)), 200*time.Millisecond)
	now := time.Unix(1_700_000_000, 0)
	o.now = func() time.Time { return now }
	err := errors.New("dial tcp: connection refused")
	// 0.7 s of failures every 10 ms at a 0.2 s interval: one outage line,
	// then reminders at 0.2, 0.4 and 0.6 s.
	for elapsed := time.Duration(0); elapsed < 700*time.Millisecond; elapsed += 10 * time.Millisecond {
		o.failed("route:a", DenyOnError, err)
		now = now.Add(10 * time.Millisecond)
	}
	msgs := lines.messages(t)
	if countPrefix(msgs, "rate limit store outage:") != 1 || countPrefix(msgs, "rate limit store outage continues") != 3 || len(msgs) != 4 {
		t.Errorf("logged %q, want one outage line and 3 reminders", msgs)
	}
	o.succeeded()
	if msgs := lines.messages(t); len(msgs) != 5 || countPrefix(msgs, "rate limit store outage over") != 1 {
		t.Errorf("after a call that works: logged %q, want one end-of-outage line more", msgs)
	}
}
