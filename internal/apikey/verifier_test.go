package apikey

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/clocktest"
	"github.com/authgateway/authgateway/internal/testutil/packtest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
)

type verifierFixture struct {
	clock    *clocktest.Fake
	store    *observedStore
	file     *FileStore
	manager  *Manager
	verifier *Verifier
	hits     atomic.Int64 // answers from memory, as the metrics see them
}

func newVerifierFixture(t *testing.T, opts VerifierOptions) *verifierFixture {
	t.Helper()
	clock := newFakeClock()
	file := newTestFileStore(t)
	store := &observedStore{Store: file}
	if opts.Prefixes == nil {
		opts.Prefixes = []string{"pk_live", "pk_test"}
	}
	opts.Now = clock.Now
	f := &verifierFixture{clock: clock, store: store, file: file, manager: NewManager(file, ManagerOptions{Now: clock.Now})}
	opts.OnCache = func(hit bool) {
		if hit {
			f.hits.Add(1)
		}
	}
	v, err := NewVerifier(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.verifier = v
	return f
}

func (f *verifierFixture) create(t *testing.T, p CreateParams) (string, *Record) {
	t.Helper()
	if p.Name == "" {
		p.Name = "svc"
	}
	key, rec, err := f.manager.Create(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return key, rec
}

func TestNewVerifierOptions(t *testing.T) {
	s := newTestFileStore(t)
	for name, opts := range map[string]VerifierOptions{
		"no prefixes":  {},
		"bad prefix":   {Prefixes: []string{"pk-live"}},
		"empty prefix": {Prefixes: []string{""}},
	} {
		if _, err := NewVerifier(s, opts); err == nil {
			t.Errorf("%s: NewVerifier succeeded; want an error", name)
		}
	}
	if _, err := NewVerifier(nil, VerifierOptions{Prefixes: []string{"pk"}}); err == nil {
		t.Error("nil store: NewVerifier succeeded; want an error")
	}
}

func TestVerifyOutcomes(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{})
	valid, rec := f.create(t, CreateParams{Roles: []string{"admin"}, Scopes: []string{"data:read"}})
	expiring, _ := f.create(t, CreateParams{ExpiresIn: time.Hour})
	revoked, revokedRec := f.create(t, CreateParams{})
	if err := f.manager.Revoke(ctx, revokedRec.ID); err != nil {
		t.Fatal(err)
	}
	other, _ := Generate("pk_test")
	foreign, _ := Generate("sk_live")

	tests := []struct {
		name    string
		key     string
		want    error
		lookups int64 // store lookups this call may cause
	}{
		{"valid", valid, nil, 1},
		{"valid again, cached", valid, nil, 0},
		{"expiring, not yet", expiring, nil, 1},
		{"revoked", revoked, ErrRevoked, 1},
		{"revoked again, cached", revoked, ErrRevoked, 0},
		{"unknown", other, ErrUnknown, 1},
		{"unknown again, negative cache", other, ErrUnknown, 0},
		{"unconfigured prefix", foreign, ErrMalformed, 0},
		{"empty", "", ErrMalformed, 0},
		{"truncated", valid[:len(valid)-1], ErrMalformed, 0},
		{"10 KB", strings.Repeat("pk_live_", 1280), ErrMalformed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.store.getByHash.Load()
			got, err := f.verifier.Verify(ctx, tt.key)
			if lookups := f.store.getByHash.Load() - before; lookups != tt.lookups {
				t.Errorf("store lookups = %d; want %d", lookups, tt.lookups)
			}
			if tt.want != nil {
				if !errors.Is(err, tt.want) || got != nil {
					t.Fatalf("Verify = %v, %v; want %v", got, err, tt.want)
				}
				if tt.key != "" && strings.Contains(err.Error(), tt.key) {
					t.Fatalf("error %q contains the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.key == valid && (got.ID != rec.ID || got.Name != "svc" || got.Roles[0] != "admin") {
				t.Fatalf("Verify = %+v; want %+v", got, rec)
			}
		})
	}
	if lookups, hits := f.store.getByHash.Load(), f.hits.Load(); lookups != 4 || hits != 3 {
		t.Errorf("store lookups %d, answers from memory %d; want 4, 3 (two cached, one negative)", lookups, hits)
	}
}

func TestVerifyReturnsACopy(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{})
	key, _ := f.create(t, CreateParams{Roles: []string{"reader"}})
	got, err := f.verifier.Verify(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got.Roles[0] = "admin"
	got.RevokedAt = time.Now()
	again, err := f.verifier.Verify(ctx, key)
	if err != nil || again.Roles[0] != "reader" {
		t.Fatalf("cached record was modified through a returned copy: %+v, %v", again, err)
	}
}

// TestVerifyExpiryOnTheClock: a cached key still expires on time, without a
// store lookup.
func TestVerifyExpiryOnTheClock(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheTTL: time.Hour})
	key, _ := f.create(t, CreateParams{ExpiresIn: 10 * time.Minute})
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10*time.Minute - time.Nanosecond)
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	f.clock.Advance(time.Nanosecond)
	if _, err := f.verifier.Verify(ctx, key); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v; want ErrExpired", err)
	}
	if n := f.store.getByHash.Load(); n != 1 {
		t.Errorf("store lookups = %d; want 1 (expiry decided from the cache)", n)
	}
}

// TestVerifyCacheTTLBoundsStaleness: without any invalidation (Run not
// started), a revocation takes effect once the cached entry is CacheTTL old.
func TestVerifyCacheTTLBoundsStaleness(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheTTL: 30 * time.Second})
	key, rec := f.create(t, CreateParams{})
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := f.manager.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30*time.Second - time.Millisecond)
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatalf("within CacheTTL the cached entry is served: %v", err)
	}
	f.clock.Advance(time.Millisecond)
	if _, err := f.verifier.Verify(ctx, key); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after CacheTTL: %v; want ErrRevoked", err)
	}
}

func TestVerifyNegativeCache(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{NegativeTTL: 5 * time.Second, NegativeSize: 3})
	var unknown []string
	for range 10 {
		k, _ := Generate("pk_live")
		unknown = append(unknown, k)
	}
	for _, k := range unknown {
		if _, err := f.verifier.Verify(ctx, k); !errors.Is(err, ErrUnknown) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if n := len(f.verifier.neg.items); n != 3 {
		t.Fatalf("negative cache holds %d entries; want the bound 3", n)
	}
	// The three most recent are remembered: no lookup.
	before := f.store.getByHash.Load()
	for _, k := range unknown[7:] {
		if _, err := f.verifier.Verify(ctx, k); !errors.Is(err, ErrUnknown) {
			t.Fatal(err)
		}
	}
	if n := f.store.getByHash.Load() - before; n != 0 {
		t.Fatalf("negative-cached keys caused %d lookups; want 0", n)
	}
	// After NegativeTTL they are asked again.
	f.clock.Advance(5 * time.Second)
	if _, err := f.verifier.Verify(ctx, unknown[9]); !errors.Is(err, ErrUnknown) {
		t.Fatal(err)
	}
	if n := f.store.getByHash.Load() - before; n != 1 {
		t.Fatalf("lookups after NegativeTTL = %d; want 1", n)
	}
}

func TestVerifyPositiveCacheBounded(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheSize: 2})
	for range 5 {
		k, _ := f.create(t, CreateParams{})
		if _, err := f.verifier.Verify(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.verifier.pos.items); n != 2 {
		t.Fatalf("positive cache holds %d entries; want the bound 2", n)
	}
}

func TestVerifyMalformedNeverLooksUp(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{})
	valid, _ := f.create(t, CreateParams{})
	inputs := []string{"", "pk_live_", "Bearer " + valid, valid + " ", strings.ToUpper(valid),
		strings.Repeat("a", 10<<10), "pk_live_" + strings.Repeat("é", 21) + "A", "\x00\x01\x02"}
	for _, in := range inputs {
		if _, err := f.verifier.Verify(ctx, in); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%.20q) = %v; want ErrMalformed", in, err)
		}
	}
	if n := f.store.getByHash.Load(); n != 0 {
		t.Fatalf("malformed keys caused %d lookups", n)
	}
}

// TestVerifyStaleLookupNotCached: a lookup that read the record before a
// revocation must not put it in the cache after the revocation's eviction.
func TestVerifyStaleLookupNotCached(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheTTL: time.Hour})
	key, rec := f.create(t, CreateParams{})
	read, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.store.hold = func() {
		once.Do(func() {
			close(read)
			<-release
		})
	}
	done := make(chan error)
	go func() { _, err := f.verifier.Verify(ctx, key); done <- err }()
	<-read // the record, not yet revoked, has been read
	if err := f.manager.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	f.verifier.evict(rec.Hash) // what Run does on the revocation's event
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the in-flight call: %v; want success (it began before the revocation)", err)
	}
	if _, err := f.verifier.Verify(ctx, key); !errors.Is(err, ErrRevoked) {
		t.Fatalf("next call: %v; want ErrRevoked (stale record must not be cached)", err)
	}
}

// TestVerifyConcurrentMissesShareOneLookup: a burst of requests with one
// uncached key makes a single store lookup. In a synctest bubble, so that
// every request is known to be waiting before the lookup ends (a request
// that arrived after it would be served from the cache and prove nothing).
func TestVerifyConcurrentMissesShareOneLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newVerifierFixture(t, VerifierOptions{})
		key, _ := f.create(t, CreateParams{})
		release := make(chan struct{})
		f.store.hold = func() { <-release }
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				_, err := f.verifier.Verify(ctx, key)
				errs <- err
			})
		}
		synctest.Wait() // all 20 are blocked: in the store, or behind its lookup
		if n := f.store.getByHash.Load(); n != 1 {
			t.Errorf("store lookups with 20 requests waiting = %d; want 1", n)
		}
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := f.store.getByHash.Load(); n != 1 {
			t.Errorf("store lookups = %d; want 1", n)
		}
	})
}

func TestVerifyTechnicalErrorFailsClosed(t *testing.T) {
	ctx := context.Background()
	s, srv := newTestRedisStore(t)
	v, err := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live"}})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := Generate("pk_live")
	srv.Stop()
	rec, err := v.Verify(ctx, key)
	if err == nil || rec != nil {
		t.Fatalf("Verify with the store down = %v, %v; want an error", rec, err)
	}
	for _, bad := range []error{ErrUnknown, ErrMalformed, ErrExpired, ErrRevoked} {
		if errors.Is(err, bad) {
			t.Fatalf("Verify with the store down: %v; want a technical error, not %v", err, bad)
		}
	}
	if strings.Contains(err.Error(), key) {
		t.Fatalf("error contains the key: %v", err)
	}
	// Not negative-cached: once the store is back, the answer is right.
	srv.Restart()
	if _, err := v.Verify(ctx, key); !errors.Is(err, ErrUnknown) {
		t.Fatalf("after recovery: %v; want ErrUnknown", err)
	}
}

func TestVerifyRecordsLastUsedInBatches(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{})
	k1, r1 := f.create(t, CreateParams{Name: "one"})
	k2, r2 := f.create(t, CreateParams{Name: "two"})
	revoked, r3 := f.create(t, CreateParams{Name: "three"})
	if err := f.manager.Revoke(ctx, r3.ID); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		for _, k := range []string{k1, k2, revoked} {
			_, _ = f.verifier.Verify(ctx, k)
		}
	}
	f.clock.Advance(time.Second)
	if _, err := f.verifier.Verify(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if n := f.store.touches.Load(); n != 0 {
		t.Fatalf("%d writes during requests; want none before a flush", n)
	}
	pending := pendingUses(f.verifier)
	if len(pending) != 2 || !pending[r1.ID].Equal(f.clock.Now()) {
		t.Fatalf("pending uses = %v; want the two valid keys, one at the latest use", pending)
	}
	if err := f.verifier.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.store.touches.Load(); n != 1 {
		t.Fatalf("Close made %d writes; want one batch", n)
	}
	for _, r := range []*Record{r1, r2} {
		got, _ := f.file.Get(ctx, r.ID)
		if got.LastUsedAt.IsZero() {
			t.Errorf("%s: LastUsedAt not written", r.Name)
		}
	}
	if got, _ := f.file.Get(ctx, r3.ID); !got.LastUsedAt.IsZero() {
		t.Error("a revoked key's use was recorded")
	}
	if err := f.verifier.Flush(ctx); err != nil || f.store.touches.Load() != 1 {
		t.Fatalf("flush with nothing pending wrote: %v", err)
	}
}

func TestVerifyLastUsedKeptOnFailure(t *testing.T) {
	ctx := context.Background()
	s, srv := newTestRedisStore(t)
	m := NewManager(s, ManagerOptions{})
	key, rec, err := m.Create(ctx, CreateParams{Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live"}})
	if _, err := v.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := v.Flush(ctx); err == nil {
		t.Fatal("Flush with redis down succeeded")
	}
	if _, ok := pendingUses(v)[rec.ID]; !ok {
		t.Fatal("a failed flush dropped the pending use")
	}
}

// TestRunFlushesPeriodically drives Run with a short interval on a real
// store; with a file store it also exercises Watch.
func TestRunFlushesPeriodically(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{LastUsedInterval: 20 * time.Millisecond})
	key, rec := f.create(t, CreateParams{})
	runVerifier(t, f.verifier)
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "last used written", func() bool {
		got, err := f.file.Get(ctx, rec.ID)
		return err == nil && !got.LastUsedAt.IsZero()
	})
}

// TestRunFileStoreRevocationIsImmediate: with a file store, a revocation by
// the CLI (another FileStore on the same file) reaches a running Verifier
// through Watch, long before CacheTTL.
func TestRunFileStoreRevocationIsImmediate(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheTTL: time.Hour})
	key, rec := f.create(t, CreateParams{})
	runVerifier(t, f.verifier)
	// Watch flushes once when it starts; only then is a cached entry safe
	// from that flush, so that only the revocation can remove it.
	poll.True(t, 5*time.Second, "watch started", func() bool { return f.store.flushes.Load() >= 1 })
	for range 2 {
		if _, err := f.verifier.Verify(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if hits := f.hits.Load(); hits != 1 {
		t.Fatalf("cache hits = %d; want 1", hits)
	}
	cli, _ := NewFileStore(f.file.Path())
	if err := NewManager(cli, ManagerOptions{}).Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "revocation seen", func() bool {
		_, err := f.verifier.Verify(ctx, key)
		return errors.Is(err, ErrRevoked)
	})
}

func BenchmarkVerifyCached(b *testing.B) {
	s, err := NewFileStore(b.TempDir() + "/keys.yaml")
	if err != nil {
		b.Fatal(err)
	}
	key, _, err := NewManager(s, ManagerOptions{}).Create(context.Background(),
		CreateParams{Name: "svc", Roles: []string{"a", "b"}, Scopes: []string{"x"}})
	if err != nil {
		b.Fatal(err)
	}
	var lookups atomic.Int64
	v, _ := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live", "pk_test"}, CacheTTL: time.Hour,
		OnCache: func(hit bool) {
			if !hit {
				lookups.Add(1)
			}
		}})
	ctx := context.Background()
	if _, err := v.Verify(ctx, key); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if n := lookups.Load(); n != 1 {
		b.Fatalf("lookups = %d; want 1", n)
	}
}

func BenchmarkVerifyMalformed(b *testing.B) {
	s, _ := NewFileStore(b.TempDir() + "/keys.yaml")
	v, _ := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live", "pk_test"}})
	ctx := context.Background()
	inputs := []string{"", "pk_live_short", "Bearer abc.def.ghi", strings.Repeat("x", 1000),
		fmt.Sprintf("pk_live_%043d", 0)[:50] + "!"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Verify(ctx, inputs[i%len(inputs)]); !errors.Is(err, ErrMalformed) {
			b.Fatal(err)
		}
		i++
	}
}

// TestVerifyClaimsBuiltOnce: the identity's claims of a key are its
// metadata, built on first use (not when the record is cached) and shared
// by every request the cached record serves (the same map), never rebuilt
// per request.
func TestVerifyClaimsBuiltOnce(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{})
	key, rec := f.create(t, CreateParams{Name: "deploybot", Roles: []string{"deployer", "reader"}, Scopes: []string{"ci"}})
	first, err := f.verifier.Verify(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if first.claims == nil || first.claims.m != nil {
		t.Fatal("the cached record's claims were built before any use")
	}
	c := first.Claims()
	want := map[string]any{"id": rec.ID, "name": "deploybot", "prefix": rec.Prefix, "roles": []any{"deployer", "reader"}, "scopes": []any{"ci"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("claims = %v, want %v", c, want)
	}
	second, err := f.verifier.Verify(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(second.Claims()).UnsafePointer() != reflect.ValueOf(c).UnsafePointer() {
		t.Error("claims were built again for a cached record")
	}
}

// TestVerifyCachesPackedRecords: the record a Verifier caches holds its
// strings in one block and its roles and scopes in one array (package
// pack), so 10,000 cached keys are a few objects each for the garbage
// collector; it reads as the store's record.
func TestVerifyCachesPackedRecords(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{})
	key, rec := f.create(t, CreateParams{Name: "deploybot", Roles: []string{"deployer", "reader"}, Scopes: []string{"ci", "deploy"}})
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	cached, _, ok := f.verifier.pos.get(sha256.Sum256([]byte(key)), f.clock.Now())
	if !ok {
		t.Fatal("not cached")
	}
	got := *cached
	got.claims = nil
	if !reflect.DeepEqual(&got, rec) {
		t.Fatalf("cached %+v; want %+v", &got, rec)
	}
	packtest.OneBlock(t, "cached record", append([]string{cached.ID, cached.Name, cached.Prefix, cached.Hash}, append(cached.Roles, cached.Scopes...)...))
	packtest.OneArray(t, "roles and scopes", cached.Roles, cached.Scopes)
}

// TestVerifyRefreshesAheadWithoutWaiting: a key in use past half its
// CacheTTL is re-read in the background while the request is answered from
// the cache; the re-read extends the entry, so a key in steady use never
// expires into a request that waits for the store.
func TestVerifyRefreshesAheadWithoutWaiting(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheTTL: 40 * time.Second})
	key, _ := f.create(t, CreateParams{})
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	read, release := make(chan struct{}), make(chan struct{})
	f.store.hold = func() {
		close(read)
		<-release
	}
	f.clock.Advance(30 * time.Second) // past the latest refresh point (3/4 of the TTL)
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatalf("served from the cache while the re-read waits: %v", err)
	}
	<-read // the re-read is in flight, and the request above did not wait for it
	// More requests meanwhile start no second re-read.
	for range 5 {
		if _, err := f.verifier.Verify(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	poll.Until(t, 10*time.Second, "re-read cached", func() error {
		f.verifier.mu.Lock()
		defer f.verifier.mu.Unlock()
		if _, _, ok := f.verifier.pos.get(sha256.Sum256([]byte(key)), f.clock.Now().Add(35*time.Second)); !ok {
			return errors.New("not yet")
		}
		return nil
	})
	if got := f.store.getByHash.Load(); got != 2 {
		t.Fatalf("%d store reads; want 2 (the miss and one re-read)", got)
	}
	f.store.hold = nil
	f.clock.Advance(35 * time.Second) // past the first read's expiry, within the re-read's
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := f.store.getByHash.Load(); got != 2 {
		t.Fatalf("%d store reads after the first read expired; want 2 (the re-read's entry answers)", got)
	}
}

// TestVerifyRefreshSeesRevocation: a revocation whose invalidation was
// missed is picked up by the next re-read, before CacheTTL.
func TestVerifyRefreshSeesRevocation(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheTTL: 40 * time.Second})
	key, rec := f.create(t, CreateParams{})
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := f.manager.Revoke(ctx, rec.ID); err != nil { // no Run: the event is missed
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatalf("the cached entry answers while it is re-read: %v", err)
	}
	poll.Until(t, 10*time.Second, "revocation seen", func() error {
		if _, err := f.verifier.Verify(ctx, key); !errors.Is(err, ErrRevoked) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})
}

// TestVerifyRefreshFindsKeyGone: a re-read that finds no record drops the
// cached one (the key is unknown from then on), and a re-read that began
// before an invalidation does not put its record back.
func TestVerifyRefreshFindsKeyGone(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheTTL: 40 * time.Second})
	key, rec := f.create(t, CreateParams{})
	if _, err := f.verifier.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	// The operator deletes its line from the file.
	if err := f.file.update(ctx, func(recs []*Record) ([]*Record, error) {
		return slices.DeleteFunc(recs, func(r *Record) bool { return r.ID == rec.ID }), nil
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	_, _ = f.verifier.Verify(ctx, key) // starts the re-read
	poll.Until(t, 10*time.Second, "deleted key unknown", func() error {
		if _, err := f.verifier.Verify(ctx, key); !errors.Is(err, ErrUnknown) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})

	key2, rec2 := f.create(t, CreateParams{Name: "two"})
	if _, err := f.verifier.Verify(ctx, key2); err != nil {
		t.Fatal(err)
	}
	read, release := make(chan struct{}), make(chan struct{})
	f.store.hold = func() {
		close(read)
		<-release
	}
	f.clock.Advance(30 * time.Second)
	if _, err := f.verifier.Verify(ctx, key2); err != nil {
		t.Fatal(err)
	}
	<-read // the re-read has the record, not yet revoked
	if err := f.manager.Revoke(ctx, rec2.ID); err != nil {
		t.Fatal(err)
	}
	f.verifier.evict(rec2.Hash) // what Run does on the revocation's event
	close(release)
	f.store.hold = nil
	poll.Until(t, 10*time.Second, "revoked after the re-read", func() error {
		if _, err := f.verifier.Verify(ctx, key2); !errors.Is(err, ErrRevoked) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})
	if got := f.store.getByHash.Load(); got < 4 {
		t.Fatalf("%d store reads; the stale re-read must not have been cached", got)
	}
}

// TestVerifyRefreshesSpread: keys cached in the same instant are re-read at
// different times (between half and three quarters of CacheTTL), not all at
// once.
func TestVerifyRefreshesSpread(t *testing.T) {
	ctx := context.Background()
	f := newVerifierFixture(t, VerifierOptions{CacheTTL: 40 * time.Second})
	var keys []string
	for i := range 40 {
		k, _ := f.create(t, CreateParams{Name: fmt.Sprint("k", i)})
		if _, err := f.verifier.Verify(ctx, k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	due := func() int {
		n := 0
		f.verifier.mu.Lock()
		defer f.verifier.mu.Unlock()
		for _, k := range keys {
			it := f.verifier.pos.items[sha256.Sum256([]byte(k))]
			if !f.clock.Now().Before(it.refresh) {
				n++
			}
		}
		return n
	}
	if n := due(); n != 0 {
		t.Fatalf("%d due at once", n)
	}
	f.clock.Advance(20*time.Second - time.Millisecond)
	if n := due(); n != 0 {
		t.Fatalf("%d due before half the TTL", n)
	}
	f.clock.Advance(5 * time.Second)
	if n := due(); n == 0 || n == len(keys) {
		t.Fatalf("%d of %d due at 5/8 of the TTL; want some, not all", n, len(keys))
	}
	// To exactly 3/4 of the TTL (the clock stands 1 ms short of 5/8):
	// refreshAfter's latest point is due there.
	f.clock.Advance(5*time.Second + time.Millisecond)
	if n := due(); n != len(keys) {
		t.Fatalf("%d of %d due at 3/4 of the TTL; want all", n, len(keys))
	}
}
