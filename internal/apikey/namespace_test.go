package apikey

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRedisStrategiesDoNotShareKeys: two api_key strategies on one Redis,
// with the same prefix. A key made for one is unknown to the other's
// store, Verifier and Manager, and its invalidations stay on its own
// strategy's channel.
func TestRedisStrategiesDoNotShareKeys(t *testing.T) {
	ctx := context.Background()
	_, srv := newTestRedisStore(t)
	partner := NewRedisStore(newRedisClient(t, srv.URL()), "partnerKeys", nil)
	internal := NewRedisStore(newRedisClient(t, srv.URL()), "internalKeys", nil)
	opts := ManagerOptions{Prefixes: []string{"pk_live"}}
	key, rec, err := NewManager(partner, opts).Create(ctx, CreateParams{Name: "partner-bot"})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := internal.GetByHash(ctx, rec.Hash); !errors.Is(err, ErrNotFound) {
		t.Errorf("internalKeys GetByHash(partner key) = %v; want ErrNotFound", err)
	}
	if _, err := internal.Get(ctx, rec.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("internalKeys Get(partner id) = %v; want ErrNotFound", err)
	}
	v, err := NewVerifier(internal, VerifierOptions{Prefixes: []string{"pk_live"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, key); !errors.Is(err, ErrUnknown) {
		t.Errorf("internalKeys Verify(partner key) = %v; want ErrUnknown", err)
	}
	m := NewManager(internal, opts)
	if list, err := m.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("internalKeys List = %v, %v; want nothing", names(list), err)
	}
	if err := m.Revoke(ctx, rec.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("internalKeys Revoke(partner id) = %v; want ErrNotFound", err)
	}
	if _, _, err := m.Rotate(ctx, rec.ID, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("internalKeys Rotate(partner id) = %v; want ErrNotFound", err)
	}
	if err := internal.TouchLastUsed(ctx, map[string]time.Time{rec.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, err := partner.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revoked() || !got.ExpiresAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Errorf("partner key after internalKeys' attempts = %+v; want untouched", got)
	}

	// Every Redis key of the partner key is in partnerKeys' namespace.
	dump := dumpRedis(t, partner.c)
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		if !strings.HasPrefix(line, "authgw:{apikey:partnerKeys}:") {
			t.Errorf("redis key outside partnerKeys' namespace: %s", line)
		}
	}
	if partner.l.channel == internal.l.channel {
		t.Errorf("both strategies publish on %s", partner.l.channel)
	}
}

// TestEscapeName: strategy names become namespaces one-to-one, and no name
// can end the hash tag or pose as another namespace.
func TestEscapeName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"apiKey", "apiKey"},
		{"partner-keys_v2.1", "partner-keys_v2.1"},
		{"a}:b", "a%7D%3Ab"},
		{"a%7D%3Ab", "a%257D%253Ab"},
		{"{x}", "%7Bx%7D"},
		{"é", "%C3%A9"},
		{"", ""},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		got := escapeName(tc.name)
		if got != tc.want {
			t.Errorf("escapeName(%q) = %q; want %q", tc.name, got, tc.want)
		}
		if strings.ContainsAny(got, "{}: ") {
			t.Errorf("escapeName(%q) = %q holds a character that shapes a Redis key", tc.name, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%q and %q share the namespace %q", tc.name, other, got)
		}
		seen[got] = tc.name
		if p := strategyLayout(tc.name).prefix; p == legacyLayout().prefix {
			t.Errorf("strategy %q has the shared layout's prefix", tc.name)
		}
	}
}
