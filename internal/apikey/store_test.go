package apikey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// storeKinds runs a test against every Store implementation, each on a
// real backend (a file in a temp dir, a real redis-server).
func storeKinds(t *testing.T, test func(t *testing.T, newStore func() Store)) {
	t.Run("file", func(t *testing.T) {
		path := newTestFileStore(t).Path()
		test(t, func() Store {
			s, err := NewFileStore(path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("redis", func(t *testing.T) {
		s, srv := newTestRedisStore(t)
		_ = s
		test(t, func() Store { return NewRedisStore(newRedisClient(t, srv.URL()), testStrategy, nil) })
	})
}

func TestStoreRoundTrip(t *testing.T) {
	storeKinds(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		s := newStore()
		created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
		_, a := newKeyRecord(t, "alpha", created)
		a.ExpiresAt = created.Add(90 * 24 * time.Hour)
		_, b := newKeyRecord(t, "beta", created.Add(time.Second))
		b.Roles, b.Scopes = nil, nil

		if got, err := s.List(ctx); err != nil || len(got) != 0 {
			t.Fatalf("List on an empty store = %v, %v; want nothing", got, err)
		}
		for _, r := range []*Record{b, a} {
			if err := s.Create(ctx, r); err != nil {
				t.Fatalf("Create(%s): %v", r.Name, err)
			}
		}
		for _, r := range []*Record{a, b} {
			got, err := s.Get(ctx, r.ID)
			if err != nil {
				t.Fatalf("Get(%s): %v", r.ID, err)
			}
			assertSameRecord(t, got, r)
			got, err = s.GetByHash(ctx, r.Hash)
			if err != nil {
				t.Fatalf("GetByHash(%s): %v", r.Name, err)
			}
			assertSameRecord(t, got, r)
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
			t.Fatalf("List = %v; want [alpha beta] oldest first", names(list))
		}

		// A second instance (another process, another replica) sees it all.
		other := newStore()
		got, err := other.GetByHash(ctx, a.Hash)
		if err != nil {
			t.Fatal(err)
		}
		assertSameRecord(t, got, a)

		// Records handed out are copies.
		got.Roles[0] = "admin"
		again, _ := s.Get(ctx, a.ID)
		if again.Roles[0] != "reader" {
			t.Fatalf("modifying a returned record changed the store: roles %v", again.Roles)
		}
	})
}

func TestStoreErrors(t *testing.T) {
	storeKinds(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		s := newStore()
		_, r := newKeyRecord(t, "alpha", time.Now())
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		_, other := newKeyRecord(t, "other", time.Now())
		dupID := *other
		dupID.ID = r.ID
		dupHash := *other
		dupHash.Hash = r.Hash
		bad := *other
		bad.Roles = []string{"reader,admin"}

		tests := []struct {
			name string
			call func() error
			want error // nil: any non-nil error
		}{
			{"get unknown id", func() error { _, err := s.Get(ctx, "key_aaaaaaaaaaaa"); return err }, ErrNotFound},
			{"get malformed id", func() error { _, err := s.Get(ctx, "../etc/passwd"); return err }, ErrNotFound},
			{"get unknown hash", func() error { _, err := s.GetByHash(ctx, Hash("nope")); return err }, ErrNotFound},
			{"get malformed hash", func() error { _, err := s.GetByHash(ctx, "*"); return err }, ErrNotFound},
			{"revoke unknown", func() error { return s.Revoke(ctx, "key_aaaaaaaaaaaa", time.Now()) }, ErrNotFound},
			{"expiry unknown", func() error { return s.SetExpiry(ctx, "key_aaaaaaaaaaaa", time.Now()) }, ErrNotFound},
			{"duplicate id", func() error { return s.Create(ctx, &dupID) }, ErrExists},
			{"duplicate hash", func() error { return s.Create(ctx, &dupHash) }, ErrExists},
			{"role with a comma", func() error { return s.Create(ctx, &bad) }, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
					t.Fatalf("err = %v; want %v", err, tt.want)
				}
			})
		}
		if list, _ := s.List(ctx); len(list) != 1 {
			t.Fatalf("List has %d records after refused creates; want 1", len(list))
		}
	})
}

func TestStoreUpdates(t *testing.T) {
	storeKinds(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		s := newStore()
		t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		_, r := newKeyRecord(t, "alpha", t0)
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}

		if err := s.SetExpiry(ctx, r.ID, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, r.ID, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, r.ID, t0.Add(2*time.Minute)); err != nil {
			t.Fatalf("second Revoke: %v; want nil (idempotent)", err)
		}
		// Unknown ids are skipped, and times only move forward.
		if err := s.TouchLastUsed(ctx, map[string]time.Time{r.ID: t0.Add(30 * time.Second), "key_aaaaaaaaaaaa": t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchLastUsed(ctx, map[string]time.Time{r.ID: t0.Add(10 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		got, err := newStore().Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("ExpiresAt = %v; want %v", got.ExpiresAt, t0.Add(time.Hour))
		}
		if !got.RevokedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("RevokedAt = %v; want the first revocation %v", got.RevokedAt, t0.Add(time.Minute))
		}
		if !got.LastUsedAt.Equal(t0.Add(30 * time.Second)) {
			t.Errorf("LastUsedAt = %v; want %v (never moved back)", got.LastUsedAt, t0.Add(30*time.Second))
		}
		if _, err := s.Get(ctx, "key_aaaaaaaaaaaa"); !errors.Is(err, ErrNotFound) {
			t.Errorf("TouchLastUsed created a record for an unknown id: %v", err)
		}
	})
}

// TestStoreConcurrentWritersLoseNothing runs several store instances (for
// the file store: several FileStores on one file, as the CLI and gateways
// are) writing at once: creates, revocations, expiry changes and last-used
// updates on the same records. Every create and every revocation must
// survive.
func TestStoreConcurrentWritersLoseNothing(t *testing.T) {
	storeKinds(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		const writers, perWriter = 4, 5
		stores := make([]Store, writers)
		for i := range stores {
			stores[i] = newStore()
		}
		now := time.Now().UTC()
		records := make([][]*Record, writers)
		for w := range writers {
			for i := range perWriter {
				_, r := newKeyRecord(t, fmt.Sprintf("w%d-%d", w, i), now)
				records[w] = append(records[w], r)
			}
		}

		var wg sync.WaitGroup
		errs := make(chan error, writers*perWriter*4)
		for w := range writers {
			wg.Go(func() {
				s := stores[w]
				for i, r := range records[w] {
					if err := s.Create(ctx, r); err != nil {
						errs <- err
						continue
					}
					// Another writer's record, touched while its owner revokes it.
					peer := records[(w+1)%writers][i]
					_ = s.TouchLastUsed(ctx, map[string]time.Time{peer.ID: now.Add(time.Duration(i) * time.Second)})
					if err := s.Revoke(ctx, r.ID, now); err != nil {
						errs <- err
					}
					if err := s.SetExpiry(ctx, r.ID, now.Add(time.Hour)); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("writer: %v", err)
		}

		list, err := newStore().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != writers*perWriter {
			t.Fatalf("List has %d records; want %d", len(list), writers*perWriter)
		}
		for _, r := range list {
			if !r.Revoked() {
				t.Errorf("revocation of %s (%s) was lost", r.ID, r.Name)
			}
			if !r.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Errorf("expiry of %s was lost: %v", r.Name, r.ExpiresAt)
			}
		}
	})
}

func assertSameRecord(t *testing.T, got, want *Record) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Prefix != want.Prefix || got.Hash != want.Hash ||
		!slices.Equal(got.Roles, want.Roles) || !slices.Equal(got.Scopes, want.Scopes) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.RevokedAt.Equal(want.RevokedAt) || !got.LastUsedAt.Equal(want.LastUsedAt) {
		t.Fatalf("record = %+v; want %+v", got, want)
	}
}

func names(recs []*Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Name)
	}
	return out
}
