package strategies

import (
	"encoding/base64"
	"encoding/json"
	"sync"
)

// ClaimSource supplies an identity's claims built or decoded on first use
// (and then kept): a cached credential's claims cost nothing until a route
// reads them. Claims answers nil when there are none; the map is read-only.
type ClaimSource interface {
	Claims() map[string]any
}

// DeferredClaims are a verified JWT's claims kept as its payload segment
// and decoded on first use. A cache of many verified tokens then holds one
// string per token, which the garbage collector does not walk, rather than
// one map of boxed values per token, which it does: with 10,000 sessions
// that was a third of the live heap and most of each mark phase. Routes
// that never read a claim by name never decode them.
type DeferredClaims struct {
	payload string // base64url, as in the token
	once    sync.Once
	claims  map[string]any
}

// Defer makes d stand for a JWT's payload segment, which must be that of
// a token already verified and parsed (so it decodes). A DeferredClaims
// lives inside the cached value it belongs to (no allocation of its own);
// not after Claims has been called.
func (d *DeferredClaims) Defer(payload string) { d.payload = payload }

// Claims decodes the claims once, as the JWT parser did (unpadded base64url,
// then encoding/json into a map), and answers them; read-only.
func (d *DeferredClaims) Claims() map[string]any {
	d.once.Do(func() {
		raw, err := base64.RawURLEncoding.DecodeString(d.payload)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			d.claims = m
		}
	})
	return d.claims
}

// ClaimMap answers the identity's claims: Claims, or when those are nil
// the DeferredClaims, decoded. Read-only.
func (id *Identity) ClaimMap() map[string]any {
	if id.Claims == nil && id.DeferredClaims != nil {
		return id.DeferredClaims.Claims()
	}
	return id.Claims
}
