package apikey

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestManagerCreate(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newTestFileStore(t)
	m := NewManager(s, ManagerOptions{Prefixes: []string{"pk_live", "pk_test"}, Now: clock.Now})

	key, rec, err := m.Create(ctx, CreateParams{Name: "billing", Prefix: "pk_test",
		Roles: []string{"admin", "ops"}, Scopes: []string{"data:read", "data:write"}, ExpiresIn: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := Parse(key, []string{"pk_test"}); err != nil || p != "pk_test" {
		t.Fatalf("created key does not parse: %q, %v", p, err)
	}
	if rec.Hash != Hash(key) || rec.Prefix != "pk_test" || rec.Name != "billing" ||
		!slices.Equal(rec.Roles, []string{"admin", "ops"}) || !slices.Equal(rec.Scopes, []string{"data:read", "data:write"}) {
		t.Fatalf("record %+v does not describe the key", rec)
	}
	if !rec.CreatedAt.Equal(clock.Now()) || !rec.ExpiresAt.Equal(clock.Now().Add(90*24*time.Hour)) {
		t.Fatalf("created %v expires %v; want now and now+90d", rec.CreatedAt, rec.ExpiresAt)
	}
	if !regexp.MustCompile(`^key_[a-z2-7]{12}$`).MatchString(rec.ID) {
		t.Fatalf("id %q; want key_ and 12 base32 characters", rec.ID)
	}
	stored, err := s.GetByHash(ctx, Hash(key))
	if err != nil {
		t.Fatal(err)
	}
	assertSameRecord(t, stored, rec)

	// Default prefix, no expiry.
	key, rec, err = m.Create(ctx, CreateParams{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "pk_live_") || !rec.ExpiresAt.IsZero() {
		t.Fatalf("default create: key prefix %q, expires %v; want pk_live_ and never", key[:8], rec.ExpiresAt)
	}
}

// TestManagerCreateRefuses attacks what ends up in identity headers and the
// prefix rule.
func TestManagerCreateRefuses(t *testing.T) {
	ctx := context.Background()
	s := newTestFileStore(t)
	m := NewManager(s, ManagerOptions{Prefixes: []string{"pk_live"}})
	tests := []struct {
		name string
		p    CreateParams
	}{
		{"no name", CreateParams{}},
		{"name with CRLF", CreateParams{Name: "svc\r\nX-Auth-Roles: admin"}},
		{"name with NUL", CreateParams{Name: "svc\x00"}},
		{"role with comma", CreateParams{Name: "svc", Roles: []string{"reader,admin"}}},
		{"role with space", CreateParams{Name: "svc", Roles: []string{"reader admin"}}},
		{"empty role", CreateParams{Name: "svc", Roles: []string{""}}},
		{"scope with space", CreateParams{Name: "svc", Scopes: []string{"data:read admin:all"}}},
		{"scope with newline", CreateParams{Name: "svc", Scopes: []string{"a\nb"}}},
		{"role non-ASCII", CreateParams{Name: "svc", Roles: []string{"ädmin"}}},
		{"unconfigured prefix", CreateParams{Name: "svc", Prefix: "pk_test"}},
		{"invalid prefix", CreateParams{Name: "svc", Prefix: "pk-live"}},
		{"negative expiry", CreateParams{Name: "svc", ExpiresIn: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, rec, err := m.Create(ctx, tt.p)
			if err == nil || key != "" || rec != nil {
				t.Fatalf("Create = %q, %v, %v; want an error and no key", key, rec, err)
			}
		})
	}
	if list := mustList(t, s); len(list) != 0 {
		t.Fatalf("refused creates stored %d records", len(list))
	}
}

// TestManagerSharedFileByPrefix: two strategies on one key file with
// prefixes of their own. Each sees, revokes and rotates only the keys of
// its prefixes: a key's prefix says which strategy it belongs to.
func TestManagerSharedFileByPrefix(t *testing.T) {
	ctx := context.Background()
	s := newTestFileStore(t)
	partner := NewManager(s, ManagerOptions{Prefixes: []string{"pk_partner"}})
	internal := NewManager(s, ManagerOptions{Prefixes: []string{"pk_internal"}})
	_, prec, err := partner.Create(ctx, CreateParams{Name: "partner-bot", Prefix: "pk_partner"})
	if err != nil {
		t.Fatal(err)
	}
	_, irec, err := internal.Create(ctx, CreateParams{Name: "internal-bot", Prefix: "pk_internal"})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := internal.List(ctx); err != nil || len(list) != 1 || list[0].ID != irec.ID {
		t.Errorf("internal List = %v, %v; want only internal-bot", names(list), err)
	}
	if err := internal.Revoke(ctx, prec.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("internal Revoke(partner id) = %v; want ErrNotFound", err)
	}
	if _, _, err := internal.Rotate(ctx, prec.ID, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("internal Rotate(partner id) = %v; want ErrNotFound", err)
	}
	if got, err := s.Get(ctx, prec.ID); err != nil || got.Revoked() || !got.ExpiresAt.IsZero() {
		t.Errorf("partner key after internal's attempts = %+v, %v; want untouched", got, err)
	}
	if len(mustList(t, s)) != 2 {
		t.Errorf("the file holds %d keys; want 2", len(mustList(t, s)))
	}
}

func TestManagerRevoke(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newTestFileStore(t)
	m := NewManager(s, ManagerOptions{Now: clock.Now})
	key, rec, err := m.Create(ctx, CreateParams{Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	first := clock.Now()
	clock.Advance(time.Hour)
	if err := m.Revoke(ctx, rec.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	got, _ := s.Get(ctx, rec.ID)
	if !got.RevokedAt.Equal(first) {
		t.Fatalf("RevokedAt = %v; want the first revocation %v", got.RevokedAt, first)
	}
	v, _ := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live"}, Now: clock.Now})
	if _, err := v.Verify(ctx, key); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify revoked key: %v; want ErrRevoked", err)
	}
	if err := m.Revoke(ctx, "key_aaaaaaaaaaaa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown id: %v; want ErrNotFound", err)
	}
}

func TestManagerRotate(t *testing.T) {
	const lifetime = 90 * 24 * time.Hour
	tests := []struct {
		name        string
		expiresIn   time.Duration // of the old key
		age         time.Duration // old key's age at rotation
		grace       time.Duration
		wantOldEnds time.Duration // after the rotation; -1: never
		wantNewLife time.Duration // 0: never expires
	}{
		{"grace", lifetime, time.Hour, 24 * time.Hour, 24 * time.Hour, lifetime},
		{"no expiry keeps none", 0, time.Hour, 24 * time.Hour, 24 * time.Hour, 0},
		{"earlier expiry stays", lifetime, lifetime - time.Hour, 24 * time.Hour, time.Hour, lifetime},
		{"zero grace ends at once", lifetime, time.Hour, 0, 0, lifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newFakeClock()
			s := newTestFileStore(t)
			m := NewManager(s, ManagerOptions{Now: clock.Now})
			v, _ := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live"}, Now: clock.Now, CacheTTL: -1})

			oldKey, old, err := m.Create(ctx, CreateParams{Name: "svc", Roles: []string{"r"}, Scopes: []string{"s"}, ExpiresIn: tt.expiresIn})
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(tt.age)
			rotatedAt := clock.Now()
			newKey, rec, err := m.Rotate(ctx, old.ID, tt.grace)
			if err != nil {
				t.Fatal(err)
			}
			if newKey == oldKey || rec.ID == old.ID || rec.Hash != Hash(newKey) {
				t.Fatal("rotation did not make a new key")
			}
			if rec.Name != old.Name || rec.Prefix != old.Prefix || !slices.Equal(rec.Roles, old.Roles) || !slices.Equal(rec.Scopes, old.Scopes) {
				t.Fatalf("new record %+v; want the old attributes %+v", rec, old)
			}
			wantNewExp := time.Time{}
			if tt.wantNewLife > 0 {
				wantNewExp = rotatedAt.Add(tt.wantNewLife)
			}
			if !rec.ExpiresAt.Equal(wantNewExp) {
				t.Fatalf("new key expires %v; want %v", rec.ExpiresAt, wantNewExp)
			}

			if tt.wantOldEnds > 0 {
				clock.Advance(tt.wantOldEnds - time.Nanosecond)
				if _, err := v.Verify(ctx, oldKey); err != nil {
					t.Fatalf("old key just before the end of its grace: %v", err)
				}
				clock.Advance(time.Nanosecond)
			}
			if _, err := v.Verify(ctx, oldKey); !errors.Is(err, ErrExpired) {
				t.Fatalf("old key after its grace: %v; want ErrExpired", err)
			}
			if _, err := v.Verify(ctx, newKey); err != nil {
				t.Fatalf("new key: %v", err)
			}
		})
	}
}

func TestManagerRotateRefuses(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newTestFileStore(t)
	m := NewManager(s, ManagerOptions{Now: clock.Now})
	_, revoked, _ := m.Create(ctx, CreateParams{Name: "revoked"})
	_ = m.Revoke(ctx, revoked.ID)
	_, expired, _ := m.Create(ctx, CreateParams{Name: "expired", ExpiresIn: time.Minute})
	_, live, _ := m.Create(ctx, CreateParams{Name: "live"})
	clock.Advance(time.Minute)
	tests := []struct {
		name  string
		id    string
		grace time.Duration
		want  error
	}{
		{"revoked", revoked.ID, time.Hour, ErrRevoked},
		{"expired", expired.ID, time.Hour, ErrExpired},
		{"unknown", "key_aaaaaaaaaaaa", time.Hour, ErrNotFound},
		{"negative grace", live.ID, -time.Hour, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, rec, err := m.Rotate(ctx, tt.id, tt.grace)
			if err == nil || key != "" || rec != nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Rotate = %q, %v, %v; want %v", key, rec, err, tt.want)
			}
		})
	}
	if n := len(mustList(t, s)); n != 3 {
		t.Fatalf("store holds %d records; want 3 (refused rotations create nothing)", n)
	}
}
