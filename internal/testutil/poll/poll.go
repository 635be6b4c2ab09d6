// Package poll waits, in tests, for what happens in the background (a
// watcher applying a revocation, a cache entry ending, a replica catching
// up, a process starting) without asserting how long it takes.
package poll

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// maxInterval bounds the pause between two looks. The first pause is 1 ms
// and each next one doubles: a quick change is seen at once, and a slow one
// (a process starting, a rate-limit window ending) is not asked about
// hundreds of times a second on a shared machine.
const maxInterval = 20 * time.Millisecond

// Wait calls cond until it returns nil and answers how long that took; if
// limit passes first, it answers an error that wraps cond's last one. The
// last look is always begun after limit: a busy machine that stalls the
// test makes it wait longer, never fail sooner. It does not touch a
// testing.TB: helpers that return errors, and goroutines, may call it.
func Wait(limit time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	pause := time.Millisecond
	for {
		late := time.Since(start) > limit
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if late {
			return time.Since(start), fmt.Errorf("not within %s: %w", limit, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, maxInterval)
	}
}

// Until is Wait that fails t, with what and cond's last error, when limit
// passes.
func Until(t testing.TB, limit time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	d, err := Wait(limit, cond)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// True is Until for a condition that is true or not.
func True(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Until(t, limit, what, func() error {
		if cond() {
			return nil
		}
		return errStillFalse
	})
}

var errStillFalse = errors.New("still false")
