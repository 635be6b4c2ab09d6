package session

import (
	"context"
	"fmt"
	"testing"

	"github.com/authgateway/authgateway/internal/testutil/gcbench"
)

// BenchmarkSessionsGC: 10,000 sessions in the in-memory store, each
// refreshed once (an identity with an email and two roles): the heap
// objects they keep live and the time of a full collection over them.
func BenchmarkSessionsGC(b *testing.B) {
	m := newManager(b, nil, newClock())
	ctx := context.Background()
	gcbench.Run(b, func() any {
		for i := range 10_000 {
			id := Identity{Subject: fmt.Sprintf("user-%d", i), Email: fmt.Sprintf("user-%d@example.test", i), Roles: []string{"reader", fmt.Sprintf("team-%d", i%50)}}
			tok, err := m.Start(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Refresh(ctx, tok.Refresh); err != nil {
				b.Fatal(err)
			}
		}
		return m
	})
}
