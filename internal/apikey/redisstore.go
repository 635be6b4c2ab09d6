package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/pubsub"
)

// Redis layout. Each api_key strategy has a namespace of its own, named
// after the strategy: a key made for one strategy is in no other strategy's
// hash index, so no other strategy can accept it, list it or revoke it.
//
//	authgw:{apikey:<strategy>}:id:<id>      record JSON (without last_used_at)
//	authgw:{apikey:<strategy>}:hash:<hash>  → id
//	authgw:{apikey:<strategy>}:ids          set of ids
//	authgw:{apikey:<strategy>}:last_used    hash id → unix ms (kept apart so
//	                                        frequent last-used updates never
//	                                        rewrite a record)
//	authgw:{apikey:<strategy>}:events       pub/sub channel: the hash of each
//	                                        key whose record changed
//
// The hash tag {apikey:<strategy>} puts all of a strategy's keys in one
// Redis Cluster slot: creating a key writes the record, the hash index and
// the id set in one atomic script, which a cluster allows only within one
// slot. Versions before namespaces kept every strategy's keys in one shared
// layout (see legacyLayout and LegacyStore).
type redisLayout struct {
	prefix  string // every key name starts with it
	ids     string // set of every id
	used    string // hash: id → unix milliseconds
	channel string // invalidations: the payload is a key's hash, never a key
}

func (l *redisLayout) idKey(id string) string     { return l.prefix + "id:" + id }
func (l *redisLayout) hashKey(hash string) string { return l.prefix + "hash:" + hash }

func layoutAt(prefix, channel string) redisLayout {
	return redisLayout{prefix: prefix, ids: prefix + "ids", used: prefix + "last_used", channel: channel}
}

// strategyLayout is the namespace of the api_key strategy named strategy.
func strategyLayout(strategy string) redisLayout {
	prefix := "authgw:{apikey:" + escapeName(strategy) + "}:"
	return layoutAt(prefix, prefix+"events")
}

// RedisNamespace is the prefix of every Redis key of the api_key strategy
// named strategy; it carries the namespace's hash tag, so it names the
// Redis Cluster slot (and master) that holds the strategy's keys.
func RedisNamespace(strategy string) string { return strategyLayout(strategy).prefix }

// legacyLayout is the layout every strategy shared before namespaces. No
// strategy reads it: only LegacyStore, to move its keys out.
func legacyLayout() redisLayout {
	return layoutAt("authgw:{apikey}:", "authgw:apikey:events")
}

// escapeName spells a strategy name for a Redis key: letters, digits, '_',
// '-' and '.' as they are, every other byte as %XX. The escape is
// one-to-one, so two strategies never share a namespace, and a name cannot
// close the hash tag early ('}') or pose as another namespace (':').
func escapeName(name string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

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

// RedisStore keeps one api_key strategy's records in Redis, shared by every
// replica, in the strategy's namespace (see redisLayout).
//
// Creating, revoking and changing expiry publish the key's hash on the
// namespace's channel, which Watch turns into cache evictions on every
// replica.
type RedisStore struct {
	c   redis.UniversalClient
	l   redisLayout
	log *slog.Logger
}

// NewRedisStore returns the store of the api_key strategy named strategy on
// c. logger (nil: discard) reports lost and restored invalidation
// subscriptions.
func NewRedisStore(c redis.UniversalClient, strategy string, logger *slog.Logger) *RedisStore {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &RedisStore{c: c, l: strategyLayout(strategy), log: logger.With("component", "apikey.redis")}
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
		[]string{s.l.idKey(rec.ID), s.l.hashKey(rec.Hash), s.l.ids, s.l.used},
		rec.ID, data, rec.Hash, s.l.channel, used).Int()
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
	data, used, err := s.readRaw(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading api key %s: %w", id, err)
	}
	return unmarshalRecord(data, used)
}

// readRaw returns a record's stored bytes and last-used time ("" if none),
// or ErrNotFound.
func (s *RedisStore) readRaw(ctx context.Context, id string) ([]byte, string, error) {
	var rec, used *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.Get(ctx, s.l.idKey(id))
		used = p.HGet(ctx, s.l.used, id)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", err
	}
	data, err := rec.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", err
	}
	return data, used.Val(), nil
}

// GetByHash implements Store.
func (s *RedisStore) GetByHash(ctx context.Context, hash string) (*Record, error) {
	if !validHash(hash) {
		return nil, ErrNotFound
	}
	id, err := s.c.Get(ctx, s.l.hashKey(hash)).Result()
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

// GetManyByHash implements batchStore: what GetByHash answers for each hash,
// in two round trips however many there are (the index, then the records;
// a strategy's keys share its hash tag, so each MGET is one slot's on a
// cluster too). Records come without their last-used time, which a
// Verifier does not read.
func (s *RedisStore) GetManyByHash(ctx context.Context, hashes []string) ([]Lookup, error) {
	out := make([]Lookup, len(hashes))
	names := make([]string, 0, len(hashes))
	at := make([]int, 0, len(hashes)) // names[j] answers hashes[at[j]]
	for i, h := range hashes {
		if !validHash(h) {
			out[i].Err = ErrNotFound
			continue
		}
		names = append(names, s.l.hashKey(h))
		at = append(at, i)
	}
	if len(names) == 0 {
		return out, nil
	}
	ids, err := s.c.MGet(ctx, names...).Result()
	if err != nil {
		return nil, fmt.Errorf("looking up api key hashes: %w", err)
	}
	names = names[:0]                // MGet is done with them
	next := make([]int, 0, len(ids)) // names[j] now answers hashes[next[j]]
	for j, v := range ids {
		id, ok := v.(string)
		if !ok || !validID(id) {
			// Absent, or not an id GetByHash would find a record for.
			out[at[j]].Err = ErrNotFound
			continue
		}
		names = append(names, s.l.idKey(id))
		next = append(next, at[j])
	}
	if len(names) == 0 {
		return out, nil
	}
	recs, err := s.c.MGet(ctx, names...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading api key records: %w", err)
	}
	for j, v := range recs {
		i := next[j]
		data, ok := v.(string)
		if !ok {
			out[i].Err = ErrNotFound
			continue
		}
		rec, err := unmarshalRecord([]byte(data), "")
		switch {
		case err != nil:
			out[i].Err = err
		case rec.Hash != hashes[i]:
			out[i].Err = fmt.Errorf("api key index for %s points at a record with another hash", rec.ID)
		default:
			out[i].Record = rec
		}
	}
	return out, nil
}

// listBatch is how many keys List reads per round trip.
const listBatch = 1000

// List implements Store.
func (s *RedisStore) List(ctx context.Context) ([]*Record, error) {
	ids, err := s.c.SMembers(ctx, s.l.ids).Result()
	if err != nil {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]*Record, 0, len(ids))
	// In pipelines of listBatch ids: one pipeline of 100,000 commands
	// outgrows the connection's write and read timeouts on a busy host.
	for start := 0; start < len(ids); start += listBatch {
		batch := ids[start:min(start+listBatch, len(ids))]
		recs := make([]*redis.StringCmd, len(batch))
		var used *redis.SliceCmd
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				recs[i] = p.Get(ctx, s.l.idKey(id))
			}
			used = p.HMGet(ctx, s.l.used, batch...)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("listing api keys: %w", err)
		}
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
	key := s.l.idKey(id)
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
				p.Publish(ctx, s.l.channel, r.Hash)
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
	keys := []string{s.l.used}
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
		keys = append(keys, s.l.idKey(id))
		args = append(args, id, t.UnixMilli())
		if len(keys) > touchBatchMaxCalls {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Watch implements Notifier with a subscription to the namespace's channel. go-redis
// re-subscribes silently after a dropped connection, and whatever was
// published meanwhile is lost; so every subscription confirmation — the
// first and any later one — flushes the caches (internal/pubsub).
func (s *RedisStore) Watch(ctx context.Context, evict func(hash string), flushAll func()) error {
	pubsub.Run(ctx, s.c, s.l.channel, pubsub.Handler{
		Subscribed: func(context.Context) error {
			// Anything cached before this moment may predate a revocation
			// published while we were not listening.
			flushAll()
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
