package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

var bob = Identity{Subject: "user-2", Email: "bob@example.com"}

// TestRevokeSubject: every session of a subject ends, and only those.
func TestRevokeSubject(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		m := newM(newClock())
		a1, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if a2, err = m.Refresh(ctx, a2.Refresh); err != nil {
			t.Fatal(err)
		}
		b1, err := m.Start(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		list, err := m.List(ctx, alice.Subject)
		if err != nil || len(list) != 2 {
			t.Fatalf("List = %+v, %v; want alice's two sessions", list, err)
		}
		for _, in := range list {
			if in.Subject != alice.Subject || in.Born.IsZero() || in.Revoked || (in.Family != a1.Family && in.Family != a2.Family) {
				t.Fatalf("session info %+v", in)
			}
		}
		n, err := m.RevokeSubject(ctx, alice.Subject)
		if err != nil || n != 2 {
			t.Fatalf("RevokeSubject = %d, %v; want 2", n, err)
		}
		for _, tk := range []*Tokens{a1, a2} {
			if !revoked(t, m, tk.AccessID) {
				t.Fatal("access token of a revoked subject still accepted")
			}
			if _, err := m.Refresh(ctx, tk.Refresh); !errors.Is(err, ErrRevoked) {
				t.Fatalf("refresh after RevokeSubject: %v; want ErrRevoked", err)
			}
		}
		if revoked(t, m, b1.AccessID) {
			t.Fatal("another subject's session was revoked")
		}
		if _, err := m.Refresh(ctx, b1.Refresh); err != nil {
			t.Fatalf("another subject's refresh: %v", err)
		}
		if n, err := m.RevokeSubject(ctx, alice.Subject); err != nil || n != 0 {
			t.Fatalf("second RevokeSubject = %d, %v; want 0", n, err)
		}
	})
}

// TestRevokeProviderSession: the sessions of one provider session end.
func TestRevokeProviderSession(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		m := newM(newClock())
		in, out := alice, alice
		in.ProviderSession, out.ProviderSession = "op-session-1", "op-session-2"
		s1, err := m.Start(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := m.Start(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := m.RevokeProviderSession(ctx, "op-session-1"); err != nil || n != 1 {
			t.Fatalf("RevokeProviderSession = %d, %v; want 1", n, err)
		}
		if !revoked(t, m, s1.AccessID) || revoked(t, m, s2.AccessID) {
			t.Fatal("want the session of op-session-1 revoked and only it")
		}
	})
}

// subjectRevokedEverywhere: a subject revoked at a is refused at b within
// a second.
func subjectRevokedEverywhere(t *testing.T, a, b *Manager) {
	t.Helper()
	ctx := context.Background()
	s, err := b.Start(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeSubject(ctx, alice.Subject); err != nil {
		t.Fatal(err)
	}
	took := poll.True(t, 5*time.Second, "replica b refuses the revoked subject", func() bool { return revoked(t, b, s.AccessID) })
	if took > time.Second {
		t.Errorf("revocation reached the other replica after %s, want < 1s", took)
	}
	if _, err := b.Refresh(ctx, s.Refresh); !errors.Is(err, ErrRevoked) {
		t.Fatalf("refresh at b: %v; want ErrRevoked", err)
	}
}

func TestRevokeSubjectAcrossReplicas(t *testing.T) {
	a, b, _ := replicas(t, Options{})
	subjectRevokedEverywhere(t, a, b)
}
