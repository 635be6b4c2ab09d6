package apikey

import (
	"context"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// BenchmarkVerifyRedisUncached is the request path of a key the replica has
// not cached: parse, hash, and the Redis lookup (hash index, then record and
// last-used time in one pipeline) on a real redis-server over loopback.
func BenchmarkVerifyRedisUncached(b *testing.B) {
	srv := redistest.Start(b)
	c := newRedisClient(b, srv.URL())
	s := NewRedisStore(c, testStrategy, nil)
	key, _, err := NewManager(s, ManagerOptions{}).Create(context.Background(),
		CreateParams{Name: "svc", Roles: []string{"a", "b"}, Scopes: []string{"x"}})
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live"}, CacheTTL: -1, LastUsedInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
