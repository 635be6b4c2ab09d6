package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout. Every key carries the {session} hash tag, so that the
// scripts below touch one slot in Redis Cluster: all session state lives on
// one master.
const (
	// familyKeyPrefix + id: a hash {cur, rev, id (identity JSON), born (Unix
	// ms), at:<jti> = exp, and after a rotation prev (the rotated jti), rot
	// (its Unix ms) and succ (the sealed successor, see successor.go)}.
	familyKeyPrefix = "authgw:{session}:fam:"
	// denyKey: a sorted set of revoked access-token ids scored by expiry
	// (Unix seconds). Members are pruned by score; the key expires with its
	// last member. One key rather than a key per token, so that a replica
	// resyncs with one range read (SCAN does not span a cluster).
	denyKey = "authgw:{session}:deny"
	// subKeyPrefix + subject and psidKeyPrefix + provider session id: a
	// sorted set of family ids scored by the family's end (Unix ms), for
	// revoking every session of a subject or of a provider session; the key
	// expires with its last member.
	subKeyPrefix  = "authgw:{session}:sub:"
	psidKeyPrefix = "authgw:{session}:psid:"
	// consumedKeyPrefix + key: a single-use marker with a TTL.
	consumedKeyPrefix = "authgw:{session}:used:"
	// DenyChannel carries "<jti> <exp>" for every revoked access token. It
	// has the {session} tag too: on Redis Cluster the revocations are
	// published and heard on the master that holds the sessions (see
	// internal/pubsub), so no other master's outage can make the denylists
	// stale.
	DenyChannel = "authgw:{session}:deny:events"
	// legacyDenyChannel is where versions before the tag listen. The deny
	// script publishes there too, so that replicas of such a version still
	// hear revocations at once during a rolling upgrade (they would
	// otherwise wait for their next resync). Remove in a later release.
	legacyDenyChannel = "authgw:session:deny"
)

// indexLua adds family id to index key k until ms (a score only grows),
// prunes ended members and lets the key expire with its last member.
const indexLua = `
local function index(k, id, untilms, nowms)
  local old = redis.call('ZSCORE', k, id)
  if not old or tonumber(old) < tonumber(untilms) then redis.call('ZADD', k, untilms, id) end
  redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. nowms)
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', k, tonumber(top[2]) + 1000) end
end
`

// createScript: KEYS[1] family, KEYS[2] subject index, KEYS[3] provider
// session index ("" key name: none); ARGV ttl ms, now ms, then the hash's
// field, value pairs.
var createScript = redis.NewScript(indexLua + `
local ttl, nowms = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
redis.call('PEXPIRE', KEYS[1], ttl)
local id = string.sub(KEYS[1], ` + familyIDOffset + `)
index(KEYS[2], id, nowms + ttl, nowms)
if KEYS[3] ~= KEYS[2] then index(KEYS[3], id, nowms + ttl, nowms) end
return 1
`)

// familyIDOffset is where the id starts in a family key (Lua, 1-based).
var familyIDOffset = strconv.Itoa(len(familyKeyPrefix) + 1)

// rotateScript: KEYS[1] family, KEYS[2] and KEYS[3] its indexes (as for
// createScript); ARGV presented, next, access jti, access
// exp, ttl ms, now (s), max live access tokens, now (ms), grace (ms, 0 =
// none), sealed successor, the identity JSON the tokens were minted from
// ("" = unchecked). Answers {"ok"}, {"revoked"}, {"stale"} (the identity
// is no longer that), {"toomany"}, {"grace", successor} or {"reused", jti,
// exp, ...}. One script on the
// family's key, so that parallel refreshes with one token (on any replica)
// see one rotation: the first rotates, the others within the grace get its
// successor.
var rotateScript = redis.NewScript(indexLua + `
local cur = redis.call('HGET', KEYS[1], 'cur')
if not cur or redis.call('HGET', KEYS[1], 'rev') == '1' then return {'revoked'} end
if ARGV[11] ~= '' and redis.call('HGET', KEYS[1], 'id') ~= ARGV[11] then return {'stale'} end
local nowms = tonumber(ARGV[8])
local grace = tonumber(ARGV[9])
if cur ~= ARGV[1] and grace > 0 and redis.call('HGET', KEYS[1], 'prev') == ARGV[1] then
  local rot = tonumber(redis.call('HGET', KEYS[1], 'rot') or '0')
  if nowms <= rot + grace then
    return {'grace', redis.call('HGET', KEYS[1], 'succ') or ''}
  end
end
local now = tonumber(ARGV[6])
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 3) == 'at:' then
    if tonumber(all[i+1]) > now then
      table.insert(out, string.sub(f, 4)); table.insert(out, all[i+1])
    else
      redis.call('HDEL', KEYS[1], f)
    end
  end
end
if cur ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'rev', '1')
  redis.call('HDEL', KEYS[1], 'succ')
  table.insert(out, 1, 'reused')
  return out
end
if #out / 2 >= tonumber(ARGV[7]) then return {'toomany'} end
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1], 'rot', ARGV[8], 'succ', ARGV[10], 'at:' .. ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local id = string.sub(KEYS[1], ` + familyIDOffset + `)
index(KEYS[2], id, nowms + tonumber(ARGV[5]), nowms)
if KEYS[3] ~= KEYS[2] then index(KEYS[3], id, nowms + tonumber(ARGV[5]), nowms) end
return {'ok'}
`)

// revokeScript: KEYS[1] family; ARGV now. Marks it revoked (keeping it until
// its TTL, so later refreshes are refused) and answers its live access
// tokens {jti, exp, ...}.
var revokeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('HSET', KEYS[1], 'rev', '1')
redis.call('HDEL', KEYS[1], 'succ')
local now = tonumber(ARGV[1])
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 3) == 'at:' and tonumber(all[i+1]) > now then
    table.insert(out, string.sub(f, 4)); table.insert(out, all[i+1])
  end
end
return out
`)

// setIdentityScript: KEYS[1] family; ARGV identity JSON. Only a live family
// is changed (a revoked one stays as it ended).
var setIdentityScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'rev') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1])
return 1
`)

// denyScript: KEYS[1] the deny set; ARGV now, channel, legacy channel,
// then jti, exp pairs. Adding and publishing in one script: a replica that
// resyncs after missing the message finds the entry, one that is subscribed
// gets the message.
var denyScript = redis.NewScript(`
for i = 4, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i+1], ARGV[i])
  redis.call('PUBLISH', ARGV[2], ARGV[i] .. ' ' .. ARGV[i+1])
  redis.call('PUBLISH', ARGV[3], ARGV[i] .. ' ' .. ARGV[i+1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then redis.call('EXPIREAT', KEYS[1], tonumber(top[2]) + 1) end
return 1
`)

type redisBackend struct {
	c    redis.UniversalClient
	now  func() time.Time
	fams *familyCache
}

func newRedisBackend(c redis.UniversalClient, now func() time.Time) *redisBackend {
	return &redisBackend{c: c, now: now, fams: newFamilyCache(now)}
}

func (b *redisBackend) createFamily(ctx context.Context, f *family, ttl time.Duration) error {
	ident, err := json.Marshal(f.Identity)
	if err != nil {
		return fmt.Errorf("encoding identity: %w", err)
	}
	args := []any{ttl.Milliseconds(), b.now().UnixMilli(),
		"cur", f.Current, "rev", "0", "id", string(ident), "born", strconv.FormatInt(f.Born.UnixMilli(), 10)}
	for _, a := range f.Access {
		args = append(args, "at:"+a.ID, strconv.FormatInt(a.Expiry.Unix(), 10))
	}
	if err := createScript.Run(ctx, b.c, indexKeys(f), args...).Err(); err != nil {
		return fmt.Errorf("redis: creating family: %w", err)
	}
	return nil
}

// indexKeys are the keys of f and its indexes, as the scripts take them.
func indexKeys(f *family) []string {
	sub := subKeyPrefix + f.Identity.Subject
	psid := sub // no provider session: the subject's index stands in
	if f.Identity.ProviderSession != "" {
		psid = psidKeyPrefix + f.Identity.ProviderSession
	}
	return []string{familyKeyPrefix + f.ID, sub, psid}
}

func (b *redisBackend) getFamily(ctx context.Context, id string, current bool) (*family, error) {
	if !current {
		if f := b.fams.get(id); f != nil {
			return f, nil
		}
	}
	vals, err := b.c.HMGet(ctx, familyKeyPrefix+id, "cur", "rev", "id", "born").Result()
	if err != nil {
		return nil, fmt.Errorf("redis: reading family: %w", err)
	}
	cur, _ := vals[0].(string)
	rev, _ := vals[1].(string)
	ident, _ := vals[2].(string)
	if cur == "" || rev == "1" {
		return nil, ErrRevoked
	}
	f := &family{ID: id, Current: cur}
	if born, _ := vals[3].(string); born != "" {
		ms, err := strconv.ParseInt(born, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: stored login time unreadable", ErrRevoked)
		}
		f.Born = time.UnixMilli(ms)
	}
	if err := json.Unmarshal([]byte(ident), &f.Identity); err != nil || f.Identity.Subject == "" {
		return nil, fmt.Errorf("%w: stored identity unreadable", ErrRevoked)
	}
	f.storedIdentity = ident
	if !current {
		// Only for readers that may use the cache: a re-reading
		// (update_on_refresh) never does, and its identity holds the
		// provider's refresh token, which is not kept longer than needed.
		b.fams.put(f)
	}
	return f, nil
}

func (b *redisBackend) rotate(ctx context.Context, f *family, rot rotation) (rotated, error) {
	now := b.now()
	res, err := rotateScript.Run(ctx, b.c, indexKeys(f),
		rot.presented, rot.next, rot.at.ID, rot.at.Expiry.Unix(), rot.ttl.Milliseconds(), now.Unix(), MaxLiveAccess,
		now.UnixMilli(), rot.grace.Milliseconds(), rot.successor, f.storedIdentity).StringSlice()
	if err != nil {
		return rotated{}, fmt.Errorf("redis: rotating family: %w", err)
	}
	if len(res) == 0 {
		return rotated{}, errors.New("rotate: empty answer")
	}
	if res[0] != "ok" && res[0] != "grace" {
		b.fams.drop(f.ID)
	}
	switch res[0] {
	case "ok":
		return rotated{}, nil
	case "stale":
		return rotated{}, errStaleFamily
	case "grace":
		if len(res) != 2 {
			return rotated{}, errors.New("rotate: grace without successor")
		}
		return rotated{successor: []byte(res[1]), grace: true}, nil
	case "revoked":
		return rotated{}, ErrRevoked
	case "toomany":
		return rotated{}, ErrTooFrequent
	case "reused":
		return rotated{live: parseRefs(res[1:])}, ErrReused
	}
	return rotated{}, fmt.Errorf("rotate: unexpected answer %q", res[0])
}

func (b *redisBackend) setIdentity(ctx context.Context, id string, ident Identity) error {
	b.fams.drop(id)
	raw, err := json.Marshal(ident)
	if err != nil {
		return fmt.Errorf("encoding identity: %w", err)
	}
	if err := setIdentityScript.Run(ctx, b.c, []string{familyKeyPrefix + id}, string(raw)).Err(); err != nil {
		return fmt.Errorf("redis: storing identity: %w", err)
	}
	return nil
}

func (b *redisBackend) revoke(ctx context.Context, id string) ([]AccessRef, error) {
	b.fams.drop(id)
	res, err := revokeScript.Run(ctx, b.c, []string{familyKeyPrefix + id}, b.now().Unix()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: marking family revoked: %w", err)
	}
	return parseRefs(res), nil
}

func (b *redisBackend) deny(ctx context.Context, refs []AccessRef) error {
	args := make([]any, 0, 3+2*len(refs))
	args = append(args, b.now().Unix(), DenyChannel, legacyDenyChannel)
	for _, r := range refs {
		args = append(args, r.ID, r.Expiry.Unix())
	}
	if err := denyScript.Run(ctx, b.c, []string{denyKey}, args...).Err(); err != nil {
		return fmt.Errorf("redis: adding to the denylist: %w", err)
	}
	return nil
}

func (b *redisBackend) consumeOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	first, err := b.c.SetNX(ctx, consumedKeyPrefix+key, "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis: marking a single-use value: %w", err)
	}
	return first, nil
}

func (b *redisBackend) families(ctx context.Context, ix index) ([]Info, error) {
	key := subKeyPrefix + ix.value
	if ix.provider {
		key = psidKeyPrefix + ix.value
	}
	zs, err := b.scoredFrom(ctx, key, b.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("redis: listing an index: %w", err)
	}
	out := make([]Info, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		if !validID(id) {
			continue
		}
		vals, err := b.c.HMGet(ctx, familyKeyPrefix+id, "rev", "born", "rot", "id").Result()
		if err != nil {
			return nil, fmt.Errorf("redis: reading a listed family: %w", err)
		}
		ident, _ := vals[3].(string)
		if ident == "" {
			continue // ended
		}
		info := Info{Family: id, Ends: time.UnixMilli(int64(z.Score))}
		info.Revoked = vals[0] == "1"
		info.Born = unixMilli(vals[1])
		info.Refreshed = unixMilli(vals[2])
		var idn Identity
		if json.Unmarshal([]byte(ident), &idn) == nil {
			info.Subject = idn.Subject
		}
		out = append(out, info)
	}
	return out, nil
}

// unixMilli reads a stored Unix ms time; zero when absent or unreadable.
func unixMilli(v any) time.Time {
	s, _ := v.(string)
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// load reads every live entry of the deny set.
func (b *redisBackend) load(ctx context.Context) ([]AccessRef, error) {
	zs, err := b.scoredFrom(ctx, denyKey, b.now().Unix())
	if err != nil {
		return nil, fmt.Errorf("redis: reading the denylist: %w", err)
	}
	out := make([]AccessRef, 0, len(zs))
	for _, z := range zs {
		id, ok := z.Member.(string)
		if ok && validID(id) {
			out = append(out, AccessRef{ID: id, Expiry: time.Unix(int64(z.Score), 0)})
		}
	}
	return out, nil
}

// scoredFrom reads the members of the sorted set key whose score is at
// least min: the live ones, for sets scored by when they end.
func (b *redisBackend) scoredFrom(ctx context.Context, key string, min int64) ([]redis.Z, error) {
	return b.c.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: strconv.FormatInt(min, 10), Max: "+inf"}).Result()
}

// parseRefs reads {jti, exp, ...} pairs from a script's answer.
func parseRefs(kv []string) []AccessRef {
	out := make([]AccessRef, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		exp, err := strconv.ParseInt(kv[i+1], 10, 64)
		if err == nil && validID(kv[i]) {
			out = append(out, AccessRef{ID: kv[i], Expiry: time.Unix(exp, 0)})
		}
	}
	return out
}

// parseDenyMessage reads "<jti> <exp>".
func parseDenyMessage(s string) (AccessRef, bool) {
	id, expS, ok := strings.Cut(s, " ")
	if !ok || !validID(id) {
		return AccessRef{}, false
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil {
		return AccessRef{}, false
	}
	return AccessRef{ID: id, Expiry: time.Unix(exp, 0)}, true
}
