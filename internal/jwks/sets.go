package jwks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgateway/authgateway/internal/idp"
)

// Sets hands out one Set per key set URL, so that everything verifying one
// provider's tokens (login's ID tokens, the oauth2 and jwt strategies)
// shares one cache and one refresh policy. A nil *Sets shares nothing: each
// Get makes a new Set with the default client and options.
type Sets struct {
	client *http.Client
	opts   Options

	mu sync.Mutex
	m  map[string]*Set
}

// NewSets returns an empty pool whose Sets use client and opts.
func NewSets(client *http.Client, opts Options) *Sets {
	return &Sets{client: idp.Harden(client), opts: opts, m: map[string]*Set{}}
}

// Get answers the Set for url, making it on first use.
func (p *Sets) Get(url string) *Set {
	if p == nil {
		return New(url, nil, Options{})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.m[url]
	if !ok {
		s = New(url, p.client, p.opts)
		p.m[url] = s
	}
	return s
}

// joseAlgorithms are idp.Algorithms as go-jose names them.
var joseAlgorithms = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(idp.Algorithms))
	for i, a := range idp.Algorithms {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// VerifySignature checks the signature of the compact JWS raw against the
// key its header names and answers the payload (go-oidc's KeySet, for
// login's ID tokens: they then share the key set, and its refusals of weak
// or mismatched keys, with the strategies). The algorithm must be one of
// idp.Algorithms and fit the key, as for Key.
func (s *Set) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, joseAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("parsing jws: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("jws: not exactly one signature")
	}
	h := jws.Signatures[0].Header
	key, err := s.Key(ctx, h.KeyID, h.Algorithm)
	if err != nil {
		return nil, err
	}
	return jws.Verify(key)
}
