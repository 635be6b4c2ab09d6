package apikey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// LegacyStore reads the Redis layout that every api_key strategy shared
// before namespaces (authgw:{apikey}:…), and moves its keys into one
// strategy's namespace. No strategy accepts a key while it is there: with
// two strategies on one prefix, nothing in a record tells which strategy it
// was made for, so only an operator can say (`authgateway keys migrate`).
type LegacyStore struct {
	s *RedisStore // on legacyLayout
}

// NewLegacyStore returns the shared layout of earlier versions on c.
func NewLegacyStore(c redis.UniversalClient) *LegacyStore {
	return &LegacyStore{s: &RedisStore{c: c, l: legacyLayout()}}
}

// Count returns how many keys are still in the shared layout.
func (l *LegacyStore) Count(ctx context.Context) (int64, error) {
	n, err := l.s.c.SCard(ctx, l.s.l.ids).Result()
	if err != nil {
		return 0, fmt.Errorf("counting api keys in the shared layout: %w", err)
	}
	return n, nil
}

// List returns the records still in the shared layout, oldest first.
func (l *LegacyStore) List(ctx context.Context) ([]*Record, error) {
	return l.s.List(ctx)
}

// errChanged: the shared-layout record changed while it was being moved.
var errChanged = errors.New("api key record changed while moving it")

// MoveTo moves the key id from the shared layout into dst's namespace and
// reports whether it moved it; false with a nil error means an earlier run
// already did (the call is idempotent).
//
// Each step is atomic on its own and keeps to one Redis Cluster slot: the
// record is first written into dst (merged with what an interrupted earlier
// run put there), then removed from the shared layout only if it has not
// changed since it was read. A key is therefore never lost, and once the
// call returns it is in exactly one place. A revocation or a sooner expiry,
// on either side, survives the move (see mergeRecords); so does a
// revocation that an older gateway or CLI, still on the shared layout,
// makes meanwhile: the move then starts over with the changed record.
func (l *LegacyStore) MoveTo(ctx context.Context, dst *RedisStore, id string) (bool, error) {
	if !validID(id) {
		return false, ErrNotFound
	}
	src := l.s
	for range maxTxRetries {
		data, used, err := src.readRaw(ctx, id)
		if errors.Is(err, ErrNotFound) {
			// Not in the shared layout: moved by an earlier run, or never
			// there. A stale id without a record is dropped from the set.
			if err := src.c.SRem(ctx, src.l.ids, id).Err(); err != nil {
				return false, fmt.Errorf("moving api key %s: %w", id, err)
			}
			if _, err := dst.Get(ctx, id); err != nil {
				return false, err
			}
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("moving api key %s: %w", id, err)
		}
		rec, err := unmarshalRecord(data, used)
		if err != nil {
			return false, fmt.Errorf("moving api key %s: %w", id, err)
		}
		if err := rec.Validate(); err != nil {
			return false, fmt.Errorf("moving api key %s: %w", id, err)
		}
		if err := dst.adopt(ctx, rec); err != nil {
			return false, fmt.Errorf("moving api key %s: %w", id, err)
		}
		if !rec.LastUsedAt.IsZero() {
			if err := dst.TouchLastUsed(ctx, map[string]time.Time{id: rec.LastUsedAt}); err != nil {
				return false, fmt.Errorf("moving api key %s: %w", id, err)
			}
		}
		err = src.removeIfUnchanged(ctx, rec, data, used)
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("moving api key %s: %w", id, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("moving api key %s: gave up after %d conflicting writes", id, maxTxRetries)
}

// adopt writes rec into s, merged with a record of the same id and hash
// already there, and announces it: a replica that remembered the key as
// unknown forgets that at once.
func (s *RedisStore) adopt(ctx context.Context, rec *Record) error {
	idKey, hashKey := s.l.idKey(rec.ID), s.l.hashKey(rec.Hash)
	for range maxTxRetries {
		err := s.c.Watch(ctx, func(tx *redis.Tx) error {
			merged := rec
			cur, err := tx.Get(ctx, idKey).Bytes()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				have, err := unmarshalRecord(cur, "")
				if err != nil {
					return err
				}
				if have.Hash != rec.Hash {
					return fmt.Errorf("id %s is taken by another key in %s", rec.ID, s.l.prefix)
				}
				merged = mergeRecords(have, rec)
			}
			owner, err := tx.Get(ctx, hashKey).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			if owner != "" && owner != rec.ID {
				return fmt.Errorf("its hash already belongs to key %s in %s", owner, s.l.prefix)
			}
			out, err := marshalRecord(merged)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, idKey, out, 0)
				p.Set(ctx, hashKey, rec.ID, 0)
				p.SAdd(ctx, s.l.ids, rec.ID)
				p.Publish(ctx, s.l.channel, rec.Hash)
				return nil
			})
			return err
		}, idKey, hashKey)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return err
	}
	return fmt.Errorf("gave up after %d conflicting writes", maxTxRetries)
}

// mergeRecords is have (already moved by an interrupted run) with whatever
// ends the key sooner in src: the earlier revocation and the earlier expiry.
// A move never brings a key back or lengthens its life.
func mergeRecords(have, src *Record) *Record {
	m := have.Clone()
	if src.Revoked() && (!m.Revoked() || src.RevokedAt.Before(m.RevokedAt)) {
		m.RevokedAt = src.RevokedAt
	}
	if !src.ExpiresAt.IsZero() && (m.ExpiresAt.IsZero() || src.ExpiresAt.Before(m.ExpiresAt)) {
		m.ExpiresAt = src.ExpiresAt
	}
	return m
}

// removeIfUnchanged deletes rec from s if its stored bytes and last-used
// time are still data and used (errChanged otherwise), and announces it to
// whatever still watches s's channel.
func (s *RedisStore) removeIfUnchanged(ctx context.Context, rec *Record, data []byte, used string) error {
	idKey, hashKey := s.l.idKey(rec.ID), s.l.hashKey(rec.Hash)
	err := s.c.Watch(ctx, func(tx *redis.Tx) error {
		var cur, curUsed, owner *redis.StringCmd
		_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			cur = p.Get(ctx, idKey)
			curUsed = p.HGet(ctx, s.l.used, rec.ID)
			owner = p.Get(ctx, hashKey)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if b, _ := cur.Bytes(); !bytes.Equal(b, data) || curUsed.Val() != used {
			return errChanged
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, idKey)
			if owner.Val() == rec.ID {
				p.Del(ctx, hashKey)
			}
			p.SRem(ctx, s.l.ids, rec.ID)
			p.HDel(ctx, s.l.used, rec.ID)
			p.Publish(ctx, s.l.channel, rec.Hash)
			return nil
		})
		return err
	}, idKey, hashKey, s.l.used)
	if errors.Is(err, redis.TxFailedErr) {
		return errChanged
	}
	return err
}
