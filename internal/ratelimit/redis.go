package ratelimit

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// NewRedis returns a limiter whose counters live in Redis, shared by every
// replica that uses the same Options.Name on the same Redis (a single node,
// a Sentinel-managed master, or a Redis Cluster).
//
// It does no I/O (see scriptClient), so the gateway starts while Redis is
// down, whatever OnStoreError says. Every call is a single EVALSHA on the
// node that holds the key, atomic in Redis, so concurrent replicas never
// over-admit; the first call on a node that lacks the script sends it once.
func NewRedis(client redis.UniversalClient, opts Options) (*Limiter, error) {
	if client == nil {
		return nil, fmt.Errorf("rate limiter %q: redis client is nil", opts.Name)
	}
	l, err := newLimiter(opts)
	if err != nil {
		return nil, err
	}
	st, err := ulredis.NewStoreWithOptions(&scriptClient{UniversalClient: client}, limiter.StoreOptions{Prefix: keyPrefix(opts.Name)})
	if err != nil {
		// Unreachable: scriptClient.ScriptLoad does no I/O and never fails.
		return nil, fmt.Errorf("rate limiter %q: %w", opts.Name, err)
	}
	l.redis = &redisStore{Store: st, deadlines: honoursDeadlines(client)}
	return l, nil
}

// redisStore is ulule's Redis store on a scriptClient.
type redisStore struct {
	limiter.Store
	// deadlines: the client bounds every call by its context's deadline.
	deadlines bool
}

// scriptClient is the client ulule's store talks through. ulule loads its
// scripts with SCRIPT LOAD when the store is built and again after a
// NOSCRIPT; on a cluster go-redis sends SCRIPT LOAD to every node and fails
// if one of them is down, which would fail every counter, and it does so
// with context.Background(). Here SCRIPT LOAD only computes the digest
// (no I/O, never fails), and an EVALSHA that meets NOSCRIPT (a node that
// never saw the script, was restarted, or took over a slot) is sent once
// more as EVAL, which loads the script on that node only: what go-redis's
// Script.Run does.
type scriptClient struct {
	redis.UniversalClient
	mu      sync.RWMutex
	scripts map[string]string // SHA-1 hex -> source, of the scripts "loaded"
}

// ScriptLoad records script and answers its digest, as Redis would.
func (c *scriptClient) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	sum := sha1.Sum([]byte(script))
	sha := hex.EncodeToString(sum[:])
	c.mu.Lock()
	if c.scripts == nil {
		c.scripts = map[string]string{}
	}
	c.scripts[sha] = script
	c.mu.Unlock()
	return redis.NewStringResult(sha, nil)
}

// EvalSha runs the script sha, sending its source when the node lacks it.
func (c *scriptClient) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	cmd := c.UniversalClient.EvalSha(ctx, sha, keys, args...)
	if err := cmd.Err(); err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return cmd
	}
	c.mu.RLock()
	src, ok := c.scripts[sha]
	c.mu.RUnlock()
	if !ok {
		return cmd
	}
	return c.UniversalClient.Eval(ctx, src, keys, args...)
}

// honoursDeadlines reports whether client bounds its calls by context
// deadlines: pool waits, dials, reads and writes, and retry back-offs.
// Unknown client types are assumed not to.
func honoursDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}
