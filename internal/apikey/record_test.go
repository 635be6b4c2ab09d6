package apikey

import (
	"strings"
	"testing"
	"time"
)

func TestRecordValidate(t *testing.T) {
	base := func() *Record {
		return &Record{ID: "key_abcdefghijkl", Name: "ci deploy", Prefix: "pk_live", Hash: Hash("x"),
			Roles: []string{"admin"}, Scopes: []string{"data:read", "urn:x/y"}, CreatedAt: time.Now()}
	}
	tests := []struct {
		name  string
		mod   func(r *Record)
		valid bool
	}{
		{"valid", func(*Record) {}, true},
		{"hand-written id", func(r *Record) { r.ID = "ci-deploy_2" }, true},
		{"no roles or scopes", func(r *Record) { r.Roles, r.Scopes = nil, nil }, true},
		{"empty id", func(r *Record) { r.ID = "" }, false},
		{"id with colon", func(r *Record) { r.ID = "key:1" }, false},
		{"id with brace", func(r *Record) { r.ID = "{apikey}" }, false},
		{"id too long", func(r *Record) { r.ID = strings.Repeat("a", 65) }, false},
		{"empty name", func(r *Record) { r.Name = "" }, false},
		{"name with CR", func(r *Record) { r.Name = "a\rb" }, false},
		{"name with DEL", func(r *Record) { r.Name = "a\x7f" }, false},
		{"name with C1 control", func(r *Record) { r.Name = "a\u0085" }, false},
		{"bad prefix", func(r *Record) { r.Prefix = "pk live" }, false},
		{"uppercase hash", func(r *Record) { r.Hash = strings.ToUpper(r.Hash) }, false},
		{"short hash", func(r *Record) { r.Hash = r.Hash[:63] }, false},
		{"role with comma", func(r *Record) { r.Roles = []string{"a,b"} }, false},
		{"scope with space", func(r *Record) { r.Scopes = []string{"a b"} }, false},
		{"scope with tab", func(r *Record) { r.Scopes = []string{"a\tb"} }, false},
		{"no created_at", func(r *Record) { r.CreatedAt = time.Time{} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.mod(r)
			err := r.Validate()
			if (err == nil) != tt.valid {
				t.Fatalf("Validate = %v; want valid=%v", err, tt.valid)
			}
		})
	}
}

func TestRecordExpired(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &Record{ExpiresAt: at}
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{{at.Add(-time.Nanosecond), false}, {at, true}, {at.Add(time.Hour), true}} {
		if got := r.Expired(tc.now); got != tc.want {
			t.Errorf("Expired(%v) = %v; want %v", tc.now, got, tc.want)
		}
	}
	if (&Record{}).Expired(at) {
		t.Error("a record without expiry expired")
	}
}
