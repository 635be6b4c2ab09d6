package oauth2strategy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/jwks"
	"github.com/authgateway/authgateway/internal/strategies"
)

// asymmetric are the algorithms a remote JWKS of public keys can verify.
// HMAC is never among them: a public key used as an HMAC secret is the
// classic algorithm-confusion attack.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// keySource adapts a jwks.Set to strategies.KeySource.
type keySource struct{ set *jwks.Set }

// Key answers the key, marking the failures that are not the token's fault
// (key set unreachable, caller gone) as technical, so that the jwt strategy
// fails closed with a 503 instead of calling the token invalid.
func (k keySource) Key(ctx context.Context, kid, alg string) (any, error) {
	key, err := k.set.Key(ctx, kid, alg)
	if err != nil {
		if errors.Is(err, jwks.ErrFetch) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, technicalError{err}
		}
		return nil, err
	}
	return key, nil
}

// technicalError implements strategies.TechnicalError.
type technicalError struct{ err error }

func (e technicalError) Error() string   { return e.err.Error() }
func (e technicalError) Unwrap() error   { return e.err }
func (e technicalError) Technical() bool { return true }

var _ strategies.TechnicalError = technicalError{}

// NewJWKSJWT builds the jwt strategy named name that verifies tokens with the
// remote key set at sc.JWKSURL (type: jwt with jwks_url). Issuer, audience
// and algorithms are required; only asymmetric algorithms are accepted. The
// key set is fetched on first use, not here, so an unreachable provider does
// not stop the gateway from starting: tokens then fail closed (503).
func NewJWKSJWT(name string, sc *config.Strategy, deps Deps) (strategies.Strategy, error) {
	if sc == nil || sc.JWKSURL == "" {
		return nil, errors.New("jwks_url is required")
	}
	for _, a := range sc.Algorithms {
		if !slices.Contains(asymmetric, a) {
			return nil, fmt.Errorf("algorithm %q cannot be verified with a JWKS of public keys", a)
		}
	}
	set := jwks.New(sc.JWKSURL, deps.HTTPClient, jwks.Options{OnCache: hook(deps.OnCache, "jwks")})
	return strategies.NewJWT(strategies.JWTOptions{
		Name: name, Keys: keySource{set}, Algorithms: sc.Algorithms,
		Issuer: sc.Issuer, Audience: sc.Audience, Leeway: sc.Leeway.D(),
		RolesClaim: sc.RolesClaim, ScopesClaim: sc.ScopesClaim, EmailClaim: sc.EmailClaim,
		Cookie: sc.Cookie, OnCache: hook(deps.OnCache, "jwt_tokens"),
	})
}
