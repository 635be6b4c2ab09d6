package apikey

import (
	"context"
	"time"
)

// Store holds key records. It is defined here because both the Verifier (on
// the request path) and the Manager (behind the CLI) use it.
//
// Every method returns ErrNotFound when the id or hash is unknown, ErrExists
// from Create for a duplicate id or hash, and any other error for a technical
// failure. Records returned are the caller's to keep and modify.
type Store interface {
	// Create stores a new record (validated first).
	Create(ctx context.Context, rec *Record) error
	// Get returns the record with the given id.
	Get(ctx context.Context, id string) (*Record, error)
	// GetByHash returns the record whose Hash is hash.
	GetByHash(ctx context.Context, hash string) (*Record, error)
	// List returns every record, oldest first.
	List(ctx context.Context) ([]*Record, error)
	// Revoke marks the key revoked at at. Revoking a revoked key keeps the
	// first revocation time and is not an error.
	Revoke(ctx context.Context, id string, at time.Time) error
	// SetExpiry sets the key's ExpiresAt (rotation's grace period).
	SetExpiry(ctx context.Context, id string, at time.Time) error
	// TouchLastUsed records when keys were last used, id → time. It only
	// moves LastUsedAt forward and skips ids it does not know.
	TouchLastUsed(ctx context.Context, used map[string]time.Time) error
}

// Notifier is implemented by stores that can tell a Verifier about changes
// made by other processes (another replica, the CLI), so that a revocation
// takes effect at once rather than when a cache entry ages out.
type Notifier interface {
	// Watch blocks until ctx is done or watching is impossible. It calls
	// evict(hash) for each key whose record changed, and flushAll whenever
	// changes may have been missed: when watching starts and after any
	// interruption (a dropped subscription, an unreadable file).
	Watch(ctx context.Context, evict func(hash string), flushAll func()) error
}
