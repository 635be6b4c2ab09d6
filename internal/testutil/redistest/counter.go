package redistest

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// CommandCounter is a go-redis hook that counts the commands a client
// sends, pipelined ones each, except those named in Skip (lower case, as
// go-redis names them: "publish").
type CommandCounter struct {
	Skip []string
	n    atomic.Int64
}

// Count is how many commands were sent so far.
func (c *CommandCounter) Count() int64 { return c.n.Load() }

func (c *CommandCounter) counted(cmd redis.Cmder) bool { return !slices.Contains(c.Skip, cmd.Name()) }

func (c *CommandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *CommandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.counted(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *CommandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if c.counted(cmd) {
				c.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}
