package apikey

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/gcbench"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// BenchmarkVerifierCacheGC: 10,000 keys read from a real Redis store into
// the Verifier's cache (its default size; two roles and a scope each): the
// heap objects they keep live and the time of a full collection over them.
func BenchmarkVerifierCacheGC(b *testing.B) {
	srv := redistest.Start(b)
	s := NewRedisStore(newRedisClient(b, srv.URL()), testStrategy, nil)
	ctx := context.Background()
	m := NewManager(s, ManagerOptions{})
	keys := make([]string, 10_000)
	for i := range keys {
		key, _, err := m.Create(ctx, CreateParams{Name: fmt.Sprintf("svc-%d", i), Roles: []string{"service", "reader"}, Scopes: []string{"orders:read"}})
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = key
	}
	v, err := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live"}, LastUsedInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	gcbench.Run(b, func() any {
		for _, k := range keys {
			if _, err := v.Verify(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
		return v
	})
}
