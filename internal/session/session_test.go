package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/testutil/clocktest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
	"github.com/authgateway/authgateway/internal/tokens"
)

const testSecret = "0123456789abcdef0123456789abcdef-session-test"

// clock is a settable time source shared by the issuer and the manager.
type clock = clocktest.Fake

func newClock() *clock { return clocktest.NewFake(time.Now().Truncate(time.Second)) }

func newIssuer(t testing.TB, secret string, now func() time.Time) *tokens.Issuer {
	t.Helper()
	iss, err := tokens.NewIssuer(config.Tokens{
		Issuer: "gw.test", Audience: "app.test",
		AccessTTL: config.Duration(15 * time.Minute), RefreshTTL: config.Duration(24 * time.Hour),
		SigningKeys: []config.SigningKey{{Kid: "k1", Algorithm: "HS256", Secret: secret}},
	})
	if err != nil {
		t.Fatalf("issuer: %v", err)
	}
	iss.Now = now
	return iss
}

func newRedisClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redis url: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// backends runs f against a memory manager and a Redis-backed one.
func backends(t *testing.T, f func(t *testing.T, newManager func(clk *clock) *Manager)) {
	backendsWith(t, Options{}, f)
}

// backendsWith is backends with managers built with o's settings.
func backendsWith(t *testing.T, o Options, f func(t *testing.T, newManager func(clk *clock) *Manager)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func(clk *clock) *Manager { return newManagerWith(t, nil, clk, o) })
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		f(t, func(clk *clock) *Manager { return newManagerWith(t, newRedisClient(t, srv.URL()), clk, o) })
	})
}

func newManager(t testing.TB, rc redis.UniversalClient, clk *clock) *Manager {
	t.Helper()
	return newManagerWith(t, rc, clk, Options{})
}

// newManagerWith is newManager with o's settings besides issuer, Redis and clock.
func newManagerWith(t testing.TB, rc redis.UniversalClient, clk *clock, o Options) *Manager {
	t.Helper()
	var synced func(*Manager)
	if rc != nil {
		synced = syncProbe(t, rc)
	}
	o.Issuer, o.Redis, o.Now = newIssuer(t, testSecret, clk.Now), rc, clk.Now
	m, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(m.Close)
	if synced != nil {
		synced(m)
	}
	return m
}

// syncProbe writes a revocation to the deny set in Redis, never published,
// before a manager starts; the function it answers waits until the manager
// sees it, that is until it has subscribed to revocations and loaded the
// set (it loads after every subscription).
func syncProbe(t testing.TB, rc redis.UniversalClient) func(*Manager) {
	t.Helper()
	ctx := context.Background()
	probe := fmt.Sprintf("sync-probe-%d", time.Now().UnixNano())
	if err := rc.ZAdd(ctx, denyKey, redis.Z{Score: float64(time.Now().Add(time.Hour).Unix()), Member: probe}).Err(); err != nil {
		t.Fatal(err)
	}
	return func(m *Manager) {
		t.Helper()
		poll.True(t, 10*time.Second, "denylist synced from redis", func() bool {
			r, err := m.IsRevoked(ctx, probe)
			return err == nil && r
		})
	}
}

var alice = Identity{Subject: "user-1", Email: "alice@example.com", Roles: []string{"admin"}}

func revoked(t *testing.T, m *Manager, jti string) bool {
	t.Helper()
	r, err := m.IsRevoked(context.Background(), jti)
	if err != nil {
		t.Fatalf("IsRevoked: %v", err)
	}
	return r
}

func TestRotation(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		m := newM(newClock())
		t1, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t2, err := m.Refresh(ctx, t1.Refresh)
		if err != nil {
			t.Fatalf("first refresh: %v", err)
		}
		if t2.Refresh == t1.Refresh || t2.Access == t1.Access || t2.Family != t1.Family {
			t.Fatalf("refresh did not rotate within the family: %+v -> %+v", t1, t2)
		}
		t3, err := m.Refresh(ctx, t2.Refresh)
		if err != nil {
			t.Fatalf("second refresh: %v", err)
		}
		// The access token carries the login's identity and the family.
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(t3.Access, claims); err != nil {
			t.Fatal(err)
		}
		if claims["sub"] != alice.Subject || claims["email"] != alice.Email || claims["sid"] != t1.Family {
			t.Fatalf("access claims = %v; want sub, email and sid of the login", claims)
		}
		for _, tk := range []*Tokens{t1, t2, t3} {
			if revoked(t, m, tk.AccessID) {
				t.Fatalf("access token %s revoked by a plain rotation", tk.AccessID)
			}
		}
	})
}

func TestReuseRevokesFamily(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		m := newM(newClock())
		t1, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		// The thief and the user both hold t1.Refresh; the user refreshes first.
		t2, err := m.Refresh(ctx, t1.Refresh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Refresh(ctx, t1.Refresh); !errors.Is(err, ErrReused) {
			t.Fatalf("reusing a rotated refresh token: err = %v; want ErrReused", err)
		}
		if _, err := m.Refresh(ctx, t2.Refresh); !errors.Is(err, ErrRevoked) {
			t.Fatalf("current refresh token after reuse: err = %v; want ErrRevoked", err)
		}
		for _, tk := range []*Tokens{t1, t2} {
			if !revoked(t, m, tk.AccessID) {
				t.Fatalf("access token %s of the reused family is not revoked", tk.AccessID)
			}
		}
		// Another session of the same user is not affected.
		other, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Refresh(ctx, other.Refresh); err != nil {
			t.Fatalf("unrelated family: %v", err)
		}
	})
}

func TestRefreshRefusesBadTokens(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		clk := newClock()
		m := newM(clk)
		good, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		foreign := newIssuer(t, "another-secret-another-secret-another-secret", clk.Now)
		sign := func(iss *tokens.Issuer, claims jwt.MapClaims, typ string) string {
			base := jwt.MapClaims{"iss": "gw.test", "aud": "app.test", "sub": alice.Subject,
				"iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix(), "jti": "j1", "fam": good.Family, "type": "refresh"}
			for k, v := range claims {
				if v == nil {
					delete(base, k)
				} else {
					base[k] = v
				}
			}
			s, err := iss.Keys.Sign(base, typ)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		parts := strings.Split(good.Refresh, ".")
		tests := []struct {
			name, token string
		}{
			{"empty", ""},
			{"garbage", "not-a-token"},
			{"access token as refresh", good.Access},
			{"tampered payload", parts[0] + "." + parts[1] + "x." + parts[2]},
			{"foreign key", sign(foreign, nil, "refresh+jwt")},
			{"access typ header", sign(m.iss, nil, "at+jwt")},
			{"type claim access", sign(m.iss, jwt.MapClaims{"type": "access"}, "refresh+jwt")},
			{"no fam", sign(m.iss, jwt.MapClaims{"fam": nil}, "refresh+jwt")},
			{"fam with a space", sign(m.iss, jwt.MapClaims{"fam": "a b"}, "refresh+jwt")},
			{"wrong issuer", sign(m.iss, jwt.MapClaims{"iss": "evil"}, "refresh+jwt")},
			{"wrong audience", sign(m.iss, jwt.MapClaims{"aud": "evil"}, "refresh+jwt")},
			{"expired", sign(m.iss, jwt.MapClaims{"exp": clk.Now().Add(-time.Hour).Unix()}, "refresh+jwt")},
			{"no exp", sign(m.iss, jwt.MapClaims{"exp": nil}, "refresh+jwt")},
			{"alg none", jwtNone(good.Family)},
			{"oversize", strings.Repeat("a", 9000) + ".b.c"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := m.Refresh(ctx, tc.token); !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("err = %v; want ErrInvalidToken", err)
				}
			})
		}
		t.Run("other subject in a real family", func(t *testing.T) {
			tok := sign(m.iss, jwt.MapClaims{"sub": "mallory"}, "refresh+jwt")
			if _, err := m.Refresh(ctx, tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v; want ErrInvalidToken", err)
			}
		})
		t.Run("unknown family", func(t *testing.T) {
			tok := sign(m.iss, jwt.MapClaims{"fam": "nosuchfamily"}, "refresh+jwt")
			if _, err := m.Refresh(ctx, tok); !errors.Is(err, ErrRevoked) {
				t.Fatalf("err = %v; want ErrRevoked", err)
			}
		})
		// None of the attempts above disturbed the real session.
		if _, err := m.Refresh(ctx, good.Refresh); err != nil {
			t.Fatalf("good token after the attacks: %v", err)
		}
	})
}

func jwtNone(fam string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "gw.test", "aud": "app.test",
		"sub": alice.Subject, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		"jti": "j1", "fam": fam, "type": "refresh"})
	tok.Header["typ"] = "refresh+jwt"
	s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	return s
}

func TestSessionExpires(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		clk := newClock()
		m := newM(clk)
		tk, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(24*time.Hour + time.Minute)
		if _, err := m.Refresh(ctx, tk.Refresh); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("refresh after refresh_ttl: err = %v; want ErrInvalidToken", err)
		}
	})
}

func TestLogout(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		m := newM(newClock())
		t1, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		t2, err := m.Refresh(ctx, t1.Refresh)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name            string
			access, refresh string
		}{
			{"both cookies", t2.Access, t2.Refresh},
			{"access token only", t2.Access, ""},
			{"refresh token only", "", t2.Refresh},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s, err := m.Start(ctx, alice)
				if err != nil {
					t.Fatal(err)
				}
				access, refresh := s.Access, s.Refresh
				if tc.access == "" {
					access = ""
				}
				if tc.refresh == "" {
					refresh = ""
				}
				if err := m.Logout(ctx, access, refresh); err != nil {
					t.Fatalf("Logout: %v", err)
				}
				if !revoked(t, m, s.AccessID) {
					t.Fatalf("access token still valid after logout")
				}
				if _, err := m.Refresh(ctx, s.Refresh); !errors.Is(err, ErrRevoked) {
					t.Fatalf("refresh after logout: err = %v; want ErrRevoked", err)
				}
			})
		}
		t.Run("garbage is ignored", func(t *testing.T) {
			if err := m.Logout(ctx, "x.y.z", "garbage"); err != nil {
				t.Fatalf("Logout(garbage) = %v; want nil", err)
			}
		})
		if revoked(t, m, t2.AccessID) {
			t.Fatalf("logging out other sessions revoked this one")
		}
	})
}

func TestConsumeOnce(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		m := newM(newClock())
		for i, want := range []bool{true, false, false} {
			got, err := m.ConsumeOnce(ctx, "state:abc", time.Minute)
			if err != nil || got != want {
				t.Fatalf("use %d: got %v, %v; want %v", i+1, got, err, want)
			}
		}
		if got, _ := m.ConsumeOnce(ctx, "state:def", time.Minute); !got {
			t.Fatalf("another key was already consumed")
		}
	})
}

func TestNewRefusesIncompleteIssuer(t *testing.T) {
	clk := newClock()
	good := newIssuer(t, testSecret, clk.Now)
	noTTL := *good
	noTTL.RefreshTTL = 0
	noAud := *good
	noAud.Audience = ""
	tests := []struct {
		name string
		iss  *tokens.Issuer
	}{{"nil", nil}, {"no refresh ttl", &noTTL}, {"no audience", &noAud}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Options{Issuer: tc.iss}); err == nil {
				t.Fatalf("New accepted an incomplete issuer")
			}
		})
	}
}

func TestRefreshLoopIsBounded(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		clk := newClock()
		m := newM(clk)
		tk, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		// Start minted one access token; each refresh adds one while the
		// clock stands still.
		for i := 1; i < MaxLiveAccess; i++ {
			if tk, err = m.Refresh(ctx, tk.Refresh); err != nil {
				t.Fatalf("refresh %d: %v", i, err)
			}
		}
		if _, err := m.Refresh(ctx, tk.Refresh); !errors.Is(err, ErrTooFrequent) {
			t.Fatalf("refresh beyond %d live access tokens: err = %v; want ErrTooFrequent", MaxLiveAccess, err)
		}
		// The refused refresh rotated nothing: once old access tokens
		// expire, the same refresh token works.
		clk.Advance(16 * time.Minute)
		if _, err := m.Refresh(ctx, tk.Refresh); err != nil {
			t.Fatalf("refresh after the access tokens expired: %v", err)
		}
	})
}

// TestUpdaterOtherSubjectEnds: an Updater that answers for another subject
// ends the family, like a refusal: the refusal is not for one request only
// (the re-read marker is consumed, so the token presented again was rotated
// with the old identity), and the live access token is denied.
func TestUpdaterOtherSubjectEnds(t *testing.T) {
	backends(t, func(t *testing.T, newM func(*clock) *Manager) {
		ctx := context.Background()
		m := newM(newClock()).WithUpdater(func(_ context.Context, id Identity) (Identity, error) {
			id.Subject = "someone-else"
			return id, nil
		})
		t1, err := m.Start(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Refresh(ctx, t1.Refresh); !errors.Is(err, ErrProviderRefused) {
			t.Fatalf("refresh answered for another subject: %v, want ErrProviderRefused", err)
		}
		if t2, err := m.Refresh(ctx, t1.Refresh); err == nil {
			t.Fatalf("the same token again: rotated (%s), want the session ended", t2.AccessID)
		}
		if !revoked(t, m, t1.AccessID) {
			t.Errorf("the session's access token is not denied")
		}
	})
}
