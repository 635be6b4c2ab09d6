// Package strategies holds the Strategy contract, what every strategy
// shares (the identity, the denial reasons, the bearer-token and claim
// readers, the dependencies strategies are built with), and the chain that
// runs a route's strategies in order. The strategies themselves live in
// sub-packages (jwt, apikey, oauth2), built by package builtin.
package strategies

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Identity is who a request was authenticated as. It is what the gateway
// injects into identity headers and checks roles and scopes against.
type Identity struct {
	Subject  string
	Email    string
	Roles    []string
	Scopes   []string
	ClientID string
	// Strategy is the configured name of the strategy that succeeded.
	Strategy string
	// TokenID is the jti of a JWT (for the logout denylist) or the id of an API key.
	TokenID string
	// ExpiresAt is when the credential stops being valid; zero if unknown.
	ExpiresAt time.Time
	// FromCookie says the credential came from a cookie (the browser
	// session), which browsers attach to requests other sites make: the
	// gateway then refuses cross-origin requests with unsafe methods.
	FromCookie bool
	// Claims are the verified credential's claims by name: a JWT's claims,
	// an introspection answer, an API key's metadata; nil when the
	// credential has none. Shared with the cache that holds the verified
	// credential: read-only, never re-parsed per request. Read them with
	// ClaimMap, which also decodes DeferredClaims.
	Claims map[string]any
	// DeferredClaims stand in for Claims when those are nil: a cached
	// JWT's (decoded on first use) or API key's (built on first use).
	DeferredClaims ClaimSource
	// ClientCert describes the verified client certificate the identity
	// was read from (mtls strategies); nil otherwise.
	ClientCert *ClientCert
}

// ClientCert is what the upstream is told of a verified client certificate.
type ClientCert struct {
	// Fingerprint is the SHA-256 of the certificate's DER, lower-case hex.
	Fingerprint string
	// Subject is its subject distinguished name (RFC 2253 form); "" when
	// it cannot be sent in a header (control characters, over 1 KiB).
	Subject string
}

// ErrNoCredentials means the request carries no credential this strategy
// recognises: the chain moves on to the next strategy.
var ErrNoCredentials = errors.New("no credentials")

// ErrInvalidCredentials means the request carries a credential of this
// strategy's kind and it is not valid: 401, and it counts as an auth failure.
var ErrInvalidCredentials = errors.New("invalid credentials")

// InvalidError is an invalid credential with a machine-readable reason for logs
// (never containing the credential itself).
type InvalidError struct {
	Reason Reason
	Err    error // detail for logs; may be nil
	// Final says the credential is certainly this strategy's (a token signed
	// by one of its keys): later strategies in the chain must not try it
	// (an expired or revoked gateway token is not sent to a provider).
	Final bool
}

func (e *InvalidError) Error() string {
	if e.Err != nil {
		return "invalid credentials: " + string(e.Reason) + ": " + e.Err.Error()
	}
	return "invalid credentials: " + string(e.Reason)
}

// Is makes errors.Is(err, ErrInvalidCredentials) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalidCredentials }

func (e *InvalidError) Unwrap() error { return e.Err }

// Invalid returns an *InvalidError with the given reason.
func Invalid(reason Reason, err error) error { return &InvalidError{Reason: reason, Err: err} }

// Strategy authenticates a request.
//
// Authenticate returns exactly one of: an identity; an error matching
// ErrNoCredentials (not mine, try the next); an error matching
// ErrInvalidCredentials (401, counted as a failure); or any other error, a
// technical failure (store or provider unreachable), which fails closed.
// Implementations must not log or return the credential itself.
type Strategy interface {
	Authenticate(ctx context.Context, r *http.Request) (*Identity, error)
}

// Starter is a strategy with work to begin before it serves: a first
// discovery of its provider, watchers that keep its caches current. Start
// is called once, after the strategy is built; ctx bounds the start itself,
// not what it leaves running (Closer ends that). An error is a
// configuration error (a provider that names another issuer); an
// unreachable provider is none: the strategy fails closed until it answers.
type Starter interface {
	Start(ctx context.Context) error
}

// Closer is a strategy that holds something to release when its config
// generation is retired.
type Closer interface {
	Close()
}
