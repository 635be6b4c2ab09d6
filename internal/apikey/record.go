package apikey

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/authgateway/authgateway/internal/pack"
)

// Record is what a store keeps about one key. It never holds the key itself,
// only its Hash. Zero times mean "not set".
type Record struct {
	ID     string   `yaml:"id" json:"id"`
	Name   string   `yaml:"name" json:"name"`
	Prefix string   `yaml:"prefix" json:"prefix"`
	Hash   string   `yaml:"hash" json:"hash"`
	Roles  []string `yaml:"roles,omitempty" json:"roles,omitempty"`
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`

	CreatedAt  time.Time `yaml:"created_at" json:"created_at"`
	ExpiresAt  time.Time `yaml:"expires_at,omitempty" json:"expires_at,omitzero"`
	LastUsedAt time.Time `yaml:"last_used_at,omitempty" json:"last_used_at,omitzero"`
	RevokedAt  time.Time `yaml:"revoked_at,omitempty" json:"revoked_at,omitzero"`

	// claims holds Claims' answer for a record the Verifier caches: built
	// on first use (most routes never read a key's claims, and 10,000
	// cached maps of boxed strings would be most of what the garbage
	// collector marks) and shared, read-only, by the record's clones.
	claims *lazyClaims
}

type lazyClaims struct {
	once sync.Once
	m    map[string]any
}

// Claims are the key's metadata as the claims of its identity
// (request_headers templates, allow_if): id, name, prefix, roles and
// scopes. Read-only: clones of a cached record share it.
func (r *Record) Claims() map[string]any {
	if r.claims == nil {
		return r.buildClaims()
	}
	r.claims.once.Do(func() { r.claims.m = r.buildClaims() })
	return r.claims.m
}

// cacheable is the copy of r a cache keeps: its strings in one block and
// its lists in one array (package pack), its claims built on first use.
func (r *Record) cacheable() *Record {
	c := *r
	pack.Into([]*string{&c.ID, &c.Name, &c.Prefix, &c.Hash}, &c.Roles, &c.Scopes)
	c.claims = &lazyClaims{}
	return &c
}

func (r *Record) buildClaims() map[string]any {
	list := func(ss []string) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	return map[string]any{"id": r.ID, "name": r.Name, "prefix": r.Prefix, "roles": list(r.Roles), "scopes": list(r.Scopes)}
}

// Revoked reports whether the key has been revoked.
func (r *Record) Revoked() bool { return !r.RevokedAt.IsZero() }

// Expired reports whether the key has expired at now.
func (r *Record) Expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// Clone returns a deep copy, so a caller can never modify a cached record.
func (r *Record) Clone() *Record {
	c := *r
	c.Roles = slices.Clone(r.Roles)
	c.Scopes = slices.Clone(r.Scopes)
	return &c
}

// Validate checks a record before it is stored or after it is loaded.
//
// Names, roles and scopes end up in identity headers (X-Auth-Subject,
// comma-joined X-Auth-Roles, space-joined X-Auth-Scopes), so control
// characters are refused everywhere, ',' in roles and scopes and ' ' in
// scopes: a role "admin,ops" would otherwise read as two roles upstream.
func (r *Record) Validate() error {
	var errs []error
	if !validID(r.ID) {
		errs = append(errs, fmt.Errorf("id %q: want 1 to %d characters of [A-Za-z0-9_-]", r.ID, maxIDLen))
	}
	if r.Name == "" || len(r.Name) > 200 || strings.ContainsFunc(r.Name, isControl) {
		errs = append(errs, fmt.Errorf("name %q: want 1 to 200 printable characters", r.Name))
	}
	if err := ValidatePrefix(r.Prefix); err != nil {
		errs = append(errs, err)
	}
	if !validHash(r.Hash) {
		errs = append(errs, errors.New("hash: want 64 lowercase hex characters"))
	}
	for _, role := range r.Roles {
		if !validWord(role) {
			errs = append(errs, fmt.Errorf("role %q: want printable characters without ',' or spaces", role))
		}
	}
	for _, scope := range r.Scopes {
		if !validWord(scope) {
			errs = append(errs, fmt.Errorf("scope %q: want printable characters without ',' or spaces", scope))
		}
	}
	if r.CreatedAt.IsZero() {
		errs = append(errs, errors.New("created_at is missing"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("api key record %q: %w", r.ID, err)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// validWord accepts 1 to 200 visible ASCII characters other than ','.
func validWord(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == ',' {
			return false
		}
	}
	return true
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !(h[i] >= '0' && h[i] <= '9' || h[i] >= 'a' && h[i] <= 'f') {
			return false
		}
	}
	return true
}

const (
	idPrefix = "key_"
	idChars  = 12
	maxIDLen = 64
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns "key_" and 12 lowercase base32 characters (60 random bits):
// short enough to type in `keys revoke ID`, and not derived from the key.
func newID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return idPrefix + strings.ToLower(idEncoding.EncodeToString(b[:]))[:idChars], nil
}

// validID accepts what newID makes and what a person writing the file by
// hand might choose, but nothing that could confuse a Redis key name or a
// command line: 1 to 64 characters of [A-Za-z0-9_-].
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
