package apikey

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkTouchLastUsed1000 is the once-a-minute last-used write of the
// file store with 1,000 keys: the gateway runs it in the background, but on
// a one-core machine its CPU time is taken from requests.
func BenchmarkTouchLastUsed1000(b *testing.B) {
	s, err := NewFileStore(filepath.Join(b.TempDir(), "api-keys.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	var ids []string
	var recs []*Record
	for i := range 1000 {
		key, err := Generate("pk_live")
		if err != nil {
			b.Fatal(err)
		}
		id, _ := newID()
		recs = append(recs, &Record{ID: id, Name: fmt.Sprintf("k-%d", i), Prefix: "pk_live", Hash: Hash(key),
			Roles: []string{"service"}, Scopes: []string{"items:read"}, CreatedAt: now})
		ids = append(ids, id)
	}
	if err := s.update(ctx, func([]*Record) ([]*Record, error) { return recs, nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		used := map[string]time.Time{}
		for _, id := range ids {
			used[id] = now.Add(time.Duration(i+1) * time.Second)
		}
		if err := s.TouchLastUsed(ctx, used); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseFile1000(b *testing.B) {
	s, err := NewFileStore(filepath.Join(b.TempDir(), "api-keys.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	var recs []*Record
	for i := range 1000 {
		key, _ := Generate("pk_live")
		id, _ := newID()
		recs = append(recs, &Record{ID: id, Name: fmt.Sprintf("k-%d", i), Prefix: "pk_live", Hash: Hash(key),
			Roles: []string{"service"}, Scopes: []string{"items:read"}, CreatedAt: now, LastUsedAt: now})
	}
	if err := s.update(context.Background(), func([]*Record) ([]*Record, error) { return recs, nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.reload(); err != nil {
			b.Fatal(err)
		}
	}
}
