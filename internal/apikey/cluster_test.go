package apikey

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// TestRedisStoreOnCluster runs every Redis operation of the store on a real
// 3-master Redis Cluster: the create script (four keys), lookups (single and batched), the
// WATCH/MULTI of a revocation, the last-used script (many keys), the
// invalidation channel, and the move out of the shared layout of earlier
// versions, in another slot than the namespace. Each script and
// transaction must keep to one slot, or the cluster refuses it (CROSSSLOT).
func TestRedisStoreOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	ctx := context.Background()
	store := NewRedisStore(newRedisClient(t, c.URL()), testStrategy, nil)
	legacy := NewLegacyStore(newRedisClient(t, c.URL()))
	v, err := NewVerifier(NewRedisStore(newRedisClient(t, c.URL()), testStrategy, nil), VerifierOptions{Prefixes: []string{"pk_live"}})
	if err != nil {
		t.Fatal(err)
	}
	runVerifier(t, v)

	m := NewManager(store, ManagerOptions{})
	key, rec, err := m.Create(ctx, CreateParams{Name: "svc"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := v.Verify(ctx, key); err != nil { // cached from here
		t.Fatalf("Verify: %v", err)
	}
	if err := store.TouchLastUsed(ctx, map[string]time.Time{rec.ID: time.Now()}); err != nil {
		t.Fatalf("TouchLastUsed: %v", err)
	}
	if got, err := store.List(ctx); err != nil || len(got) != 1 || got[0].LastUsedAt.IsZero() {
		t.Fatalf("List = %v, %v; want the key with its last use", got, err)
	}
	// The batch re-read's two MGETs (index, then records) keep to the slot.
	_, otherRec, err := m.Create(ctx, CreateParams{Name: "other"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := store.GetManyByHash(ctx, []string{rec.Hash, otherRec.Hash, Hash(mustGenerate(t, "pk_live"))})
	if err != nil || len(got) != 3 || got[0].Record == nil || got[0].Record.ID != rec.ID ||
		got[1].Record == nil || got[1].Record.ID != otherRec.ID || !errors.Is(got[2].Err, ErrNotFound) {
		t.Fatalf("GetManyByHash = %+v, %v; want both records and one unknown", got, err)
	}
	if err := store.Revoke(ctx, rec.ID, time.Now()); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	poll.True(t, 5*time.Second, "the revocation evicts the cached key", func() bool {
		_, err := v.Verify(ctx, key)
		return errors.Is(err, ErrRevoked)
	})

	oldKey, old := newKeyRecord(t, "legacy", time.Now().Add(-time.Hour))
	writeLegacy(t, legacy.s.c, old, time.Now().Add(-time.Minute))
	if moved, err := legacy.MoveTo(ctx, store, old.ID); err != nil || !moved {
		t.Fatalf("MoveTo = %v, %v; want moved", moved, err)
	}
	if n, err := legacy.Count(ctx); err != nil || n != 0 {
		t.Errorf("legacy Count after the move = %d, %v; want 0", n, err)
	}
	poll.True(t, 5*time.Second, "the moved key is accepted", func() bool {
		_, err := v.Verify(ctx, oldKey)
		return err == nil
	})
}
