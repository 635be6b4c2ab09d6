// Package poll waits, in tests, for what happens in the background (a
// watcher applying a revocation, a cache entry ending, a replica catching
// up) without asserting how long it takes.
package poll

import (
	"testing"
	"time"
)

// interval is the pause between two looks.
const interval = 5 * time.Millisecond

// Until calls cond until it returns nil and answers how long that took; if
// limit passes first, t fails with what and cond's last error.
func Until(t testing.TB, limit time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(interval)
	}
}

// True is Until for a condition that is true or not.
func True(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Until(t, limit, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

type notYet struct{}

func (notYet) Error() string { return "still false" }

var errNotYet error = notYet{}
