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
