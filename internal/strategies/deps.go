package strategies

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/jwks"
)

// Deps are the shared parts every strategy is built with. Zero values
// are safe: a strategy that needs a part that is absent says so when built.
type Deps struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// HTTPClient calls identity providers (discovery, introspection): an
	// idp.Harden one (no redirects, a timeout, a size cap). nil: a new one.
	HTTPClient *http.Client
	// KeySets are the providers' key sets, one per URL, shared with the
	// login's ID-token checks. nil: each strategy fetches its own.
	KeySets *jwks.Sets
	// Tokens are the gateway's own tokens (jwt strategies with keys:
	// tokens); nil without tokens.signing_keys.
	Tokens *GatewayTokens
	// Revocations is the access-token denylist (logout); nil without login.
	Revocations Revocations
	// Redis, when set, holds what replicas share (introspection answers,
	// API keys with store: redis).
	Redis redis.UniversalClient
	// OnCache, when set, is told of cache lookups by cache name (metrics).
	OnCache func(cache string, hit bool)
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// ClientCAs are the CA certificates of server.tls.client_ca_file, which
	// mtls strategies verify client certificates against; nil without it.
	ClientCAs *x509.CertPool
	// DryRun builds strategies for explain, whose decisions leave no trace:
	// no credential use is recorded (API keys' last_used_at).
	DryRun bool
}

// Clock answers Now, or time.Now.
func (d Deps) Clock() func() time.Time {
	if d.Now != nil {
		return d.Now
	}
	return time.Now
}

// Log answers Logger tagged with the component and strategy name (a
// discarding one without Logger).
func (d Deps) Log(component, name string) *slog.Logger {
	l := d.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With("component", component, "strategy", name)
}

// CacheHook binds cache to OnCache (nil stays nil).
func (d Deps) CacheHook(cache string) func(hit bool) {
	if d.OnCache == nil {
		return nil
	}
	f := d.OnCache
	return func(hit bool) { f(cache, hit) }
}

// GatewayTokens are the gateway's own access tokens.
type GatewayTokens struct {
	// Keys verify them (tokens.signing_keys).
	Keys KeySource
	// Issuer is tokens.issuer; AccessTTL tokens.access_ttl: a token of
	// this issuer that lives longer was not minted by the gateway as an
	// access token.
	Issuer    string
	AccessTTL time.Duration
}

// KeySource returns the verification key for a token's kid and alg. It must
// refuse a key whose algorithm differs from alg (no algorithm confusion).
type KeySource interface {
	Key(ctx context.Context, kid, alg string) (any, error)
}

// Revocations reports whether an access token's jti was revoked (logout).
type Revocations interface {
	IsRevoked(ctx context.Context, jti string) (bool, error)
}
