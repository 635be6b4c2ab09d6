package apikey

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// writeLegacy stores rec as versions before namespaces did, in the layout
// every strategy shared. The key names are spelt out, not taken from
// legacyLayout, so that the test pins that layout.
func writeLegacy(t *testing.T, c redis.UniversalClient, rec *Record, lastUsed time.Time) {
	t.Helper()
	ctx := context.Background()
	data, err := marshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "authgw:{apikey}:id:"+rec.ID, data, 0)
		p.Set(ctx, "authgw:{apikey}:hash:"+rec.Hash, rec.ID, 0)
		p.SAdd(ctx, "authgw:{apikey}:ids", rec.ID)
		if !lastUsed.IsZero() {
			p.HSet(ctx, "authgw:{apikey}:last_used", rec.ID, strconv.FormatInt(lastUsed.UnixMilli(), 10))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLegacyMigration: keys in the shared layout are accepted by no
// strategy; MoveTo brings each into the strategy's namespace with its
// revocation, expiry and last use, removes it from the shared layout, and
// tells a running replica at once; a second run moves nothing. A replica
// keeps serving its own keys throughout.
func TestLegacyMigration(t *testing.T) {
	ctx := context.Background()
	dst, srv := newTestRedisStore(t)
	legacy := NewLegacyStore(dst.c)
	rep := newReplica(t, srv, "replica", VerifierOptions{})
	served, _, err := NewManager(dst, ManagerOptions{}).Create(ctx, CreateParams{Name: "already-namespaced"})
	if err != nil {
		t.Fatal(err)
	}

	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	lastUsed := created.Add(30 * time.Minute)
	activeKey, active := newKeyRecord(t, "active", created)
	revokedKey, revoked := newKeyRecord(t, "revoked", created)
	revoked.RevokedAt = created.Add(time.Minute)
	expiringKey, expiring := newKeyRecord(t, "expiring", created)
	expiring.ExpiresAt = time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	writeLegacy(t, dst.c, active, lastUsed)
	writeLegacy(t, dst.c, revoked, time.Time{})
	writeLegacy(t, dst.c, expiring, time.Time{})

	// Safe by default: no strategy accepts a key of the shared layout.
	for _, k := range []string{activeKey, revokedKey, expiringKey} {
		if _, err := rep.v.Verify(ctx, k); !errors.Is(err, ErrUnknown) {
			t.Fatalf("legacy key before the migration: Verify = %v; want ErrUnknown", err)
		}
	}
	if n, err := legacy.Count(ctx); err != nil || n != 3 {
		t.Fatalf("legacy Count = %d, %v; want 3", n, err)
	}

	// A replica verifying its own key (from Redis each time) meanwhile.
	serving, stop := make(chan error, 1), make(chan struct{})
	var checks atomic.Int64
	go func() {
		v, _ := NewVerifier(NewRedisStore(newRedisClient(t, srv.URL()), testStrategy, nil), VerifierOptions{Prefixes: []string{"pk_live"}, CacheTTL: -1})
		for {
			select {
			case <-stop:
				serving <- nil
				return
			default:
			}
			if _, err := v.Verify(ctx, served); err != nil {
				serving <- err
				return
			}
			checks.Add(1)
		}
	}()

	for _, r := range []*Record{active, revoked, expiring} {
		moved, err := legacy.MoveTo(ctx, dst, r.ID)
		if err != nil || !moved {
			t.Fatalf("MoveTo(%s) = %v, %v; want moved", r.Name, moved, err)
		}
	}
	poll.True(t, 5*time.Second, "the replica verified during the migration", func() bool { return checks.Load() > 0 })
	close(stop)
	if err := <-serving; err != nil {
		t.Errorf("a replica's own key during the migration: %v", err)
	}

	// The replica remembered the active key as unknown (negative cache,
	// 5s); the move's announcement makes it forget that at once.
	poll.True(t, time.Second, "active legacy key accepted after the move", func() bool {
		_, err := rep.v.Verify(ctx, activeKey)
		return err == nil
	})
	if _, err := rep.v.Verify(ctx, revokedKey); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked legacy key after the move: Verify = %v; want ErrRevoked", err)
	}
	if _, err := rep.v.Verify(ctx, expiringKey); err != nil {
		t.Errorf("expiring legacy key after the move: Verify = %v; want accepted", err)
	}
	for _, want := range []*Record{active, revoked, expiring} {
		got, err := dst.Get(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		w := want.Clone()
		if want == active {
			w.LastUsedAt = lastUsed
		}
		assertSameRecord(t, got, w)
	}

	// Gone from the shared layout; each key once in the namespace.
	if dump := dumpRedis(t, dst.c); strings.Contains(dump, "authgw:{apikey}:") {
		t.Errorf("the shared layout still holds keys:\n%s", dump)
	}
	list, err := dst.List(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("namespace List = %v, %v; want the 4 keys", names(list), err)
	}

	// Again: nothing to do, nothing changes.
	before := dumpRedis(t, dst.c)
	for _, r := range []*Record{active, revoked, expiring} {
		if moved, err := legacy.MoveTo(ctx, dst, r.ID); err != nil || moved {
			t.Errorf("second MoveTo(%s) = %v, %v; want false, nil", r.Name, moved, err)
		}
	}
	if after := dumpRedis(t, dst.c); after != before {
		t.Errorf("a second migration changed Redis:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n, err := legacy.Count(ctx); err != nil || n != 0 {
		t.Errorf("legacy Count after the migration = %d, %v; want 0", n, err)
	}
	id, _ := newID()
	if _, err := legacy.MoveTo(ctx, dst, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("MoveTo(unknown id) = %v; want ErrNotFound", err)
	}
}

// TestLegacyMoveResumes: a run cut off after writing into the namespace,
// then a revocation through the shared layout (an older CLI still
// running): the next run finishes the move and keeps the revocation.
func TestLegacyMoveResumes(t *testing.T) {
	ctx := context.Background()
	dst, _ := newTestRedisStore(t)
	legacy := NewLegacyStore(dst.c)
	_, rec := newKeyRecord(t, "svc", time.Now())
	writeLegacy(t, dst.c, rec, time.Time{})
	if err := dst.adopt(ctx, rec); err != nil { // the cut-off run's first step
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := legacy.s.Revoke(ctx, rec.ID, at); err != nil {
		t.Fatal(err)
	}
	if moved, err := legacy.MoveTo(ctx, dst, rec.ID); err != nil || !moved {
		t.Fatalf("MoveTo = %v, %v; want moved", moved, err)
	}
	got, err := dst.Get(ctx, rec.ID)
	if err != nil || !got.RevokedAt.Equal(at) {
		t.Fatalf("after the resumed move: %+v, %v; want revoked at %v", got, err, at)
	}
	if n, _ := legacy.Count(ctx); n != 0 {
		t.Errorf("legacy Count = %d; want 0", n)
	}

	// An id the namespace holds for another key is never overwritten.
	_, other := newKeyRecord(t, "other", time.Now())
	other.ID = rec.ID
	writeLegacy(t, dst.c, other, time.Time{})
	if _, err := legacy.MoveTo(ctx, dst, rec.ID); err == nil || !strings.Contains(err.Error(), "taken by another key") {
		t.Errorf("MoveTo onto an id of another key = %v; want refused", err)
	}
	if got, _ := dst.Get(ctx, rec.ID); got == nil || got.Hash != rec.Hash {
		t.Errorf("the namespace's record was replaced")
	}
}

// TestLegacyMoveRacesOldWriter: revocations made through the shared layout
// while the keys are being moved are never lost: every revocation that
// succeeded is on the moved record.
func TestLegacyMoveRacesOldWriter(t *testing.T) {
	ctx := context.Background()
	dst, srv := newTestRedisStore(t)
	legacy := NewLegacyStore(dst.c)
	old := NewLegacyStore(newRedisClient(t, srv.URL())).s // an older CLI, on its own connection
	const n = 40
	recs := make([]*Record, n)
	for i := range recs {
		_, recs[i] = newKeyRecord(t, fmt.Sprint("k", i), time.Now())
		writeLegacy(t, dst.c, recs[i], time.Time{})
	}
	revokeErr := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Go(func() {
			if _, err := legacy.MoveTo(ctx, dst, r.ID); err != nil {
				t.Errorf("MoveTo(%s): %v", r.Name, err)
			}
		})
		wg.Go(func() { revokeErr[i] = old.Revoke(ctx, r.ID, time.Now()) })
	}
	wg.Wait()
	won := 0
	for i, r := range recs {
		got, err := dst.Get(ctx, r.ID)
		if err != nil {
			t.Fatalf("%s lost: %v", r.Name, err)
		}
		switch {
		case revokeErr[i] == nil:
			won++
			if !got.Revoked() {
				t.Errorf("%s was revoked through the shared layout during the move, but its moved record is not revoked", r.Name)
			}
		case !errors.Is(revokeErr[i], ErrNotFound):
			t.Errorf("revoking %s: %v", r.Name, revokeErr[i])
		}
	}
	if c, _ := legacy.Count(ctx); c != 0 {
		t.Errorf("legacy Count = %d; want 0", c)
	}
	t.Logf("%d of %d revocations landed before their key left the shared layout", won, n)
}

func TestMergeRecords(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name                    string
		haveRevoked, srcRevoked time.Time
		haveExpires, srcExpires time.Time
		wantRevoked, wantExpire time.Time
	}{
		{name: "nothing set"},
		{name: "revoked in the source", srcRevoked: at(5), wantRevoked: at(5)},
		{name: "revoked in the namespace stays", haveRevoked: at(5), wantRevoked: at(5)},
		{name: "earlier revocation wins", haveRevoked: at(7), srcRevoked: at(5), wantRevoked: at(5)},
		{name: "sooner expiry wins", haveExpires: at(60), srcExpires: at(30), wantExpire: at(30)},
		{name: "expiry set only in the source", srcExpires: at(30), wantExpire: at(30)},
		{name: "a later expiry never lengthens", haveExpires: at(30), srcExpires: at(60), wantExpire: at(30)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, have := newKeyRecord(t, "k", t0)
			src := have.Clone()
			have.RevokedAt, have.ExpiresAt = tc.haveRevoked, tc.haveExpires
			src.RevokedAt, src.ExpiresAt = tc.srcRevoked, tc.srcExpires
			got := mergeRecords(have, src)
			if !got.RevokedAt.Equal(tc.wantRevoked) || !got.ExpiresAt.Equal(tc.wantExpire) {
				t.Errorf("merged revoked %v expires %v; want %v, %v", got.RevokedAt, got.ExpiresAt, tc.wantRevoked, tc.wantExpire)
			}
		})
	}
}
