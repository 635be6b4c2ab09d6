package apikey

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestFileEncoderMatchesYAML: the caching encoder writes the file byte for
// byte as yaml.v3 does, through rounds of last-used writes, edits, new,
// revoked and removed keys, with names that need quoting or could inject
// YAML if written carelessly.
func TestFileEncoderMatchesYAML(t *testing.T) {
	names := []string{"k", "ci: deploy", "# not a comment", "two\nlines\n  - id: injected", `"quoted"`, "null", "yes",
		" leading space", "trailing ", "ünïcödé ✓", "{flow: map}", "- dash", "'single'", "a\tb", "~", "0x1F", ""}
	zone := time.FixedZone("X", 5*3600+1800)
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	var recs []*Record
	for i := range 40 {
		r := &Record{ID: fmt.Sprintf("key_%03d", i), Name: names[i%len(names)], Prefix: "pk_live",
			Hash: fmt.Sprintf("%064x", i), CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		if i%3 != 0 {
			r.Roles = []string{"service", names[(i+1)%len(names)]}
		}
		if i%4 == 0 {
			r.Scopes = []string{"items:read"}
		}
		if i%5 == 0 {
			r.ExpiresAt = base.Add(90 * 24 * time.Hour).In(zone)
		}
		recs = append(recs, r)
	}
	var e fileEncoder
	for round := range 12 {
		for _, r := range recs {
			if rng.IntN(2) == 0 {
				r.LastUsedAt = base.Add(time.Duration(round*60+rng.IntN(60)) * time.Second)
			}
		}
		switch round {
		case 3:
			recs[7].RevokedAt = base.Add(time.Hour)
		case 5:
			recs[2].Name = "renamed: now"
		case 7:
			recs = append(recs[:10], recs[11:]...)
		case 9:
			recs = append(recs, &Record{ID: "key_new", Name: "new\nline", Prefix: "pk_live", Hash: fmt.Sprintf("%064x", 999), CreatedAt: base})
		case 10:
			recs[0].LastUsedAt = recs[0].LastUsedAt.In(zone)
		}
		got, err := e.encode(recs)
		if err != nil {
			t.Fatal(err)
		}
		want, err := encodeDoc(fileHeader, fileDoc{Keys: recs})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: output differs from yaml.v3:\n--- got\n%s\n--- want\n%s", round, got, want)
		}
		var back fileDoc
		if err := yaml.Unmarshal(got, &back); err != nil {
			t.Fatalf("round %d: output does not parse: %v", round, err)
		}
		if len(back.Keys) != len(recs) {
			t.Fatalf("round %d: %d records back, want %d (injected?)", round, len(back.Keys), len(recs))
		}
		for i, r := range back.Keys {
			if r.Name != recs[i].Name || !r.LastUsedAt.Equal(recs[i].LastUsedAt) {
				t.Fatalf("round %d: record %d back as %q %v, want %q %v", round, i, r.Name, r.LastUsedAt, recs[i].Name, recs[i].LastUsedAt)
			}
		}
	}
	if len(e.items) != len(recs) {
		t.Errorf("encoder remembers %d items for %d records", len(e.items), len(recs))
	}
	if got, _ := e.encode(nil); !bytes.HasSuffix(got, []byte("keys: []\n")) {
		t.Errorf("empty file: %q", got)
	}
}

// TestHandEditAfterWriteIsSeen: after a write the store keeps the records it
// wrote instead of parsing the file again; an in-place hand edit right after
// (same inode, same size) must still be read, or a hand revocation could be
// missed.
func TestHandEditAfterWriteIsSeen(t *testing.T) {
	s := newTestFileStore(t)
	ctx := t.Context()
	_, rec := newKeyRecord(t, "alpha", time.Now())
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchLastUsed(ctx, map[string]time.Time{rec.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte("name: alpha"), []byte("name: omega"), 1)
	if bytes.Equal(edited, data) {
		t.Fatalf("file has no name: alpha:\n%s", data)
	}
	if err := os.WriteFile(s.Path(), edited, 0o600); err != nil { // in place: same inode, same size
		t.Fatal(err)
	}
	got, err := s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "omega" {
		t.Fatalf("name = %q after a hand edit, want omega", got.Name)
	}
}
