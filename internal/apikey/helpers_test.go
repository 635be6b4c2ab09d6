package apikey

import (
	"context"
	"maps"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/testutil/clocktest"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

func newFakeClock() *clocktest.Fake {
	return clocktest.NewFake(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
}

// observedStore wraps a real store, counting calls and optionally pausing
// GetByHash so tests can interleave events with a lookup in flight.
type observedStore struct {
	Store
	getByHash atomic.Int64
	touches   atomic.Int64
	flushes   atomic.Int64 // flushAll calls passed through Watch
	// hold, when set, is called inside GetByHash after the real read.
	hold func()
}

func (s *observedStore) GetByHash(ctx context.Context, hash string) (*Record, error) {
	s.getByHash.Add(1)
	rec, err := s.Store.GetByHash(ctx, hash)
	if s.hold != nil {
		s.hold()
	}
	return rec, err
}

// Watch passes the wrapped store's invalidations through.
func (s *observedStore) Watch(ctx context.Context, evict func(string), flushAll func()) error {
	if n, ok := s.Store.(Notifier); ok {
		return n.Watch(ctx, evict, func() {
			flushAll()
			s.flushes.Add(1)
		})
	}
	<-ctx.Done()
	return nil
}

func (s *observedStore) TouchLastUsed(ctx context.Context, used map[string]time.Time) error {
	s.touches.Add(1)
	return s.Store.TouchLastUsed(ctx, used)
}

func newTestFileStore(t *testing.T) *FileStore {
	t.Helper()
	s, err := NewFileStore(filepath.Join(t.TempDir(), "api-keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newRedisClient is a client built the way the gateway builds it.
func newRedisClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	c, err := redisconn.New(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testStrategy is the api_key strategy the Redis stores of these tests
// belong to.
const testStrategy = "apiKey"

func newTestRedisStore(t *testing.T) (*RedisStore, *redistest.Server) {
	t.Helper()
	s := redistest.Start(t)
	return NewRedisStore(newRedisClient(t, s.URL()), testStrategy, nil), s
}

// newKeyRecord returns a fresh key and its valid record.
func newKeyRecord(t *testing.T, name string, created time.Time) (string, *Record) {
	t.Helper()
	key := mustGenerate(t, "pk_live")
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	return key, &Record{
		ID: id, Name: name, Prefix: "pk_live", Hash: Hash(key),
		Roles: []string{"reader"}, Scopes: []string{"data:read"},
		CreatedAt: created.UTC(),
	}
}

// pendingUses are the uses v recorded and has not written yet.
func pendingUses(v *Verifier) map[string]time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.pending)
}

// runVerifier runs v until the test ends.
func runVerifier(t *testing.T, v *Verifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = v.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
