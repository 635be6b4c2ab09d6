package oauth2

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

func benchAuthenticate(b *testing.B, client, secret string, deps strategies.Deps) {
	p := oidctest.Start(b, oidctest.Options{})
	s := newStrategy(b, gatewayConfig(p, time.Minute), deps)
	r := bearer(p.ClientCredentialsToken(b, client, secret, "data:read"))
	ctx := context.Background()
	if _, err := s.Authenticate(ctx, r); err != nil { // warm the caches
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate measures a token seen before: an opaque token whose
// introspection answer is cached (in memory, in Redis), and a JWT access
// token (verified-token cache; no introspection).
func BenchmarkAuthenticate(b *testing.B) {
	b.Run("opaque cached memory", func(b *testing.B) {
		benchAuthenticate(b, oidctest.ServiceClientID, oidctest.ServiceClientSecret, strategies.Deps{})
	})
	b.Run("opaque cached redis", func(b *testing.B) {
		srv := redistest.Start(b)
		rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		b.Cleanup(func() { _ = rc.Close() })
		benchAuthenticate(b, oidctest.ServiceClientID, oidctest.ServiceClientSecret, strategies.Deps{Redis: rc})
	})
	b.Run("jwt", func(b *testing.B) {
		benchAuthenticate(b, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret, strategies.Deps{})
	})
}
