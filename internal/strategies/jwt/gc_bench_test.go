package jwt

import (
	"context"
	"fmt"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/testutil/gcbench"
)

// BenchmarkTokenCacheGC: 10,000 verified tokens in the cache (the gateway's
// default size; two roles, two scopes, an email each): the heap objects
// they keep live and the time of a full collection over them.
func BenchmarkTokenCacheGC(b *testing.B) {
	s := newTestJWT(b, nil)
	ctx := context.Background()
	gcbench.Run(b, func() any {
		for i := range 10_000 {
			tok := sign(b, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) {
				c["sub"], c["jti"] = fmt.Sprintf("user-%d", i), fmt.Sprintf("jti-%d", i)
			}), nil)
			if _, err := s.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		return s
	})
}
