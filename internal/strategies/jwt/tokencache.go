package jwt

import (
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/authgateway/authgateway/internal/expiry"
	"github.com/authgateway/authgateway/internal/pack"
	"github.com/authgateway/authgateway/internal/strategies"
)

// tokenCache remembers tokens that passed full verification, so a token seen
// again skips the signature check (tens of microseconds for ES256/RS256).
//
// Safety: the key is the whole token string (map equality, so no collision can
// return another token's identity); an entry never outlives the token's exp
// nor maxAge (less a random fifth); revocation (the jti denylist) is checked on every request after
// the cache, so a cached token is never served after logout; the cache belongs
// to one strategy instance, and a config reload (key removed) builds a new one.
type tokenCache struct {
	seed        maphash.Seed
	shards      [16]cacheShard
	maxPerShard int
	maxAge      time.Duration
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*cacheEntry
}

// cacheEntry is one allocation with its claims (an entry is too large for
// the map to hold inline anyway), plus the string and list blocks of
// pack.Into: three heap objects per cached token, whatever it carries.
type cacheEntry struct {
	id     strategies.Identity
	until  time.Time
	claims strategies.DeferredClaims
}

func newTokenCache(maxEntries int, maxAge time.Duration) *tokenCache {
	// Tokens do not spread evenly over the shards: with exactly maxEntries
	// of them, some shards get more than a sixteenth and, without room to
	// spare, would evict live tokens (which then pay a full signature check
	// again) while others sit half empty. A quarter more per shard holds
	// maxEntries tokens without an eviction (more than 6 standard
	// deviations at 10,000); memory stays bounded at 1.25 × maxEntries.
	per := (maxEntries + 15) / 16
	c := &tokenCache{seed: maphash.MakeSeed(), maxPerShard: max(per+per/4, 1), maxAge: maxAge}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(tok string) *cacheShard {
	return &c.shards[maphash.String(c.seed, tok)&15]
}

// get returns a copy of the cached identity if tok is cached and still valid.
func (c *tokenCache) get(tok string, now time.Time) (*strategies.Identity, bool) {
	s := c.shard(tok)
	s.mu.RLock()
	e, ok := s.m[tok]
	s.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	id := e.id
	return &id, true
}

func (c *tokenCache) put(tok string, id *strategies.Identity, exp, now time.Time) {
	// Entries live maxAge less up to a fifth, at random: tokens cached
	// together (a restart, a burst of logins) then fall due for a full
	// signature check spread over a minute rather than all at once, which
	// for 1,000 RS256/ES256 tokens would be ~100 ms of CPU in one go.
	until := now.Add(c.maxAge - rand.N(c.maxAge/5+1))
	if !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	s := c.shard(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Expired entries go a few at a time as new ones come in, so the map
	// holds about what is live. Otherwise short-lived tokens (sessions
	// renewed every few minutes) would fill it to maxPerShard with entries
	// long expired, which every garbage collection marks: at 50 renewals/s
	// that was 12,500 dead entries and a collection mark phase of 20–55 ms.
	expiry.Sweep(s.m, expiry.PerInsert, func(e *cacheEntry) bool { return !now.Before(e.until) })
	if len(s.m) >= c.maxPerShard {
		// Drop expired entries first, then arbitrary ones (map order is
		// random), so a flood of distinct valid tokens cannot grow memory.
		evict := max(c.maxPerShard/8, 1)
		for k, e := range s.m {
			if !now.Before(e.until) || evict > 0 {
				delete(s.m, k)
				evict--
			}
		}
	}
	// The key and the identity's strings copied into one block: tok is
	// often a slice of the whole Cookie header (both session cookies),
	// which the key would otherwise keep alive for as long as the entry
	// lives, and the identity's strings are each their own allocation from
	// the JSON decoder (see package pack).
	key := tok
	e := &cacheEntry{id: *id, until: until}
	pack.Into([]*string{&key, &e.id.Subject, &e.id.Email, &e.id.ClientID, &e.id.TokenID}, &e.id.Roles, &e.id.Scopes)
	// The claims as the payload segment of the key, decoded again only if
	// a route reads them (see strategies.DeferredClaims).
	if _, rest, ok := strings.Cut(key, "."); ok && e.id.Claims != nil {
		if payload, _, ok := strings.Cut(rest, "."); ok {
			e.claims.Defer(payload)
			e.id.Claims, e.id.DeferredClaims = nil, &e.claims
		}
	}
	s.m[key] = e
}
