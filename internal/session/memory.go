package session

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/authgateway/authgateway/internal/pack"
)

// memoryBackend keeps families and consumed markers in this process.
type memoryBackend struct {
	now func() time.Time

	mu       sync.Mutex
	fams     map[string]*memFamily
	consumed map[string]time.Time // key -> until
	writes   int
}

type memFamily struct {
	family
	until time.Time
	// prev was rotated away at rotatedAt into the sealed successor.
	prev      string
	rotatedAt time.Time
	successor []byte
}

func newMemoryBackend(now func() time.Time) *memoryBackend {
	return &memoryBackend{now: now, fams: map[string]*memFamily{}, consumed: map[string]time.Time{}}
}

func (b *memoryBackend) createFamily(_ context.Context, f *family, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pruneLocked()
	mf := &memFamily{family: *f, until: b.now().Add(ttl)}
	mf.Access = slices.Clone(f.Access)
	mf.Identity.pack(&mf.ID)
	mf.packRotation()
	b.fams[mf.ID] = mf
	return nil
}

// packRotation copies what each rotation changes (the current and previous
// refresh token ids, the live access token ids) into one block, so a
// family holds a few heap objects however often it rotated (package pack).
func (f *memFamily) packRotation() {
	strs := make([]*string, 0, 2+len(f.Access))
	strs = append(strs, &f.Current, &f.prev)
	for i := range f.Access {
		strs = append(strs, &f.Access[i].ID)
	}
	pack.Into(strs)
}

// lookupLocked returns a live family, forgetting it when expired.
func (b *memoryBackend) lookupLocked(id string) *memFamily {
	f := b.fams[id]
	if f == nil {
		return nil
	}
	if !b.now().Before(f.until) {
		delete(b.fams, id)
		return nil
	}
	return f
}

func (b *memoryBackend) getFamily(_ context.Context, id string, _ bool) (*family, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.lookupLocked(id)
	if f == nil || f.Revoked {
		return nil, ErrRevoked
	}
	cp := f.family
	cp.Access = slices.Clone(f.Access)
	return &cp, nil
}

func (b *memoryBackend) rotate(_ context.Context, fam *family, rot rotation) (rotated, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.lookupLocked(fam.ID)
	now := b.now()
	switch {
	case f == nil || f.Revoked:
		return rotated{}, ErrRevoked
	case f.Current != rot.presented:
		if rot.grace > 0 && f.prev == rot.presented && !now.After(f.rotatedAt.Add(rot.grace)) {
			return rotated{successor: f.successor, grace: true}, nil
		}
		f.Revoked = true
		return rotated{live: liveRefs(f.Access, now)}, ErrReused
	}
	live := liveRefs(f.Access, now)
	if len(live) >= MaxLiveAccess {
		return rotated{}, ErrTooFrequent
	}
	f.prev, f.rotatedAt, f.successor = rot.presented, now, rot.successor
	f.Current = rot.next
	f.Access = append(live, rot.at)
	f.until = now.Add(rot.ttl)
	f.packRotation()
	return rotated{}, nil
}

func (b *memoryBackend) revoke(_ context.Context, id string) ([]AccessRef, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.lookupLocked(id)
	if f == nil {
		return nil, nil
	}
	f.Revoked = true
	return liveRefs(f.Access, b.now()), nil
}

func (b *memoryBackend) setIdentity(_ context.Context, id string, ident Identity) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.lookupLocked(id); f != nil && !f.Revoked {
		f.Identity = ident
		f.Identity.pack()
	}
	return nil
}

// families scans every family: one process holds few.
func (b *memoryBackend) families(_ context.Context, ix index) ([]Info, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var out []Info
	for id, f := range b.fams {
		if !now.Before(f.until) {
			continue
		}
		key := f.Identity.Subject
		if ix.provider {
			key = f.Identity.ProviderSession
		}
		if key != ix.value {
			continue
		}
		out = append(out, Info{Family: id, Subject: f.Identity.Subject, Born: f.Born, Refreshed: f.rotatedAt, Ends: f.until, Revoked: f.Revoked})
	}
	return out, nil
}

// deny has nothing to share: the Manager's local map is the denylist.
func (b *memoryBackend) deny(context.Context, []AccessRef) error { return nil }

func (b *memoryBackend) consumeOnce(_ context.Context, key string, ttl time.Duration) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pruneLocked()
	now := b.now()
	if until, ok := b.consumed[key]; ok && now.Before(until) {
		return false, nil
	}
	b.consumed[key] = now.Add(ttl)
	return true, nil
}

// pruneLocked drops expired families and markers every 256 writes, so that
// memory stays bounded by what is live.
func (b *memoryBackend) pruneLocked() {
	b.writes++
	if b.writes%256 != 0 {
		return
	}
	now := b.now()
	for id, f := range b.fams {
		if !now.Before(f.until) {
			delete(b.fams, id)
		}
	}
	for k, until := range b.consumed {
		if !now.Before(until) {
			delete(b.consumed, k)
		}
	}
}

func liveRefs(refs []AccessRef, now time.Time) []AccessRef {
	out := make([]AccessRef, 0, len(refs))
	for _, r := range refs {
		if r.Expiry.After(now) {
			out = append(out, r)
		}
	}
	return out
}
