package apikey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// dumpRedis returns every key name and value in the server as text.
func dumpRedis(t *testing.T, c redis.UniversalClient) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	iter := c.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		fmt.Fprintf(&b, "%s => ", k)
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			b.WriteString(c.Get(ctx, k).Val())
		case "set":
			fmt.Fprint(&b, c.SMembers(ctx, k).Val())
		case "hash":
			fmt.Fprint(&b, c.HGetAll(ctx, k).Val())
		default:
			t.Fatalf("unexpected redis type %s for %s", typ, k)
		}
		b.WriteString("\n")
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRedisStoreLayoutAndNoPlaintext(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestRedisStore(t)
	m := NewManager(s, ManagerOptions{})
	var keys []string
	var recs []*Record
	for i := range 3 {
		key, rec, err := m.Create(ctx, CreateParams{Name: fmt.Sprint("svc", i), Scopes: []string{"data:read"}, ExpiresIn: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		keys, recs = append(keys, key), append(recs, rec)
	}
	if err := s.TouchLastUsed(ctx, map[string]time.Time{recs[0].ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	newKey, _, err := m.Rotate(ctx, recs[1].ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	keys = append(keys, newKey)
	if err := m.Revoke(ctx, recs[2].ID); err != nil {
		t.Fatal(err)
	}

	dump := dumpRedis(t, s.c)
	for _, k := range keys {
		if strings.Contains(dump, k) || strings.Contains(dump, k[len(k)-43:]) {
			t.Fatalf("redis holds a plaintext key:\n%s", dump)
		}
	}
	for _, want := range []string{
		"authgw:{apikey:apiKey}:id:" + recs[0].ID + " => {",
		"authgw:{apikey:apiKey}:hash:" + recs[0].Hash + " => " + recs[0].ID,
		"authgw:{apikey:apiKey}:ids => [",
		"authgw:{apikey:apiKey}:last_used => map[" + recs[0].ID + ":",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("redis dump lacks %q:\n%s", want, dump)
		}
	}
}

// TestRedisStoreEvents: create, revoke and expiry changes publish the key's
// hash; last-used updates publish nothing.
func TestRedisStoreEvents(t *testing.T) {
	ctx := context.Background()
	s, srv := newTestRedisStore(t)
	sub := newRedisClient(t, srv.URL()).Subscribe(ctx, s.l.channel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // subscription confirmed
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		msg, err := sub.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return msg.(*redis.Message).Payload
	}
	_, a := newKeyRecord(t, "alpha", time.Now())
	_, b := newKeyRecord(t, "beta", time.Now())
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"create", func() error { return s.Create(ctx, a) }, a.Hash},
		{"create other", func() error { return s.Create(ctx, b) }, b.Hash},
		{"expiry", func() error { return s.SetExpiry(ctx, a.ID, time.Now().Add(time.Hour)) }, a.Hash},
		// The touch comes first: had it published, its message would be the
		// next one instead of the revocation's.
		{"touch then revoke", func() error {
			if err := s.TouchLastUsed(ctx, map[string]time.Time{a.ID: time.Now(), b.ID: time.Now()}); err != nil {
				return err
			}
			return s.Revoke(ctx, b.ID, time.Now())
		}, b.Hash},
		{"revoke again", func() error { return s.Revoke(ctx, b.ID, time.Now()) }, b.Hash},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := next(); got != st.want {
			t.Fatalf("%s: event payload %q; want the hash %q", st.name, got, st.want)
		}
	}
}

func TestRedisStoreDownIsTechnicalError(t *testing.T) {
	ctx := context.Background()
	s, srv := newTestRedisStore(t)
	_, r := newKeyRecord(t, "alpha", time.Now())
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	calls := map[string]func() error{
		"Get":       func() error { _, err := s.Get(ctx, r.ID); return err },
		"GetByHash": func() error { _, err := s.GetByHash(ctx, r.Hash); return err },
		"List":      func() error { _, err := s.List(ctx); return err },
		"Revoke":    func() error { return s.Revoke(ctx, r.ID, time.Now()) },
		"Create":    func() error { return s.Create(ctx, r) },
		"Touch":     func() error { return s.TouchLastUsed(ctx, map[string]time.Time{r.ID: time.Now()}) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
				t.Fatalf("%s with redis down: %v; want a technical error", name, err)
			}
		})
	}
}

// TestRedisStoreTouchManyIDs crosses the 500-ids-per-script batch size.
func TestRedisStoreTouchManyIDs(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestRedisStore(t)
	used := map[string]time.Time{}
	var last *Record
	for range 3 {
		_, r := newKeyRecord(t, "k", time.Now())
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		used[r.ID] = time.Now()
		last = r
	}
	for len(used) < 1200 {
		id, _ := newID()
		used[id] = time.Now() // unknown ids: skipped
	}
	if err := s.TouchLastUsed(ctx, used); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, last.ID)
	if err != nil || got.LastUsedAt.IsZero() {
		t.Fatalf("Get = %+v, %v; want LastUsedAt set", got, err)
	}
	if n := s.c.HLen(ctx, s.l.used).Val(); n != 3 {
		t.Fatalf("last_used holds %d ids; want 3 (unknown ids skipped)", n)
	}
}

// TestRedisStoreListInBatches lists more keys than one pipeline reads: every
// record comes back once, with its last use, and a record gone between the
// index read and its batch is skipped.
func TestRedisStoreListInBatches(t *testing.T) {
	ctx := context.Background()
	s, srv := newTestRedisStore(t)
	n := 2*listBatch + 7
	created := time.Now().Add(-time.Hour).UTC()
	ids := make(map[string]bool, n)
	var last, gone *Record
	for i := range n {
		_, rec := newKeyRecord(t, fmt.Sprint("k", i), created)
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ids[rec.ID] = true
		last = rec
		if i == listBatch+3 {
			gone = rec
		}
	}
	used := time.Now().Truncate(time.Millisecond).UTC()
	if err := s.TouchLastUsed(ctx, map[string]time.Time{last.ID: used}); err != nil {
		t.Fatal(err)
	}
	// The record disappears but its id stays in the index, as when a
	// delete races a list.
	if err := newRedisClient(t, srv.URL()).Del(ctx, s.l.idKey(gone.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n-1 {
		t.Fatalf("listed %d keys; want %d", len(got), n-1)
	}
	for _, r := range got {
		if !ids[r.ID] || r.ID == gone.ID {
			t.Fatalf("listed %s: unknown, twice, or gone", r.ID)
		}
		delete(ids, r.ID)
		if r.ID == last.ID && !r.LastUsedAt.Equal(used) {
			t.Fatalf("last key's last use %v; want %v", r.LastUsedAt, used)
		}
	}
}
