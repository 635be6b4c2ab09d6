package apikey

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/clocktest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// batchObservedStore is observedStore on a store that answers batches,
// counting them and optionally holding one after its read.
type batchObservedStore struct {
	*observedStore
	batches atomic.Int64
	batched atomic.Int64 // keys asked for in batches
	// holdBatch, when set, is called inside GetManyByHash after the read.
	holdBatch func()
}

func (s *batchObservedStore) GetManyByHash(ctx context.Context, hashes []string) ([]Lookup, error) {
	s.batches.Add(1)
	s.batched.Add(int64(len(hashes)))
	res, err := s.Store.(batchStore).GetManyByHash(ctx, hashes)
	if s.holdBatch != nil {
		s.holdBatch()
	}
	return res, err
}

// TestRedisStoreGetManyByHash: each hash gets what GetByHash would answer
// (a record, unknown, or an error for a corrupt entry, which spoils no
// other), in two commands for the lot.
func TestRedisStoreGetManyByHash(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	admin := newRedisClient(t, srv.URL())
	store := NewRedisStore(admin, testStrategy, nil)
	clock := newFakeClock()
	var keys []string
	var recs []*Record
	for i := range 4 {
		k, rec := newKeyRecord(t, fmt.Sprint("svc-", i), clock.Now())
		if err := store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		keys, recs = append(keys, k), append(recs, rec)
	}
	if err := store.TouchLastUsed(ctx, map[string]time.Time{recs[0].ID: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	l := strategyLayout(testStrategy)
	// recs[1]'s record is unreadable; an index entry points at recs[2]'s
	// record under another hash; recs[3]'s index is gone.
	if err := admin.Set(ctx, l.idKey(recs[1].ID), "{", 0).Err(); err != nil {
		t.Fatal(err)
	}
	crossed := Hash(mustGenerate(t, "pk_live"))
	if err := admin.Set(ctx, l.hashKey(crossed), recs[2].ID, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Del(ctx, l.hashKey(recs[3].Hash)).Err(); err != nil {
		t.Fatal(err)
	}
	unknown := Hash(mustGenerate(t, "pk_live"))

	counter := &redistest.CommandCounter{}
	c := newRedisClient(t, srv.URL())
	c.AddHook(counter)
	if err := c.Ping(ctx).Err(); err != nil { // connected: only the batch's commands count below
		t.Fatal(err)
	}
	before := counter.Count()
	hashes := []string{recs[0].Hash, unknown, "not-a-hash", recs[1].Hash, crossed, recs[2].Hash, recs[3].Hash}
	got, err := NewRedisStore(c, testStrategy, nil).GetManyByHash(ctx, hashes)
	if err != nil {
		t.Fatal(err)
	}
	if n := counter.Count() - before; n != 2 {
		t.Errorf("%d commands for %d hashes; want 2", n, len(hashes))
	}
	if len(got) != len(hashes) {
		t.Fatalf("%d answers for %d hashes", len(got), len(hashes))
	}
	if r := got[0].Record; got[0].Err != nil || r == nil || r.ID != recs[0].ID || !slices.Equal(r.Roles, recs[0].Roles) {
		t.Errorf("known key: %+v", got[0])
	} else if !r.LastUsedAt.IsZero() {
		t.Errorf("record came with its last-used time; the batch read leaves it out")
	}
	for _, i := range []int{1, 2, 6} {
		if !errors.Is(got[i].Err, ErrNotFound) || got[i].Record != nil {
			t.Errorf("hash %d: %+v; want ErrNotFound", i, got[i])
		}
	}
	for _, i := range []int{3, 4} {
		if got[i].Err == nil || errors.Is(got[i].Err, ErrNotFound) || got[i].Record != nil {
			t.Errorf("hash %d: %+v; want a technical error", i, got[i])
		}
	}
	if r := got[5].Record; got[5].Err != nil || r == nil || r.ID != recs[2].ID {
		t.Errorf("a corrupt neighbour spoiled a good answer: %+v", got[5])
	}
	for i, k := range keys {
		for _, l := range got {
			if l.Err != nil && (strings.Contains(l.Err.Error(), k) || strings.Contains(l.Err.Error(), recs[i].Hash)) {
				t.Errorf("error %q names a key or its hash", l.Err)
			}
		}
	}

	srv.Stop()
	if _, err := NewRedisStore(c, testStrategy, nil).GetManyByHash(ctx, hashes[:1]); err == nil {
		t.Fatal("batch with redis down: no error")
	}
}

// batchFixture is a Verifier on a real Redis store, with Run running and
// the store's batches counted.
type batchFixture struct {
	clock   *clocktest.Fake
	admin   *Manager
	store   *batchObservedStore
	v       *Verifier
	srv     *redistest.Server
	records map[string]*Record // by key
}

func newBatchFixture(t *testing.T, n int) (*batchFixture, []string) {
	t.Helper()
	ctx := context.Background()
	srv := redistest.Start(t)
	clock := newFakeClock()
	adminStore := NewRedisStore(newRedisClient(t, srv.URL()), testStrategy, nil)
	f := &batchFixture{clock: clock, admin: NewManager(adminStore, ManagerOptions{Now: clock.Now}), srv: srv,
		records: map[string]*Record{}}
	f.store = &batchObservedStore{observedStore: &observedStore{Store: NewRedisStore(newRedisClient(t, srv.URL()), testStrategy, nil)}}
	v, err := NewVerifier(f.store, VerifierOptions{
		Prefixes: []string{"pk_live"}, CacheTTL: 40 * time.Second, Now: clock.Now,
		RereadInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	runVerifier(t, v)
	// Subscribing flushes the cache: cache the keys after that.
	poll.True(t, 10*time.Second, "subscribed and batching", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.batching && f.store.flushes.Load() >= 1
	})
	v.mu.Lock()
	gen := v.gen
	v.mu.Unlock()
	var keys []string
	for i := range n {
		k, rec, err := f.admin.Create(ctx, CreateParams{Name: fmt.Sprint("svc-", i), Roles: []string{"reader"}})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		f.records[k] = rec
	}
	// Each creation is published, and its eviction must not land after
	// the key is cached below.
	poll.True(t, 10*time.Second, "creations heard", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.gen >= gen+uint64(n)
	})
	for _, k := range keys {
		if _, err := v.Verify(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	return f, keys
}

// TestVerifyRereadsInBatches: keys in use that fall due are re-read
// together, not one store call each; the re-read picks up changes whose
// invalidation was missed (new roles, a revocation, a deleted key).
func TestVerifyRereadsInBatches(t *testing.T) {
	ctx := context.Background()
	f, keys := newBatchFixture(t, 60)
	admin := newRedisClient(t, f.srv.URL())
	lookups := f.store.getByHash.Load()
	if lookups != int64(len(keys)) {
		t.Fatalf("%d lookups for %d keys", lookups, len(keys))
	}
	// Changes the verifier's subscription does not hear about.
	changed := f.records[keys[0]].Clone()
	changed.Roles = []string{"writer"}
	silentWrite(t, admin, changed)
	revoked := f.records[keys[1]].Clone()
	revoked.RevokedAt = f.clock.Now()
	silentWrite(t, admin, revoked)
	l := strategyLayout(testStrategy)
	if err := admin.Del(ctx, l.hashKey(f.records[keys[2]].Hash)).Err(); err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(30 * time.Second) // every key past its refresh point
	for _, k := range keys {
		rec, err := f.v.Verify(ctx, k)
		if err != nil {
			t.Fatalf("served from the cache while due: %v", err)
		}
		if k == keys[0] && !slices.Equal(rec.Roles, []string{"reader"}) {
			t.Fatalf("roles %v before the re-read", rec.Roles)
		}
	}
	poll.Until(t, 10*time.Second, "re-read seen", func() error {
		rec, err := f.v.Verify(ctx, keys[0])
		if err != nil || !slices.Equal(rec.Roles, []string{"writer"}) {
			return fmt.Errorf("roles %v, %v", rec.Roles, err)
		}
		if _, err := f.v.Verify(ctx, keys[1]); !errors.Is(err, ErrRevoked) {
			return fmt.Errorf("revoked key: %v", err)
		}
		if _, err := f.v.Verify(ctx, keys[2]); !errors.Is(err, ErrUnknown) {
			return fmt.Errorf("deleted key: %v", err)
		}
		return nil
	})
	if got := f.store.getByHash.Load(); got != lookups {
		t.Errorf("%d single lookups during the re-read; want none", got-lookups)
	}
	if b, k := f.store.batches.Load(), f.store.batched.Load(); k != int64(len(keys)) || b > 3 {
		t.Errorf("%d keys re-read in %d batches; want %d in at most 3", k, b, len(keys))
	}
	// The re-read entries are fresh: past the first reads' expiry they
	// answer from memory, with no lookup and no new batch.
	f.clock.Advance(15 * time.Second)
	batches := f.store.batches.Load()
	for _, k := range keys[3:] {
		if _, err := f.v.Verify(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.store.getByHash.Load(); got != lookups {
		t.Errorf("%d lookups after the first reads expired; the re-reads' entries should answer", got-lookups)
	}
	if got := f.store.batches.Load(); got != batches {
		t.Errorf("%d more batches for entries not yet due", got-batches)
	}
}

// TestVerifyBatchAfterInvalidationNotCached: a batch read before a
// revocation's invalidation must not put the unrevoked record back.
func TestVerifyBatchAfterInvalidationNotCached(t *testing.T) {
	ctx := context.Background()
	f, keys := newBatchFixture(t, 3)
	read, release := make(chan struct{}), make(chan struct{})
	f.store.holdBatch = func() {
		close(read)
		<-release
	}
	f.clock.Advance(30 * time.Second)
	for _, k := range keys {
		if _, err := f.v.Verify(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	<-read // the batch has the records, none revoked
	if err := f.admin.Revoke(ctx, f.records[keys[0]].ID); err != nil {
		t.Fatal(err)
	}
	f.v.evict(f.records[keys[0]].Hash) // what Run does on the event (it may also get there first)
	f.store.holdBatch = nil
	close(release)
	poll.Until(t, 10*time.Second, "revoked after the batch", func() error {
		if _, err := f.v.Verify(ctx, keys[0]); !errors.Is(err, ErrRevoked) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})
	for _, k := range keys[1:] {
		if _, err := f.v.Verify(ctx, k); err != nil {
			t.Fatalf("other key: %v", err)
		}
	}
}

// TestVerifyBatchRedisDown: while Redis is down the batch fails, the
// entries answer until CacheTTL and then the key fails closed; once Redis
// is back, the keys work again.
func TestVerifyBatchRedisDown(t *testing.T) {
	ctx := context.Background()
	f, keys := newBatchFixture(t, 2)
	f.srv.Stop()
	f.clock.Advance(30 * time.Second)
	batches := f.store.batches.Load()
	for _, k := range keys {
		if _, err := f.v.Verify(ctx, k); err != nil {
			t.Fatalf("cached key while redis is down, within cache_ttl: %v", err)
		}
	}
	poll.True(t, 10*time.Second, "batch tried", func() bool { return f.store.batches.Load() > batches })
	f.clock.Advance(10 * time.Second) // past CacheTTL
	if _, err := f.v.Verify(ctx, keys[0]); err == nil || errors.Is(err, ErrUnknown) || errors.Is(err, ErrRevoked) {
		t.Fatalf("past cache_ttl with redis down: %v; want a technical error", err)
	}
	f.srv.Restart() // empty: no persistence in tests; the record is put back
	silentWrite(t, newRedisClient(t, f.srv.URL()), f.records[keys[1]])
	poll.Until(t, 15*time.Second, "accepted after redis is back", func() error {
		_, err := f.v.Verify(ctx, keys[1])
		return err
	})
}

// TestVerifyWithoutRunRereadsEachKey: with no Run (so no batch loop) a due
// key is still re-read, one lookup of its own.
func TestVerifyWithoutRunRereadsEachKey(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	clock := newFakeClock()
	admin := NewManager(NewRedisStore(newRedisClient(t, srv.URL()), testStrategy, nil), ManagerOptions{Now: clock.Now})
	store := &batchObservedStore{observedStore: &observedStore{Store: NewRedisStore(newRedisClient(t, srv.URL()), testStrategy, nil)}}
	v, err := NewVerifier(store, VerifierOptions{Prefixes: []string{"pk_live"}, CacheTTL: 40 * time.Second, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := admin.Create(ctx, CreateParams{Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	if _, err := v.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 10*time.Second, "re-read", func() bool { return store.getByHash.Load() == 2 })
	if store.batches.Load() != 0 {
		t.Error("a batch without Run")
	}
	v.mu.Lock()
	_, _, ok := v.pos.get(sha256.Sum256([]byte(key)), clock.Now().Add(35*time.Second))
	v.mu.Unlock()
	if !ok {
		t.Error("the re-read did not extend the entry")
	}
}
