package introspect

import (
	"context"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/cachetest"
)

// TestCacheSpreadsExpiry: answers stored at the same moment do not all
// expire together (a restart would otherwise send every token to the
// authorization server again at the same instant), and none is kept longer
// than CacheTTL or past the token's exp.
func TestCacheSpreadsExpiry(t *testing.T) {
	const ttl = 5 * time.Minute
	c, clk := newClient(t, Options{URL: "http://127.0.0.1:1/introspect", ClientID: "gw", ClientSecret: "s", CacheTTL: ttl})
	now := clk.Now()
	var until []time.Time
	for i := range 500 {
		var key [32]byte
		key[0], key[1] = byte(i), byte(i>>8)
		e := &entry{Result: &Result{Active: true, Subject: "s", ExpiresAt: now.Add(time.Hour)}}
		c.store(context.Background(), key, e)
		until = append(until, e.Until)
	}
	cachetest.CheckExpirySpread(t, now, ttl, until)
	short := &entry{Result: &Result{Active: true, Subject: "s", ExpiresAt: now.Add(time.Minute)}}
	c.store(context.Background(), [32]byte{0xff}, short)
	if short.Until.After(now.Add(time.Minute)) {
		t.Fatalf("an answer outlives its token: kept %v, exp in 1m", short.Until.Sub(now))
	}
}

// TestMemCacheDropsExpired: verdicts that expired leave the cache as new
// ones come in, long before it is full.
func TestMemCacheDropsExpired(t *testing.T) {
	c := &memCache{max: 10_000, m: make(map[[32]byte]*entry)}
	now := time.Now()
	key := func(tag byte, i int) [32]byte { return [32]byte{tag, byte(i), byte(i >> 8)} }
	for i := range 1000 {
		c.put(key(1, i), &entry{Until: now.Add(time.Minute)}, now)
	}
	later := now.Add(2 * time.Minute)
	for i := range 1000 {
		c.put(key(2, i), &entry{Until: later.Add(time.Hour)}, later)
	}
	if n := len(c.m); n > 1200 {
		t.Fatalf("%d entries after 1000 expired and 1000 new; want the expired mostly gone (≤ 1200)", n)
	}
	for i := range 1000 {
		if c.get(key(2, i), later) == nil {
			t.Fatalf("live verdict %d dropped", i)
		}
	}
}
