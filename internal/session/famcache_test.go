package session

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// TestRefreshOnRedisIsOneRoundTrip: once a replica has read a family, its
// next rotations are the rotate script alone (the first one also reads the
// family).
func TestRefreshOnRedisIsOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rc := newRedisClient(t, srv.URL()).(*redis.Client)
	m := newManager(t, rc, newClock())
	counter := &redistest.CommandCounter{}
	rc.AddHook(counter)
	tok, err := m.Start(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	var per []int64
	for range 4 {
		before := counter.Count()
		if tok, err = m.Refresh(ctx, tok.Refresh); err != nil {
			t.Fatal(err)
		}
		per = append(per, counter.Count()-before)
	}
	// The first also reads the family (and loads the script: EVALSHA,
	// NOSCRIPT, EVAL).
	if want := []int64{1, 1, 1}; !slices.Equal(per[1:], want) {
		t.Fatalf("commands per refresh: %v; want %v after the first (the rotate script alone)", per, want)
	}
}

// TestCachedFamilyFollowsOtherReplicas: a replica that has the family cached
// still refuses a rotation that Redis would refuse, and mints from the
// identity another replica stored since.
func TestCachedFamilyFollowsOtherReplicas(t *testing.T) {
	ctx := context.Background()
	refreshAt := func(t *testing.T, m *Manager, tok *Tokens) *Tokens {
		t.Helper()
		next, err := m.Refresh(ctx, tok.Refresh)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	// cachedAt starts alice's session at m and rotates it once there, so
	// that m has the family cached; it answers the current tokens.
	cachedAt := func(t *testing.T, m *Manager) *Tokens {
		t.Helper()
		t1, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return refreshAt(t, m, t1)
	}
	t.Run("identity changed", func(t *testing.T) {
		a, b, _ := replicas(t, Options{})
		promoted := b.WithUpdater(func(_ context.Context, id Identity) (Identity, error) {
			id.Roles = []string{"auditor"}
			return id, nil
		})
		t2 := cachedAt(t, a)             // with alice's roles
		t3 := refreshAt(t, promoted, t2) // b re-reads the identity: roles change
		if f := b.store.(*redisBackend).fams.get(t3.Family); f != nil {
			t.Errorf("a re-reading replica cached the family (with the provider's refresh token): %+v", f.Identity)
		}
		if got := accessRoles(t, t3.Access); !slices.Equal(got, []string{"auditor"}) {
			t.Fatalf("roles minted at b after the re-read: %v", got)
		}
		t4 := refreshAt(t, a, t3)
		if got := accessRoles(t, t4.Access); !slices.Equal(got, []string{"auditor"}) {
			t.Fatalf("roles minted at a after b changed the identity: %v; want [auditor], not its cached %v", got, alice.Roles)
		}
	})
	t.Run("logout elsewhere", func(t *testing.T) {
		a, b, _ := replicas(t, Options{})
		t2 := cachedAt(t, a)
		if err := b.Logout(ctx, t2.Access, t2.Refresh); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Refresh(ctx, t2.Refresh); !errors.Is(err, ErrRevoked) {
			t.Fatalf("refresh at a after logout at b: %v, %v; want ErrRevoked", got, err)
		}
	})
	t.Run("subject revoked elsewhere", func(t *testing.T) {
		a, b, _ := replicas(t, Options{})
		t2 := cachedAt(t, a)
		if n, err := b.RevokeSubject(ctx, alice.Subject); err != nil || n != 1 {
			t.Fatalf("RevokeSubject: %d, %v", n, err)
		}
		if got, err := a.Refresh(ctx, t2.Refresh); !errors.Is(err, ErrRevoked) {
			t.Fatalf("refresh at a after revocation at b: %v, %v; want ErrRevoked", got, err)
		}
	})
	t.Run("rotated elsewhere", func(t *testing.T) {
		a, b, _ := replicas(t, Options{})
		t2 := cachedAt(t, a)
		refreshAt(t, b, t2)
		// a still has the family cached; its current token is Redis's to say.
		if _, err := a.Refresh(ctx, t2.Refresh); !errors.Is(err, ErrReused) {
			t.Fatalf("refresh at a with the token b rotated: %v; want ErrReused", err)
		}
	})
	t.Run("family expired", func(t *testing.T) {
		a, _, srv := replicas(t, Options{})
		t2 := cachedAt(t, a)
		if err := newRedisClient(t, srv.URL()).Del(ctx, familyKeyPrefix+t2.Family).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Refresh(ctx, t2.Refresh); !errors.Is(err, ErrRevoked) {
			t.Fatalf("refresh of a family Redis forgot: %v; want ErrRevoked", err)
		}
	})
}

// TestFamilyCacheBounded: entries expire, and a full cache takes no more.
func TestFamilyCacheBounded(t *testing.T) {
	clk := newClock()
	c := newFamilyCache(clk.Now)
	c.max = 3
	for _, id := range []string{"f1", "f2", "f3", "f4"} {
		c.put(&family{ID: id, Identity: alice})
	}
	if len(c.entries) != 3 || c.get("f4") != nil {
		t.Fatalf("a full cache took another family: %d entries", len(c.entries))
	}
	if f := c.get("f1"); f == nil || f.Identity.Subject != alice.Subject || f.Current != "" {
		t.Fatalf("cached family: %+v; want alice's, without a current token", f)
	}
	clk.Advance(familyCacheTTL)
	if c.get("f1") != nil {
		t.Fatal("an entry outlived its ttl")
	}
	c.put(&family{ID: "f5", Identity: alice})
	if c.get("f5") == nil || len(c.entries) > 3 {
		t.Fatalf("after expiry: %d entries, f5 cached: %v", len(c.entries), c.get("f5") != nil)
	}
}

func accessRoles(t *testing.T, access string) []string {
	t.Helper()
	var claims struct {
		Roles []string `json:"roles"`
		jwt.RegisteredClaims
	}
	if _, _, err := jwt.NewParser().ParseUnverified(access, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Roles
}
