package apikey

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Verifier defaults.
const (
	DefaultCacheTTL         = 30 * time.Second
	DefaultCacheSize        = 10_000
	DefaultNegativeTTL      = 5 * time.Second
	DefaultNegativeSize     = 10_000
	DefaultLastUsedInterval = time.Minute
	DefaultRereadInterval   = 100 * time.Millisecond
)

// rereadBatch bounds the keys one batch re-read asks the store for.
const rereadBatch = 500

// Lookup is one key's answer in a batch: its record, or what GetByHash
// would have returned instead (ErrNotFound, or a technical error).
type Lookup struct {
	Record *Record
	Err    error
}

// batchStore is implemented by stores that answer many lookups in one round
// trip (the Redis store). A Verifier on one re-reads its due keys together,
// every RereadInterval, rather than one store call each.
type batchStore interface {
	// GetManyByHash answers for each hash what GetByHash would; the
	// records' LastUsedAt may be left out. The error is the batch's (store
	// unreachable): then there are no answers.
	GetManyByHash(ctx context.Context, hashes []string) ([]Lookup, error)
}

// VerifierOptions configure a Verifier. Zero values take the defaults.
type VerifierOptions struct {
	// OnCache, when set, is told whether a well-formed key was answered
	// from the local caches (hit) or needed a store lookup (miss).
	OnCache func(hit bool)
	// Prefixes are the configured key prefixes; a key with any other prefix
	// is malformed and never looked up. Required.
	Prefixes []string
	// CacheTTL bounds how long a looked-up record is served from memory
	// without asking the store again: the worst-case staleness if an
	// invalidation is missed. Default 30s; negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the positive cache (entries). Default 10000.
	CacheSize int
	// NegativeTTL is how long an unknown key is remembered as unknown, so
	// that repeating it does not reach the store. Default 5s; negative
	// disables the negative cache.
	NegativeTTL time.Duration
	// NegativeSize bounds the negative cache (entries, least recently used
	// evicted first). Default 10000.
	NegativeSize int
	// LastUsedInterval is how often recorded uses are written to the store
	// by Run: each key's last_used_at is written at most once per interval.
	// Default 1m; negative disables last-used tracking.
	LastUsedInterval time.Duration
	// RereadInterval is how often Run re-reads, in one batch, the cached
	// keys that fell due meanwhile, when the store can answer a batch (the
	// Redis store): at 10,000 keys in use that is 10 batches a second
	// instead of about 530 lookups. Default 100ms. Other stores, and a Verifier whose Run
	// is not running, re-read each key as it falls due.
	RereadInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger reports failed last-used flushes. Default: discard.
	Logger *slog.Logger
}

// Verifier checks presented keys against a Store, with a local cache in
// front so that a hot key costs no store round trip.
//
// Freshness: revocations and expiry changes reach the caches through Run
// (see Notifier) at once; if that channel is interrupted, the caches are
// flushed when it comes back, and an entry is never served for longer than
// CacheTTL anyway. Expiry is checked against the clock on every call, cached
// or not.
type Verifier struct {
	store    Store
	prefixes []string
	opts     VerifierOptions
	log      *slog.Logger

	group singleflight.Group

	mu  sync.Mutex
	pos *lru[*Record]
	neg *lru[struct{}]
	// gen counts invalidations. A lookup caches its result only if no
	// invalidation happened while it ran: a record read just before a
	// revocation must not enter the cache after the revocation's eviction.
	gen     uint64
	pending map[string]time.Time // id → latest use not yet written

	batch batchStore // nil: the store re-reads one key per call
	// rereads are the cached keys found due since the last batch, while
	// Run's batch loop runs (batching).
	rereads  [][32]byte
	batching bool
}

// NewVerifier returns a Verifier on store. Call Run to receive
// invalidations and write last-used times, and Close when done.
func NewVerifier(store Store, opts VerifierOptions) (*Verifier, error) {
	if store == nil {
		return nil, errors.New("api key verifier: nil store")
	}
	if len(opts.Prefixes) == 0 {
		return nil, errors.New("api key verifier: no prefixes configured")
	}
	for _, p := range opts.Prefixes {
		if err := ValidatePrefix(p); err != nil {
			return nil, fmt.Errorf("api key verifier: %w", err)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.CacheTTL, DefaultCacheTTL)
	def(&opts.NegativeTTL, DefaultNegativeTTL)
	def(&opts.LastUsedInterval, DefaultLastUsedInterval)
	def(&opts.RereadInterval, DefaultRereadInterval)
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.NegativeSize <= 0 {
		opts.NegativeSize = DefaultNegativeSize
	}
	if opts.CacheTTL < 0 {
		opts.CacheSize = 0
	}
	if opts.NegativeTTL < 0 {
		opts.NegativeSize = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	batch, _ := store.(batchStore)
	return &Verifier{
		batch:    batch,
		store:    store,
		prefixes: append([]string(nil), opts.Prefixes...),
		opts:     opts,
		log:      opts.Logger.With("component", "apikey.verifier"),
		pos:      newLRU[*Record](opts.CacheSize),
		neg:      newLRU[struct{}](opts.NegativeSize),
		pending:  make(map[string]time.Time),
	}, nil
}

// observe tells OnCache whether a well-formed key was answered from memory.
func (v *Verifier) observe(hit bool) {
	if v.opts.OnCache != nil {
		v.opts.OnCache(hit)
	}
}

// Verify returns the record of a valid presented key (a copy the caller may
// keep). A bad key gives ErrMalformed (no lookup at all), ErrUnknown,
// ErrExpired or ErrRevoked; any other error is technical (store unreachable)
// and the caller must fail closed. The returned errors never contain the key.
func (v *Verifier) Verify(ctx context.Context, presented string) (*Record, error) {
	if _, err := Parse(presented, v.prefixes); err != nil {
		return nil, ErrMalformed
	}
	// Records are found by the hash of the presented key, never by comparing
	// a stored secret with it: the time a lookup takes depends on the hash,
	// which an attacker cannot steer towards a real key's hash, so there is
	// no timing oracle on the key and no constant-time comparison to get
	// wrong.
	sum := sha256.Sum256([]byte(presented))
	now := v.opts.Now()

	v.mu.Lock()
	if rec, due, ok := v.pos.get(sum, now); ok {
		v.observe(true)
		err := v.checkLocked(rec, now)
		// Re-read a used entry before it expires, in the background: a
		// key in use never makes a request wait for the store, and keys
		// cached together (after a start, or a flush) are re-read spread
		// over a quarter of CacheTTL instead of all expiring in the same
		// second.
		queued := due && v.queueRereadLocked(sum)
		v.mu.Unlock()
		if due && !queued {
			v.startLookup(ctx, sum)
		}
		if err != nil {
			return nil, err
		}
		return rec.Clone(), nil
	}
	if _, _, ok := v.neg.get(sum, now); ok {
		v.mu.Unlock()
		v.observe(true)
		return nil, ErrUnknown
	}
	v.mu.Unlock()
	v.observe(false)

	rec, err := v.lookup(ctx, sum)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	err = v.checkLocked(rec, now)
	v.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return rec.Clone(), nil
}

// checkLocked decides on a record and, if it is valid, notes its use.
func (v *Verifier) checkLocked(rec *Record, now time.Time) error {
	switch {
	case rec.Revoked():
		return ErrRevoked
	case rec.Expired(now):
		return ErrExpired
	}
	if v.opts.LastUsedInterval > 0 {
		v.pending[rec.ID] = now
	}
	return nil
}

// lookup asks the store once for all concurrent callers presenting the same
// key, and caches the answer.
func (v *Verifier) lookup(ctx context.Context, sum [32]byte) (*Record, error) {
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("looking up api key: %w", ctx.Err())
	case res := <-v.startLookup(ctx, sum):
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Record), nil
	}
}

// startLookup starts the store lookup of a key, or joins the one in flight,
// and caches its answer. The channel (buffered) gets the result.
func (v *Verifier) startLookup(ctx context.Context, sum [32]byte) <-chan singleflight.Result {
	hash := hex.EncodeToString(sum[:])
	return v.group.DoChan(hash, func() (any, error) {
		v.mu.Lock()
		gen := v.gen
		v.mu.Unlock()
		// Shared by every waiter, so not bound to the first caller leaving.
		rec, err := v.store.GetByHash(context.WithoutCancel(ctx), hash)
		switch {
		case errors.Is(err, ErrNotFound):
			v.mu.Lock()
			v.cacheLocked(gen, sum, nil, v.opts.Now())
			v.mu.Unlock()
			return nil, ErrUnknown
		case err != nil:
			return nil, fmt.Errorf("looking up api key: %w", err)
		case rec.Hash != hash:
			return nil, errors.New("looking up api key: store returned another key's record")
		}
		rec = rec.cacheable()
		v.mu.Lock()
		v.cacheLocked(gen, sum, rec, v.opts.Now())
		v.mu.Unlock()
		return rec, nil
	})
}

// cacheLocked caches what the store answered for sum, unless an
// invalidation happened since gen was read (a record read just before a
// revocation must not enter the cache after the revocation's eviction):
// rec (from cacheable: a packed copy, whose claims are built once, if
// ever, for every request it serves), or nil for a key the store does not
// know, which also drops a cached record (a re-read finding the key gone).
func (v *Verifier) cacheLocked(gen uint64, sum [32]byte, rec *Record, now time.Time) {
	switch {
	case v.gen != gen:
	case rec == nil:
		v.pos.remove(sum)
		exp := now.Add(v.opts.NegativeTTL)
		v.neg.add(sum, struct{}{}, exp, exp)
	default:
		v.pos.add(sum, rec, now.Add(v.refreshAfter()), now.Add(v.opts.CacheTTL))
	}
}

// queueRereadLocked leaves a due key to Run's next batch, if Run is
// batching and the queue has room (it holds at most the cache's size).
func (v *Verifier) queueRereadLocked(sum [32]byte) bool {
	if !v.batching || len(v.rereads) >= v.opts.CacheSize {
		return false
	}
	v.rereads = append(v.rereads, sum)
	return true
}

// rereadLoop re-reads the queued keys every RereadInterval until ctx is
// done.
func (v *Verifier) rereadLoop(ctx context.Context) {
	v.mu.Lock()
	v.batching = true
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.batching = false
		v.rereads = nil // left to expire: nothing re-reads them now
		v.mu.Unlock()
	}()
	t := time.NewTicker(v.opts.RereadInterval)
	defer t.Stop()
	failing := false // log the first failure and the recovery, not every tick
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := v.rereadQueued(ctx)
			switch {
			case ctx.Err() != nil:
			case err != nil && !failing:
				// The entries stay cached until CacheTTL; a key still in
				// use then is looked up in the foreground (and fails
				// closed if the store is still down).
				v.log.Warn("re-reading cached api keys failed; they expire after cache_ttl unless a re-read succeeds", "error", err)
				failing = true
			case err == nil && n > 0 && failing:
				v.log.Info("re-reading cached api keys works again")
				failing = false
			}
		}
	}
}

// rereadQueued re-reads the keys queued since the last call, in batches of
// rereadBatch, and caches what it finds as a lookup would. It returns how
// many keys it read.
func (v *Verifier) rereadQueued(ctx context.Context) (int, error) {
	v.mu.Lock()
	due := v.rereads
	v.rereads = nil
	v.mu.Unlock()

	read := 0
	hashes := make([]string, 0, min(len(due), rereadBatch))
	for len(due) > 0 {
		chunk := due[:min(len(due), rereadBatch)]
		due = due[len(chunk):]
		hashes = hashes[:0]
		for _, sum := range chunk {
			hashes = append(hashes, hex.EncodeToString(sum[:]))
		}
		v.mu.Lock()
		gen := v.gen
		v.mu.Unlock()
		res, err := v.batch.GetManyByHash(ctx, hashes)
		if err != nil {
			return read, fmt.Errorf("re-reading %d api keys: %w", len(chunk)+len(due), err)
		}
		if len(res) != len(chunk) {
			return read, fmt.Errorf("re-reading api keys: %d answers for %d keys", len(res), len(chunk))
		}
		read += len(chunk)
		for i := range res {
			if res[i].Err == nil {
				res[i].Record = res[i].Record.cacheable() // outside the lock
			}
		}
		now := v.opts.Now()
		v.mu.Lock()
		for i, r := range res {
			// A technical error leaves the entry cached (until
			// CacheTTL), as a failed single re-read does.
			if r.Err == nil || errors.Is(r.Err, ErrNotFound) {
				v.cacheLocked(gen, chunk[i], r.Record, now)
			}
		}
		v.mu.Unlock()
	}
	return read, nil
}

// refreshAfter is how long after a read a cached record in use is re-read:
// a random point between half and three quarters of CacheTTL. CacheTTL
// itself still bounds how long a read is served.
func (v *Verifier) refreshAfter() time.Duration {
	ttl := v.opts.CacheTTL
	return ttl/2 + rand.N(ttl/4+1)
}

// evict drops one key (by hex hash) from both caches.
func (v *Verifier) evict(hash string) {
	var sum [32]byte
	if n, err := hex.Decode(sum[:], []byte(hash)); err != nil || n != len(sum) {
		v.flushAll()
		return
	}
	v.mu.Lock()
	v.pos.remove(sum)
	v.neg.remove(sum)
	v.gen++
	v.mu.Unlock()
}

// flushAll empties both caches.
func (v *Verifier) flushAll() {
	v.mu.Lock()
	v.pos.clear()
	v.neg.clear()
	v.gen++
	v.mu.Unlock()
}

// Run keeps the Verifier current until ctx is done: it applies the store's
// invalidations (if the store given to NewVerifier is a Notifier — a
// wrapper around a store must pass Watch through) and writes recorded uses
// every LastUsedInterval. It returns nil when ctx is done.
func (v *Verifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if v.batch != nil && v.opts.CacheSize > 0 {
		wg.Go(func() { v.rereadLoop(ctx) })
	}
	if n, ok := v.store.(Notifier); ok {
		wg.Go(func() {
			if err := n.Watch(ctx, v.evict, v.flushAll); err != nil && ctx.Err() == nil {
				v.log.Error("api key invalidations stopped; cache entries now live for cache_ttl", "error", err)
			}
		})
	}
	if v.opts.LastUsedInterval <= 0 {
		<-ctx.Done()
		wg.Wait()
		return nil
	}
	t := time.NewTicker(v.opts.LastUsedInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			if err := v.Flush(ctx); err != nil && ctx.Err() == nil {
				v.log.Warn("recording api key use failed; will retry", "error", err)
			}
		}
	}
}

// Flush writes the recorded uses to the store in one batch. On failure they
// are kept for the next attempt.
func (v *Verifier) Flush(ctx context.Context) error {
	v.mu.Lock()
	batch := v.pending
	if len(batch) == 0 {
		v.mu.Unlock()
		return nil
	}
	v.pending = make(map[string]time.Time, len(batch))
	v.mu.Unlock()

	if err := v.store.TouchLastUsed(ctx, batch); err != nil {
		v.mu.Lock()
		for id, t := range batch {
			if t.After(v.pending[id]) {
				v.pending[id] = t
			}
		}
		v.mu.Unlock()
		return fmt.Errorf("recording api key use: %w", err)
	}
	return nil
}

// Close writes the uses recorded since the last flush. Call it once Run has
// returned.
func (v *Verifier) Close(ctx context.Context) error {
	return v.Flush(ctx)
}
