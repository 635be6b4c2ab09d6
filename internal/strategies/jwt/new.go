package jwt

import (
	"context"
	"errors"
	"fmt"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/jwks"
	"github.com/authgateway/authgateway/internal/strategies"
)

// New builds the jwt strategy named name. Its keys are the gateway's own
// (keys: tokens, deps.Tokens; a token of tokens.issuer may not live longer
// than tokens.access_ttl, and revocations are checked), or the key set at
// jwks_url (deps.KeySets; asymmetric algorithms only; fetched on first
// use, not here, so an unreachable provider does not stop the gateway from
// starting: tokens then fail closed).
func New(name string, sc *config.Strategy, deps strategies.Deps) (strategies.Strategy, error) {
	o := Options{
		Name: name, Algorithms: sc.Algorithms, Issuer: sc.Issuer, Audience: sc.Audience, Leeway: sc.Leeway.D(),
		RolesClaims: sc.RolesClaim, ScopesClaim: sc.ScopesClaim, EmailClaim: sc.EmailClaim, Cookie: sc.Cookie,
		Now: deps.Now, OnCache: deps.CacheHook("jwt_tokens"),
	}
	switch {
	case sc.Keys == "tokens":
		if deps.Tokens == nil {
			return nil, errors.New("no verification keys available: keys: tokens needs tokens.signing_keys")
		}
		o.Keys, o.Revocations = deps.Tokens.Keys, deps.Revocations
		// Our own tokens never live longer than tokens.access_ttl: a
		// longer one was not minted by us as an access token.
		if sc.Issuer == deps.Tokens.Issuer {
			o.MaxLifetime = deps.Tokens.AccessTTL
		}
	case sc.JWKSURL != "":
		for _, a := range sc.Algorithms {
			if !idp.Asymmetric(a) {
				return nil, fmt.Errorf("algorithm %q cannot be verified with a JWKS of public keys", a)
			}
		}
		o.Keys = KeySet(deps.KeySets.Get(sc.JWKSURL))
	default:
		return nil, errors.New("no verification keys available")
	}
	return NewVerifier(o)
}

// KeySet adapts a provider's key set to strategies.KeySource: the
// failures that are not the token's fault (key set unreachable, caller
// gone) are technical, so that a token then fails closed (503) instead of
// being called invalid.
func KeySet(s *jwks.Set) strategies.KeySource { return keySet{s} }

type keySet struct{ set *jwks.Set }

func (k keySet) Key(ctx context.Context, kid, alg string) (any, error) {
	key, err := k.set.Key(ctx, kid, alg)
	if err != nil {
		if errors.Is(err, jwks.ErrFetch) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, technicalError{err}
		}
		return nil, err
	}
	return key, nil
}

// technicalError marks a key-source failure that is not the token's fault
// (JWKS endpoint unreachable): the request fails closed, but it is not
// counted as the client's auth failure.
type technicalError struct{ err error }

func (e technicalError) Error() string { return e.err.Error() }
func (e technicalError) Unwrap() error { return e.err }

func isTechnical(err error) bool {
	var t technicalError
	return errors.As(err, &t)
}
