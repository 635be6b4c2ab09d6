package redisconn

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrorCounter counts Redis failures by component (the gateway's metrics).
type ErrorCounter interface {
	RedisError(component string)
}

// Components, the label of a failure: whose keys the failed command
// touched, by their namespace.
const (
	ComponentRateLimit  = "ratelimit"
	ComponentAPIKeys    = "apikey"
	ComponentSessions   = "session"
	ComponentIntrospect = "introspect"
	ComponentPubSub     = "pubsub"
	// ComponentConnection is a failed dial, whoever needed the connection
	// (a subscription's reconnect included).
	ComponentConnection = "connection"
	ComponentOther      = "other"
)

// CountErrors tells counter of every command of c that fails, and every
// dial: Redis errors, timeouts and unreachable servers. A missing key
// (redis.Nil) is no failure, nor is a caller that went away (its context
// canceled). Each command is counted once, under the component whose
// keys it touched.
func CountErrors(c redis.UniversalClient, counter ErrorCounter) {
	c.AddHook(errorHook{counter})
}

type errorHook struct{ counter ErrorCounter }

func (h errorHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if failed(err) {
			h.counter.RedisError(ComponentConnection)
		}
		return conn, err
	}
}

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if failed(err) {
			h.counter.RedisError(component(cmd))
		}
		return err
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if failed(err) && len(cmds) > 0 {
			h.counter.RedisError(component(cmds[0])) // one pipeline, one failure
		}
		return err
	}
}

// failed reports whether err is a Redis failure: not a missing key, not a
// caller that gave up.
func failed(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !errors.Is(err, context.Canceled)
}

// component names whose keys cmd touched, by the namespaces the gateway's
// stores use.
func component(cmd redis.Cmder) string {
	if cmd.Name() == "script" {
		// Only the rate limiter's store (ulule) loads scripts ahead; the
		// others run theirs with EVALSHA, classified by key below.
		return ComponentRateLimit
	}
	for _, a := range cmd.Args()[1:] {
		s, ok := a.(string)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(s, "authgateway:ratelimit:"):
			return ComponentRateLimit
		case strings.HasPrefix(s, "authgw:{apikey") || strings.HasPrefix(s, "authgw:apikey:"):
			return ComponentAPIKeys
		case strings.HasPrefix(s, "authgw:{session}") || strings.HasPrefix(s, "authgw:session:"):
			return ComponentSessions
		case strings.HasPrefix(s, "authgateway:introspect:"):
			return ComponentIntrospect
		}
	}
	return ComponentOther
}

type errorCounterKey struct{}

// WithErrorCounter returns ctx carrying counter, for work that runs under
// it outside a command (a subscription: package pubsub counts a lost or
// failed one).
func WithErrorCounter(ctx context.Context, counter ErrorCounter) context.Context {
	return context.WithValue(ctx, errorCounterKey{}, counter)
}

// ErrorCounterFrom returns the counter ctx carries, or nil.
func ErrorCounterFrom(ctx context.Context) ErrorCounter {
	c, _ := ctx.Value(errorCounterKey{}).(ErrorCounter)
	return c
}

var _ redis.Hook = errorHook{}
