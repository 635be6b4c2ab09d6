package apikey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultPrefix is the prefix of keys created without one.
const DefaultPrefix = "pk_live"

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Prefixes, when set, are the strategy's prefixes: the only ones Create
	// and Rotate accept (the gateway would refuse a key with any other), and
	// the keys List, Revoke and Rotate see. Strategies may share a key file
	// when their prefixes differ (config validation refuses a shared prefix):
	// a key's prefix then says which strategy it belongs to.
	Prefixes []string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Manager creates, lists, revokes and rotates keys (the `keys` commands).
type Manager struct {
	store Store
	opts  ManagerOptions
}

// NewManager returns a Manager on store.
func NewManager(store Store, opts ManagerOptions) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{store: store, opts: opts}
}

// CreateParams describe a new key.
type CreateParams struct {
	Name   string   // required; becomes X-Auth-Subject
	Prefix string   // default DefaultPrefix
	Roles  []string // no ',' or spaces
	Scopes []string // no ',' or spaces
	// ExpiresIn is the key's lifetime; 0 means it never expires.
	ExpiresIn time.Duration
}

func (m *Manager) now() time.Time { return m.opts.Now().Round(0).UTC() }

// Create makes a new key and returns its plaintext, which exists nowhere
// else: show it once, never log it.
func (m *Manager) Create(ctx context.Context, p CreateParams) (string, *Record, error) {
	return m.create(ctx, p, m.now())
}

func (m *Manager) create(ctx context.Context, p CreateParams, now time.Time) (string, *Record, error) {
	if p.Prefix == "" {
		p.Prefix = DefaultPrefix
	}
	if err := ValidatePrefix(p.Prefix); err != nil {
		return "", nil, err
	}
	if len(m.opts.Prefixes) > 0 && !slices.Contains(m.opts.Prefixes, p.Prefix) {
		return "", nil, fmt.Errorf("api key prefix %q is not configured (configured: %s)",
			p.Prefix, strings.Join(m.opts.Prefixes, ", "))
	}
	if p.ExpiresIn < 0 {
		return "", nil, errors.New("api key expiry must not be negative")
	}
	key, err := Generate(p.Prefix)
	if err != nil {
		return "", nil, err
	}
	id, err := newID()
	if err != nil {
		return "", nil, err
	}
	rec := &Record{
		ID:        id,
		Name:      p.Name,
		Prefix:    p.Prefix,
		Hash:      Hash(key),
		Roles:     slices.Clone(p.Roles),
		Scopes:    slices.Clone(p.Scopes),
		CreatedAt: now,
	}
	if p.ExpiresIn > 0 {
		rec.ExpiresAt = now.Add(p.ExpiresIn)
	}
	if err := rec.Validate(); err != nil {
		return "", nil, err
	}
	if err := m.store.Create(ctx, rec); err != nil {
		return "", nil, fmt.Errorf("storing api key: %w", err)
	}
	return key, rec, nil
}

// owns reports whether rec is one of the strategy's keys (see Prefixes).
func (m *Manager) owns(rec *Record) bool {
	return len(m.opts.Prefixes) == 0 || slices.Contains(m.opts.Prefixes, rec.Prefix)
}

// get returns the record of one of the strategy's keys, or ErrNotFound.
func (m *Manager) get(ctx context.Context, id string) (*Record, error) {
	rec, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !m.owns(rec) {
		return nil, ErrNotFound
	}
	return rec, nil
}

// List returns the records of the strategy's keys, oldest first.
func (m *Manager) List(ctx context.Context) ([]*Record, error) {
	recs, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(recs, func(r *Record) bool { return !m.owns(r) }), nil
}

// Revoke revokes the key with the given id (ErrNotFound if the strategy
// has none). Revoking twice keeps the first revocation time.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	if _, err := m.get(ctx, id); err != nil {
		return fmt.Errorf("revoking %s: %w", id, err)
	}
	if err := m.store.Revoke(ctx, id, m.now()); err != nil {
		return fmt.Errorf("revoking %s: %w", id, err)
	}
	return nil
}

// Rotate replaces a key: it creates a new key with the same name, prefix,
// roles, scopes and lifetime (the old key's ExpiresAt − CreatedAt, if it
// expires), and makes the old key expire after grace — or keeps its expiry
// if that comes sooner. grace 0 ends the old key at once. A revoked or
// expired key cannot be rotated (ErrRevoked, ErrExpired).
func (m *Manager) Rotate(ctx context.Context, id string, grace time.Duration) (string, *Record, error) {
	if grace < 0 {
		return "", nil, errors.New("rotation grace must not be negative")
	}
	old, err := m.get(ctx, id)
	if err != nil {
		return "", nil, fmt.Errorf("rotating %s: %w", id, err)
	}
	now := m.now()
	switch {
	case old.Revoked():
		return "", nil, fmt.Errorf("rotating %s: %w", id, ErrRevoked)
	case old.Expired(now):
		return "", nil, fmt.Errorf("rotating %s: %w", id, ErrExpired)
	}
	p := CreateParams{Name: old.Name, Prefix: old.Prefix, Roles: old.Roles, Scopes: old.Scopes}
	if !old.ExpiresAt.IsZero() {
		p.ExpiresIn = max(old.ExpiresAt.Sub(old.CreatedAt), time.Second)
	}
	key, rec, err := m.create(ctx, p, now)
	if err != nil {
		return "", nil, fmt.Errorf("rotating %s: %w", id, err)
	}
	end := now.Add(grace)
	if old.ExpiresAt.IsZero() || end.Before(old.ExpiresAt) {
		if err := m.store.SetExpiry(ctx, id, end); err != nil {
			// Without the old key's end date the rotation did not happen; the
			// new key's plaintext is about to be lost, so retire it.
			_ = m.store.Revoke(context.WithoutCancel(ctx), rec.ID, now)
			return "", nil, fmt.Errorf("rotating %s: setting the old key's expiry: %w", id, err)
		}
	}
	return key, rec, nil
}
