package redisconn

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestErrorComponent pins the key namespaces a failed command is counted
// under: each store's own prefix, whatever the argument's position.
func TestErrorComponent(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		cmd  redis.Cmder
		want string
	}{
		{redis.NewStringCmd(ctx, "get", "authgw:{apikey:machine}:hash:ab"), ComponentAPIKeys},
		{redis.NewCmd(ctx, "evalsha", "sha", 1, "authgateway:ratelimit:route:api:ip:10.0.0.1"), ComponentRateLimit},
		{redis.NewStringCmd(ctx, "script", "load", "return 1"), ComponentRateLimit},
		{redis.NewZSliceCmd(ctx, "zrangebyscore", "authgw:{session}:deny", "0", "+inf"), ComponentSessions},
		{redis.NewStringCmd(ctx, "get", "authgateway:introspect:sso:00ff"), ComponentIntrospect},
		{redis.NewStatusCmd(ctx, "ping"), ComponentOther},
	} {
		if got := component(tt.cmd); got != tt.want {
			t.Errorf("component(%v) = %q, want %q", tt.cmd.Args(), got, tt.want)
		}
	}
}
