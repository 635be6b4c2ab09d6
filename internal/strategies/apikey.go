package strategies

import (
	"context"
	"errors"
	"net/http"

	"github.com/authgateway/authgateway/internal/apikey"
)

// KeyVerifier checks a presented API key (apikey.Verifier).
type KeyVerifier interface {
	Verify(ctx context.Context, presented string) (*apikey.Record, error)
}

// APIKey authenticates machines by an API key in a header.
type APIKey struct {
	name     string
	header   string
	verifier KeyVerifier
}

// NewAPIKey returns the api_key strategy named name reading header.
func NewAPIKey(name, header string, v KeyVerifier) *APIKey {
	return &APIKey{name: name, header: http.CanonicalHeaderKey(header), verifier: v}
}

// Challenge is the WWW-Authenticate challenge for a 401.
func (s *APIKey) Challenge() string { return `ApiKey realm="authgateway", header="` + s.header + `"` }

// CredentialHeaders are removed before forwarding.
func (s *APIKey) CredentialHeaders() []string { return []string{s.header} }

// CredentialCookie implements proxy.CredentialCarrier.
func (s *APIKey) CredentialCookie() string { return "" }

// Authenticate implements Strategy. A header that is present but empty or
// repeated is an invalid credential (it counts as a failure); an absent one
// is not this strategy's.
func (s *APIKey) Authenticate(ctx context.Context, r *http.Request) (*Identity, error) {
	vals, ok := r.Header[s.header]
	if !ok {
		return nil, ErrNoCredentials
	}
	if len(vals) != 1 || vals[0] == "" {
		return nil, Invalid("malformed_key", nil)
	}
	rec, err := s.verifier.Verify(ctx, vals[0])
	switch {
	case err == nil:
	case errors.Is(err, apikey.ErrMalformed):
		return nil, Invalid("malformed_key", nil)
	case errors.Is(err, apikey.ErrUnknown):
		return nil, Invalid("unknown_key", nil)
	case errors.Is(err, apikey.ErrExpired):
		return nil, Invalid("expired", nil)
	case errors.Is(err, apikey.ErrRevoked):
		return nil, Invalid("revoked", nil)
	default:
		return nil, err // technical: fail closed
	}
	return &Identity{
		Subject: rec.Name, ClientID: rec.ID, TokenID: rec.ID,
		Roles: rec.Roles, Scopes: rec.Scopes, ExpiresAt: rec.ExpiresAt,
	}, nil
}

var _ Strategy = (*APIKey)(nil)
