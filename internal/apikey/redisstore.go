package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/pubsub"
)

// Redis layout. Every key carries the hash tag {apikey} so that the keys of
// one operation share a cluster slot: creating a key writes the record, the
// hash index and the id set in one atomic script, which Redis Cluster only
// allows within one slot.
const (
	redisKeyPrefix = "authgw:{apikey}:"
	redisIDsKey    = redisKeyPrefix + "ids"       // set of every id
	redisUsedKey   = redisKeyPrefix + "last_used" // hash: id → unix milliseconds
	// EventsChannel carries invalidations: the payload is the hash of the
	// key whose record changed (never the key).
	EventsChannel = "authgw:apikey:events"
)

func redisIDKey(id string) string     { return redisKeyPrefix + "id:" + id }
func redisHashKey(hash string) string { return redisKeyPrefix + "hash:" + hash }

// Timings of the invalidation subscription.
const (
	subscribeTimeout   = 5 * time.Second
	watchPingInterval  = 3 * time.Second
	watchMaxBackoff    = 2 * time.Second
	watchStartBackoff  = 50 * time.Millisecond
	maxTxRetries       = 20
	touchBatchMaxCalls = 500
)

// createScript stores a record, its hash index and its id atomically, or
// nothing if the id or the hash is taken. KEYS: id key, hash key, id set,
// last-used hash. ARGV: id, record JSON, hash, channel, last used (ms or "").
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
end
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1
`)

// touchScript moves last-used times forward only, for ids whose record
// exists. KEYS: last-used hash, then one id key per pair. ARGV: id, ms, ...
var touchScript = redis.NewScript(`
for i = 2, #KEYS do
  local id, ms = ARGV[2*i-3], tonumber(ARGV[2*i-2])
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local cur = tonumber(redis.call('HGET', KEYS[1], id) or '0')
    if ms > cur then
      redis.call('HSET', KEYS[1], id, ARGV[2*i-2])
    end
  end
end
return 0
`)

// RedisStore keeps records in Redis, shared by every replica:
//
//	authgw:{apikey}:id:<id>      record JSON (without last_used_at)
//	authgw:{apikey}:hash:<hash>  → id
//	authgw:{apikey}:ids          set of ids
//	authgw:{apikey}:last_used    hash id → unix ms (kept apart so frequent
//	                             last-used updates never rewrite a record)
//
// Creating, revoking and changing expiry publish the key's hash on
// EventsChannel, which Watch turns into cache evictions on every replica.
type RedisStore struct {
	c   redis.UniversalClient
	log *slog.Logger
	// subscribed counts successful (re)subscriptions; tests use it.
	subscribed atomic.Int64
}

// NewRedisStore returns a store on c. logger (nil: discard) reports lost and
// restored invalidation subscriptions.
func NewRedisStore(c redis.UniversalClient, logger *slog.Logger) *RedisStore {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &RedisStore{c: c, log: logger.With("component", "apikey.redis")}
}

func marshalRecord(r *Record) ([]byte, error) {
	c := *r
	c.LastUsedAt = time.Time{}
	return json.Marshal(&c)
}

func unmarshalRecord(data []byte, lastUsed string) (*Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decoding api key record: %w", err)
	}
	if lastUsed != "" {
		ms, err := strconv.ParseInt(lastUsed, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decoding last used time of %s: %w", r.ID, err)
		}
		r.LastUsedAt = time.UnixMilli(ms).UTC()
	}
	return &r, nil
}

// Create implements Store.
func (s *RedisStore) Create(ctx context.Context, rec *Record) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	data, err := marshalRecord(rec)
	if err != nil {
		return fmt.Errorf("encoding api key record: %w", err)
	}
	used := ""
	if !rec.LastUsedAt.IsZero() {
		used = strconv.FormatInt(rec.LastUsedAt.UnixMilli(), 10)
	}
	ok, err := createScript.Run(ctx, s.c,
		[]string{redisIDKey(rec.ID), redisHashKey(rec.Hash), redisIDsKey, redisUsedKey},
		rec.ID, data, rec.Hash, EventsChannel, used).Int()
	if err != nil {
		return fmt.Errorf("creating api key %s: %w", rec.ID, err)
	}
	if ok == 0 {
		return fmt.Errorf("creating %s: %w", rec.ID, ErrExists)
	}
	return nil
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, id string) (*Record, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	var rec, used *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.Get(ctx, redisIDKey(id))
		used = p.HGet(ctx, redisUsedKey, id)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading api key %s: %w", id, err)
	}
	data, err := rec.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading api key %s: %w", id, err)
	}
	return unmarshalRecord(data, used.Val())
}

// GetByHash implements Store.
func (s *RedisStore) GetByHash(ctx context.Context, hash string) (*Record, error) {
	if !validHash(hash) {
		return nil, ErrNotFound
	}
	id, err := s.c.Get(ctx, redisHashKey(hash)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("looking up api key hash: %w", err)
	}
	rec, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Hash != hash {
		// The index and the record disagree: refuse rather than guess.
		return nil, fmt.Errorf("api key index for %s points at a record with another hash", id)
	}
	return rec, nil
}

// List implements Store.
func (s *RedisStore) List(ctx context.Context) ([]*Record, error) {
	ids, err := s.c.SMembers(ctx, redisIDsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	recs := make([]*redis.StringCmd, len(ids))
	var used *redis.SliceCmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			recs[i] = p.Get(ctx, redisIDKey(id))
		}
		used = p.HMGet(ctx, redisUsedKey, ids...)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	out := make([]*Record, 0, len(ids))
	for i, cmd := range recs {
		data, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // listed but gone: nothing to show
		}
		if err != nil {
			return nil, fmt.Errorf("listing api keys: %w", err)
		}
		u, _ := used.Val()[i].(string)
		r, err := unmarshalRecord(data, u)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sortRecords(out)
	return out, nil
}

// Revoke implements Store. The event is published even when the key was
// already revoked: a replica that missed the first one gets another chance.
func (s *RedisStore) Revoke(ctx context.Context, id string, at time.Time) error {
	return s.modify(ctx, id, func(r *Record) {
		if !r.Revoked() {
			r.RevokedAt = at.UTC()
		}
	})
}

// SetExpiry implements Store.
func (s *RedisStore) SetExpiry(ctx context.Context, id string, at time.Time) error {
	return s.modify(ctx, id, func(r *Record) { r.ExpiresAt = at.UTC() })
}

// modify is an optimistic read-modify-write of one record (WATCH/MULTI):
// two concurrent changes (a revocation and an expiry) never overwrite each
// other; the loser retries on the winner's result. The invalidation is
// published in the same transaction, so a committed change is always
// announced.
func (s *RedisStore) modify(ctx context.Context, id string, fn func(*Record)) error {
	if !validID(id) {
		return ErrNotFound
	}
	key := redisIDKey(id)
	for range maxTxRetries {
		err := s.c.Watch(ctx, func(tx *redis.Tx) error {
			data, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			r, err := unmarshalRecord(data, "")
			if err != nil {
				return err
			}
			fn(r)
			if err := r.Validate(); err != nil {
				return err
			}
			out, err := marshalRecord(r)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, out, 0)
				p.Publish(ctx, EventsChannel, r.Hash)
				return nil
			})
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if errors.Is(err, ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("updating api key %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("updating api key %s: gave up after %d conflicting writes", id, maxTxRetries)
}

// TouchLastUsed implements Store: one script call per 500 ids.
func (s *RedisStore) TouchLastUsed(ctx context.Context, used map[string]time.Time) error {
	keys := []string{redisUsedKey}
	var args []any
	flush := func() error {
		if len(keys) == 1 {
			return nil
		}
		err := touchScript.Run(ctx, s.c, keys, args...).Err()
		keys, args = keys[:1], args[:0]
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("recording api key use: %w", err)
		}
		return nil
	}
	for id, t := range used {
		if !validID(id) {
			continue
		}
		keys = append(keys, redisIDKey(id))
		args = append(args, id, t.UnixMilli())
		if len(keys) > touchBatchMaxCalls {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Watch implements Notifier with a subscription to EventsChannel. go-redis
// re-subscribes silently after a dropped connection, and whatever was
// published meanwhile is lost; so every subscription confirmation — the
// first and any later one — flushes the caches (internal/pubsub).
func (s *RedisStore) Watch(ctx context.Context, evict func(hash string), flushAll func()) error {
	pubsub.Run(ctx, s.c, EventsChannel, pubsub.Handler{
		Subscribed: func(context.Context) error {
			// Anything cached before this moment may predate a revocation
			// published while we were not listening.
			flushAll()
			s.subscribed.Add(1)
			s.log.Info("api key invalidation subscription ready")
			return nil
		},
		Message: func(payload string) {
			if validHash(payload) {
				evict(payload)
			} else {
				flushAll()
			}
		},
	}, pubsub.Options{
		PingInterval: watchPingInterval, SubscribeWait: subscribeTimeout,
		StartBackoff: watchStartBackoff, MaxBackoff: watchMaxBackoff, Logger: s.log,
	})
	return nil
}

var (
	_ Store    = (*RedisStore)(nil)
	_ Notifier = (*RedisStore)(nil)
)
