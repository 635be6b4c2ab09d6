package server

import (
	"slices"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/session"
)

// authFailuresLimit names the auth-failure limiter's counters in Redis.
const authFailuresLimit = "auth_failures"

// redisParts names the shared state that lives on one Redis Cluster master
// each: the auth-failure notices, the sessions, each api_key strategy's
// keys. (Rate-limit counters are spread over every master by client.)
func (a *App) redisParts() []redisconn.Part {
	parts := []redisconn.Part{{Name: "auth-failure notices", Key: ratelimit.NoticeChannel(authFailuresLimit)}}
	if a.sessions != nil {
		parts = append(parts, redisconn.Part{Name: "sessions", Key: session.DenyChannel})
	}
	cfg := a.Config()
	names := make([]string, 0, len(cfg.Strategies))
	for name, sc := range cfg.Strategies {
		if sc != nil && sc.Type == "api_key" && sc.Store == "redis" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		parts = append(parts, redisconn.Part{Name: "api keys of " + name, Key: apikey.RedisNamespace(name)})
	}
	return parts
}
