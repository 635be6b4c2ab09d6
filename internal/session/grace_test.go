package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

const testGrace = 30 * time.Second

// TestReuseGrace: a rotated token presented again within the grace gets
// the same successor; presented after it, the family is revoked.
func TestReuseGrace(t *testing.T) {
	backendsWith(t, Options{ReuseGrace: testGrace}, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		clk := newClock()
		m := newM(clk)
		t0, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		t1, err := m.Refresh(ctx, t0.Refresh)
		if err != nil || t1.Grace {
			t.Fatalf("first refresh: %+v, %v", t1, err)
		}
		clk.Advance(testGrace - time.Second)
		again, err := m.Refresh(ctx, t0.Refresh) // the second tab
		if err != nil {
			t.Fatalf("same token within the grace: %v", err)
		}
		if !again.Grace || again.Refresh != t1.Refresh || again.Access != t1.Access || again.AccessID != t1.AccessID {
			t.Fatalf("within the grace: got another successor (grace %v)", again.Grace)
		}
		t2, err := m.Refresh(ctx, t1.Refresh)
		if err != nil || t2.Grace {
			t.Fatalf("successor rotates on: %v", err)
		}
		// t0 is two rotations old: reuse, whatever the time.
		if _, err := m.Refresh(ctx, t0.Refresh); !errors.Is(err, ErrReused) {
			t.Fatalf("token two rotations old: err = %v; want ErrReused", err)
		}
		for _, tk := range []*Tokens{t0, t1, t2} {
			if !revoked(t, m, tk.AccessID) {
				t.Fatalf("access token %s of the reused family is not revoked", tk.AccessID)
			}
		}
	})
}

func TestReuseAfterGraceRevokes(t *testing.T) {
	backendsWith(t, Options{ReuseGrace: testGrace}, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		clk := newClock()
		m := newM(clk)
		t0, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		t1, err := m.Refresh(ctx, t0.Refresh)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(testGrace + time.Second)
		if _, err := m.Refresh(ctx, t0.Refresh); !errors.Is(err, ErrReused) {
			t.Fatalf("reuse after the grace: err = %v; want ErrReused", err)
		}
		if _, err := m.Refresh(ctx, t1.Refresh); !errors.Is(err, ErrRevoked) {
			t.Fatalf("successor after reuse: err = %v; want ErrRevoked", err)
		}
		if !revoked(t, m, t1.AccessID) {
			t.Fatal("successor's access token not revoked")
		}
	})
}

// TestParallelRefresh: 20 requests with one refresh token at once (a page
// whose access cookie just expired) all succeed with the same successor:
// one session lives on.
func TestParallelRefresh(t *testing.T) {
	backendsWith(t, Options{ReuseGrace: testGrace}, func(t *testing.T, newM func(*clock) *Manager) {
		m := newM(newClock())
		parallelRefresh(t, m, m)
	})
}

// TestParallelRefreshTwoReplicas: the same across two managers on one Redis.
func TestParallelRefreshTwoReplicas(t *testing.T) {
	a, b, _ := replicas(t, Options{ReuseGrace: testGrace})
	parallelRefresh(t, a, b)
}

func parallelRefresh(t *testing.T, a, b *Manager) {
	t.Helper()
	ctx := context.Background()
	t0, err := a.Start(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	got := make([]*Tokens, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		m := a
		if i%2 == 1 {
			m = b
		}
		wg.Go(func() { got[i], errs[i] = m.Refresh(ctx, t0.Refresh) })
	}
	wg.Wait()
	graced := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d of %d: %v", i, n, errs[i])
		}
		if got[i].Refresh != got[0].Refresh || got[i].Access != got[0].Access {
			t.Fatalf("refresh %d got another successor than refresh 0", i)
		}
		if got[i].Grace {
			graced++
		}
	}
	if graced != n-1 {
		t.Fatalf("%d answers were grace hits; want %d (one rotation)", graced, n-1)
	}
	// The one session goes on, at either replica.
	next, err := b.Refresh(ctx, got[0].Refresh)
	if err != nil {
		t.Fatalf("the successor does not refresh: %v", err)
	}
	if revoked(t, a, got[0].AccessID) || revoked(t, a, next.AccessID) {
		t.Fatal("the session's access tokens were revoked")
	}
}

// TestAbsoluteTTL: a family ends AbsoluteTTL after login however often it
// is refreshed, and no token outlives it.
func TestAbsoluteTTL(t *testing.T) {
	const abs = time.Hour
	backendsWith(t, Options{AbsoluteTTL: abs, ReuseGrace: testGrace}, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		clk := newClock()
		m := newM(clk)
		born := clk.Now()
		tk, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		for clk.Now().Before(born.Add(abs - 10*time.Minute)) {
			clk.Advance(10 * time.Minute)
			if tk, err = m.Refresh(ctx, tk.Refresh); err != nil {
				t.Fatalf("refresh at %s: %v", clk.Now().Sub(born), err)
			}
			if end := born.Add(abs); tk.AccessExpiry.After(end) || tk.RefreshExpiry.After(end) {
				t.Fatalf("tokens outlive the session: access %s, refresh %s after login",
					tk.AccessExpiry.Sub(born), tk.RefreshExpiry.Sub(born))
			}
		}
		// Within the token codec's leeway the refresh token still parses:
		// the family's lifetime refuses it.
		clk.Advance(born.Add(abs + 5*time.Second).Sub(clk.Now()))
		if _, err := m.Refresh(ctx, tk.Refresh); !errors.Is(err, ErrExpired) {
			t.Fatalf("refresh after absolute_ttl: err = %v; want ErrExpired", err)
		}
		// The family is ended: no token of it refreshes again.
		if _, err := m.Refresh(ctx, tk.Refresh); !errors.Is(err, ErrRevoked) {
			t.Fatalf("second refresh after absolute_ttl: err = %v; want ErrRevoked", err)
		}
	})
}

// BenchmarkRefreshGrace: a refresh token presented again within the grace
// (its successor opened from the family), beside BenchmarkRefresh.
func BenchmarkRefreshGrace(b *testing.B) {
	for _, mode := range []string{"memory", "redis"} {
		b.Run(mode, func(b *testing.B) {
			clk := newClock()
			o := Options{ReuseGrace: testGrace}
			var m *Manager
			if mode == "redis" {
				srv := redistest.Start(b)
				m = newManagerWith(b, newRedisClient(b, srv.URL()), clk, o)
			} else {
				m = newManagerWith(b, nil, clk, o)
			}
			ctx := context.Background()
			t0, err := m.Start(ctx, alice)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Refresh(ctx, t0.Refresh); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if t, err := m.Refresh(ctx, t0.Refresh); err != nil || !t.Grace {
					b.Fatalf("grace refresh: %v", err)
				}
			}
		})
	}
}
