package redisconn

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ReadOnly makes c refuse to change anything in Redis, for a dry run
// (explain): a command that writes, publishes or subscribes is refused
// before it is sent, and scripts run as EVAL_RO / EVALSHA_RO, which Redis
// (7.0 and later) itself stops from writing. Reads (an API key's record, a
// quota's count) go through. Call it before c is used.
func ReadOnly(c redis.UniversalClient) {
	c.AddHook(readOnly{})
}

type readOnly struct{}

func (readOnly) DialHook(next redis.DialHook) redis.DialHook { return next }

func (readOnly) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := readOnlyCmd(cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (readOnly) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if err := readOnlyCmd(cmd); err != nil {
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// readOnlyCmd turns a script call into its read-only form, and refuses a
// command that writes.
func readOnlyCmd(cmd redis.Cmder) error {
	name := strings.ToLower(cmd.Name())
	switch name {
	case "eval", "evalsha", "fcall":
		cmd.Args()[0] = name + "_ro"
		return nil
	}
	if writes(name) {
		return fmt.Errorf("redis %s refused: read-only client (dry run)", name)
	}
	return nil
}

// writes reports whether the command name changes data or listens for
// messages.
func writes(name string) bool {
	switch name {
	case "set", "setex", "psetex", "setnx", "getset", "getdel", "getex", "mset", "msetnx", "append",
		"del", "unlink", "copy", "move", "rename", "renamenx", "restore",
		"expire", "pexpire", "expireat", "pexpireat", "persist",
		"incr", "incrby", "incrbyfloat", "decr", "decrby",
		"hset", "hsetnx", "hmset", "hdel", "hincrby", "hincrbyfloat",
		"zadd", "zincrby", "zrem", "zremrangebyscore", "zremrangebyrank", "zremrangebylex", "zpopmin", "zpopmax",
		"sadd", "srem", "spop", "smove",
		"lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop", "lrem", "lset", "ltrim", "linsert", "lmove",
		"xadd", "xdel", "xtrim", "pfadd",
		"publish", "spublish", "subscribe", "psubscribe", "ssubscribe",
		"multi", "exec", "flushdb", "flushall", "swapdb":
		return true
	}
	return false
}

var _ redis.Hook = readOnly{}
