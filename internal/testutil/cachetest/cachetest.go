// Package cachetest checks properties shared by the gateway's caches.
package cachetest

import (
	"testing"
	"time"
)

// CheckExpirySpread fails t unless the expiry times of entries stored at now
// with a time-to-live of ttl all fall within [now+4/5·ttl, now+ttl] and are
// spread over at least a tenth of ttl: entries cached together must not all
// fall due together, nor live longer than ttl.
func CheckExpirySpread(t testing.TB, now time.Time, ttl time.Duration, until []time.Time) {
	t.Helper()
	if len(until) == 0 {
		t.Fatal("no expiry times")
	}
	earliest, latest := until[0], until[0]
	for _, u := range until[1:] {
		if u.Before(earliest) {
			earliest = u
		}
		if u.After(latest) {
			latest = u
		}
	}
	switch {
	case latest.After(now.Add(ttl)):
		t.Fatalf("an entry lives %v, past its ttl %v", latest.Sub(now), ttl)
	case earliest.Before(now.Add(ttl * 4 / 5)):
		t.Fatalf("an entry lives only %v of its ttl %v", earliest.Sub(now), ttl)
	case latest.Sub(earliest) < ttl/10:
		t.Fatalf("expiries spread over %v only (ttl %v)", latest.Sub(earliest), ttl)
	}
}
