package tokens

import (
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/strategies"
)

// TypeAssertion marks identity assertions (X-Auth-Token). Its typ header
// and type claim differ from access tokens', so an upstream that receives one
// cannot replay it to the gateway as a credential.
const (
	TypeAssertion = "assertion"
	typAssertion  = "authgw-assertion+jwt"
)

// Asserter mints the short-lived identity assertions sent to upstreams as
// X-Auth-Token. An assertion is reused while more than half its lifetime
// remains, so signing (tens of microseconds for ES256/RS256) is not paid per
// request — but only for a request whose identity states exactly what the
// assertion states: subject, email, roles, scopes, client id, strategy,
// route, and the token id. Two tokens of one subject with different rights
// (and no jti) never share an assertion.
type Asserter struct {
	keys   *KeySet
	issuer string
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[assertKey]*assertion
}

// assertKey is every string the assertion states (the map hashes them
// natively); the lists are compared on a hit.
type assertKey struct{ strategy, subject, email, clientID, tokenID, route string }

type assertion struct {
	roles, scopes []string // copies: what the token states
	token         string
	refresh       time.Time // mint a new one after this
}

const maxAssertions = 10_000

// NewAsserter returns an Asserter signing with keys.
func NewAsserter(keys *KeySet, issuer string, ttl time.Duration) *Asserter {
	return &Asserter{keys: keys, issuer: issuer, ttl: ttl, now: time.Now, cache: map[assertKey]*assertion{}}
}

// Assert returns a signed assertion of id for the route: iss = the gateway's
// issuer, aud = the route name, sub, email, roles, scope, strategy, client_id,
// iat/exp (tokens.identity_token_ttl), and a kid the JWKS publishes.
func (a *Asserter) Assert(id *strategies.Identity, route string) (string, error) {
	now := a.now()
	k := assertKey{id.Strategy, id.Subject, id.Email, id.ClientID, id.TokenID, route}
	a.mu.Lock()
	if c, ok := a.cache[k]; ok && now.Before(c.refresh) && slices.Equal(c.roles, id.Roles) && slices.Equal(c.scopes, id.Scopes) {
		a.mu.Unlock()
		return c.token, nil
	}
	a.mu.Unlock()

	claims := jwt.MapClaims{
		"iss": a.issuer, "aud": route, "sub": id.Subject, "type": TypeAssertion,
		"iat": now.Unix(), "exp": now.Add(a.ttl).Unix(), "strategy": id.Strategy,
	}
	addIdentityClaims(claims, id.Email, id.Roles, id.Scopes)
	if id.ClientID != "" {
		claims["client_id"] = id.ClientID
	}
	tok, err := a.keys.Sign(claims, typAssertion)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	if len(a.cache) >= maxAssertions {
		clear(a.cache)
	}
	// Copies: the identity's lists may be shared (a token cache entry), and
	// what a hit is compared against must never change. One entry per key:
	// the same strings with other lists replace it.
	a.cache[k] = &assertion{roles: slices.Clone(id.Roles), scopes: slices.Clone(id.Scopes), token: tok, refresh: now.Add(a.ttl / 2)}
	a.mu.Unlock()
	return tok, nil
}
