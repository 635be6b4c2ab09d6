// Package jwks fetches and caches a remote JSON Web Key Set (RFC 7517) and
// answers the public key a JWT names by kid and alg. Sets hands out one Set
// per URL, so that everything verifying one provider's tokens shares it.
//
// Keys are parsed by go-jose. Only public signature keys are served: a JWK
// with private parts, a symmetric ("oct") key, a key for encryption, an RSA
// key under 2048 bits are refused. A key must fit the algorithm asked for:
// its "alg", if set, must be that algorithm, and its type must be the
// algorithm's (RS*/PS* RSA, ES256/384/512 ECDSA on P-256/384/521, EdDSA
// Ed25519), so a token cannot pick how its key is used.
package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgateway/authgateway/internal/idp"
)

var (
	// ErrUnsupportedAlg: the algorithm is not one this package verifies with
	// (HS*, none, ...). No fetch is made.
	ErrUnsupportedAlg = errors.New("jwks: unsupported algorithm")
	// ErrKeyNotFound: no key with that kid, even after a refetch (or the
	// refetch was rate limited).
	ErrKeyNotFound = errors.New("jwks: key not found")
	// ErrKeyMismatch: the key exists but does not fit the algorithm.
	ErrKeyMismatch = errors.New("jwks: key does not fit the algorithm")
	// ErrKeyRefused: the key exists but is never served (private, symmetric,
	// not for signatures, too short, unparsable).
	ErrKeyRefused = errors.New("jwks: key refused")
	// ErrFetch: the key set could not be fetched or parsed and no usable
	// earlier copy is left: a technical failure, not a bad token.
	ErrFetch = errors.New("jwks: fetching key set")
)

// Options tune a Set. Zero values take the defaults.
type Options struct {
	// OnCache, when set, is told whether a key was served from the cached
	// set (hit) or needed a fetch (miss), for metrics.
	OnCache func(hit bool)
	// MinRefreshInterval is the least time between two fetches, whatever
	// asks for them (unknown kids, expiry, failures); default
	// idp.RetryInterval (10s). It keeps a flood of tokens with random kids
	// from hammering the provider.
	MinRefreshInterval time.Duration
	// TTL is how long a fetched set is used before it is fetched again on
	// the next use; default 10m. Removed keys stop working after it.
	TTL time.Duration
	// Grace is how long past TTL the last set is still served while the
	// provider cannot be reached; default 1h.
	Grace time.Duration
	// Timeout bounds one fetch; default idp.AttemptTimeout (10s).
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MinRefreshInterval <= 0 {
		o.MinRefreshInterval = idp.RetryInterval
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Minute
	}
	if o.Grace <= 0 {
		o.Grace = time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = idp.AttemptTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Set is a remote key set; safe for concurrent use.
type Set struct {
	url    string
	client *http.Client
	opts   Options
	gate   idp.Gate[*keySet] // fetches: shared, at most one per MinRefreshInterval

	mu        sync.Mutex
	keys      *keySet // last good set, nil before the first
	fetchedAt time.Time
}

// New returns a Set for the JWKS at url. Nothing is fetched before the
// first Key. client may be nil; an idp.Harden copy of it is used (no
// redirects: a 3xx is an error; a timeout; a 1 MiB cap).
func New(url string, client *http.Client, opts Options) *Set {
	opts = opts.withDefaults()
	return &Set{url: url, client: idp.Harden(client), opts: opts,
		gate: idp.Gate[*keySet]{Interval: opts.MinRefreshInterval, Timeout: opts.Timeout, Now: opts.Now}}
}

// Key answers the public key (*rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey) with that kid that fits alg. An empty kid matches the
// one usable key of the set, if there is exactly one. Errors: ErrUnsupportedAlg,
// ErrKeyNotFound, ErrKeyMismatch, ErrKeyRefused for the token's fault,
// ErrFetch (or the context's error) for a technical one.
func (s *Set) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	if !idp.Asymmetric(alg) {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
	}
	ks := s.fresh()
	hit := ks != nil
	if ks == nil {
		var err error
		if ks, err = s.refresh(ctx); ks == nil {
			s.observe(false)
			return nil, err
		}
	}
	key, err := ks.lookup(kid, alg)
	if !errors.Is(err, ErrKeyNotFound) {
		s.observe(hit)
		return key, err
	}
	s.observe(false)
	// Unknown kid: the provider may have rotated. refresh is rate limited.
	ks, fetchErr := s.refresh(ctx)
	if ks != nil {
		if key, err = ks.lookup(kid, alg); !errors.Is(err, ErrKeyNotFound) {
			return key, err
		}
	}
	if fetchErr != nil {
		return nil, fetchErr
	}
	return nil, err
}

func (s *Set) observe(hit bool) {
	if s.opts.OnCache != nil {
		s.opts.OnCache(hit)
	}
}

// fresh answers the set if it is younger than TTL.
func (s *Set) fresh() *keySet {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys != nil && s.opts.Now().Before(s.fetchedAt.Add(s.opts.TTL)) {
		return s.keys
	}
	return nil
}

// usable answers the set while it is within TTL+Grace; the caller holds s.mu.
func (s *Set) usable(now time.Time) *keySet {
	if s.keys != nil && now.Before(s.fetchedAt.Add(s.opts.TTL+s.opts.Grace)) {
		return s.keys
	}
	return nil
}

// refresh fetches the set unless a fetch was made less than
// MinRefreshInterval ago; concurrent callers share one fetch. It answers
// the set to use (possibly stale, or nil) and the error of the fetch that
// was made or of the last one.
func (s *Set) refresh(ctx context.Context) (*keySet, error) {
	ks, err := s.gate.Do(ctx, s.fetchAndKeep)
	switch {
	case err == nil:
		return ks, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usable(s.opts.Now()), err
}

// fetchAndKeep is one attempt of the gate: a fetched set replaces the last.
func (s *Set) fetchAndKeep(ctx context.Context) (*keySet, error) {
	ks, err := s.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	s.mu.Lock()
	s.keys, s.fetchedAt = ks, s.opts.Now()
	s.mu.Unlock()
	return ks, nil
}

func (s *Set) fetch(ctx context.Context) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body) // the client caps it
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	return parse(body)
}

// keySet is one fetched document.
type keySet struct {
	byKID map[string][]jwk
	n     int // usable keys
}

type jwk struct {
	alg     string // "" when the JWK names none
	key     crypto.PublicKey
	refused string // why the key is never served; "" when usable
}

// parse reads a JWK Set. The document must be an object with a "keys"
// array; a key that cannot be used is kept as refused, so that the token
// that names it gets a clear error, and does not spoil the others.
func parse(body []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decoding key set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("decoding key set: no \"keys\" array")
	}
	ks := &keySet{byKID: make(map[string][]jwk, len(doc.Keys))}
	for _, raw := range doc.Keys {
		var head struct {
			Kid    string   `json:"kid"`
			KeyOps []string `json:"key_ops"`
		}
		_ = json.Unmarshal(raw, &head) // best effort: a key without kid is filed under ""
		k := parseKey(raw, head.KeyOps)
		if k.refused == "" {
			ks.n++
		}
		ks.byKID[head.Kid] = append(ks.byKID[head.Kid], k)
	}
	return ks, nil
}

func parseKey(raw json.RawMessage, keyOps []string) jwk {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return jwk{refused: "unparsable JWK: " + err.Error()}
	}
	switch pub := k.Key.(type) {
	case []byte:
		return jwk{refused: "symmetric key"}
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return jwk{refused: "RSA key shorter than 2048 bits"}
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return jwk{refused: "private key material"}
	}
	if !k.IsPublic() || !k.Valid() {
		return jwk{refused: "not a valid public key"}
	}
	if k.Use != "" && k.Use != "sig" {
		return jwk{refused: fmt.Sprintf("use %q is not sig", k.Use)}
	}
	if keyOps != nil && !slices.Contains(keyOps, "verify") {
		return jwk{refused: "key_ops lacks verify"}
	}
	return jwk{alg: k.Algorithm, key: k.Key}
}

func (ks *keySet) lookup(kid, alg string) (crypto.PublicKey, error) {
	if kid == "" {
		return ks.only(alg)
	}
	cands, ok := ks.byKID[kid]
	if !ok {
		return nil, fmt.Errorf("%w: kid %q", ErrKeyNotFound, kid)
	}
	var refused, mismatch string
	for _, k := range cands {
		switch {
		case k.refused != "":
			refused = k.refused
		case fits(k, alg):
			return k.key, nil
		default:
			mismatch = describe(k)
		}
	}
	if mismatch != "" {
		return nil, fmt.Errorf("%w: kid %q is %s, token says %s", ErrKeyMismatch, kid, mismatch, alg)
	}
	return nil, fmt.Errorf("%w: kid %q: %s", ErrKeyRefused, kid, refused)
}

// only answers the single usable key that fits alg, for tokens without kid.
func (ks *keySet) only(alg string) (crypto.PublicKey, error) {
	var found crypto.PublicKey
	n := 0
	for _, cands := range ks.byKID {
		for _, k := range cands {
			if k.refused == "" && fits(k, alg) {
				found = k.key
				n++
			}
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: no kid, and %d keys fit %s", ErrKeyNotFound, n, alg)
	}
	return found, nil
}

func fits(k jwk, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

func describe(k jwk) string {
	var typ string
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		typ = "RSA"
	case *ecdsa.PublicKey:
		typ = "EC " + pub.Curve.Params().Name
	case ed25519.PublicKey:
		typ = "Ed25519"
	}
	if k.alg != "" {
		return typ + " for " + k.alg
	}
	return typ
}
