package poll

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestWait runs in a synctest bubble: its pauses take no real time, and the
// durations it answers are exact.
func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if d, err := Wait(time.Second, func() error { return nil }); d != 0 || err != nil {
			t.Errorf("a condition that holds: %v, %v; want 0, nil", d, err)
		}

		start := time.Now()
		later := func() error {
			if time.Since(start) < 100*time.Millisecond {
				return errors.New("not yet")
			}
			return nil
		}
		if d, err := Wait(time.Second, later); err != nil || d < 100*time.Millisecond || d > 100*time.Millisecond+maxInterval {
			t.Errorf("a condition that holds after 100ms: %v, %v; want seen within %v of it", d, err, maxInterval)
		}

		never := errors.New("never")
		d, err := Wait(time.Second, func() error { return never })
		if !errors.Is(err, never) || d <= time.Second || d > time.Second+maxInterval {
			t.Errorf("a condition that never holds: %v, %v; want its error just after 1s", d, err)
		}

		// A look that a busy machine stalls past the limit is not the last.
		looks := 0
		stalled := func() error {
			if looks++; looks == 1 {
				time.Sleep(2 * time.Second)
				return errors.New("not yet")
			}
			return nil
		}
		if _, err := Wait(time.Second, stalled); err != nil || looks != 2 {
			t.Errorf("a first look that ended after the limit: %v after %d looks; want success at the second", err, looks)
		}
	})
}
