package session

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/packtest"
)

// TestStoredFamiliesArePacked: what the in-memory store keeps of a family,
// and what the Redis replicas' family cache keeps, are its strings in one
// block (and its roles in one list), after creation and after every
// rotation, so 10,000 sessions are a few heap objects each.
func TestStoredFamiliesArePacked(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	b := newMemoryBackend(func() time.Time { return now })
	fresh := strings.Clone
	ident := Identity{Subject: fresh("alice"), Email: fresh("a@example.test"), Roles: []string{fresh("admin"), fresh("ops")},
		ProviderSession: fresh("sid-1"), IDToken: fresh("h.p.s")}
	f := &family{ID: fresh("fam-1"), Identity: ident, Born: now, Current: fresh("r1"),
		Access: []AccessRef{{ID: fresh("a1"), Expiry: now.Add(time.Minute)}}}
	if err := b.createFamily(ctx, f, time.Hour); err != nil {
		t.Fatal(err)
	}
	mf := b.fams["fam-1"]
	if mf.Identity.Subject != "alice" || mf.Identity.Roles[1] != "ops" || mf.Current != "r1" || mf.Access[0].ID != "a1" {
		t.Fatalf("stored family reads %+v", mf.family)
	}
	packtest.OneBlock(t, "created identity", append([]string{mf.Identity.Subject, mf.Identity.Email, mf.Identity.ProviderSession, mf.Identity.IDToken, mf.ID}, mf.Identity.Roles...),
		f.ID, ident.Subject, ident.Roles[0])
	packtest.OneBlock(t, "created tokens", []string{mf.Current, mf.Access[0].ID}, f.Current, f.Access[0].ID)

	rot := rotation{presented: fresh("r1"), next: fresh("r2"), at: AccessRef{ID: fresh("a2"), Expiry: now.Add(time.Minute)}, ttl: time.Hour}
	if _, err := b.rotate(ctx, &family{ID: "fam-1"}, rot); err != nil {
		t.Fatal(err)
	}
	if mf.Current != "r2" || mf.prev != "r1" || len(mf.Access) != 2 || mf.Access[1].ID != "a2" {
		t.Fatalf("rotated family reads current %q prev %q access %+v", mf.Current, mf.prev, mf.Access)
	}
	packtest.OneBlock(t, "rotated tokens", []string{mf.Current, mf.prev, mf.Access[0].ID, mf.Access[1].ID}, rot.presented, rot.next, rot.at.ID)

	c := newFamilyCache(func() time.Time { return now })
	rf := &family{ID: fresh("fam-2"), Identity: ident, Born: now, storedIdentity: fresh(`{"sub":"alice"}`)}
	c.put(rf)
	got := c.get("fam-2") // a use: the entry's ttl is renewed, its key kept
	c.get(fresh("fam-2"))
	if got == nil || got.Identity.Subject != "alice" || got.storedIdentity != `{"sub":"alice"}` || got.Identity.Roles[0] != "admin" {
		t.Fatalf("cached family reads %+v", got)
	}
	var key string
	for k := range c.entries {
		key = k
	}
	packtest.OneBlock(t, "cached family", append([]string{got.Identity.Subject, got.Identity.Email, got.Identity.ProviderSession, got.Identity.IDToken, key, got.storedIdentity}, got.Identity.Roles...),
		rf.ID, rf.storedIdentity, ident.Subject)
}
