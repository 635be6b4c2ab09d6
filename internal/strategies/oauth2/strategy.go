// Package oauth2 is the oauth2 strategy: it accepts bearer access tokens
// issued by an external authorization server.
//
// A token that is a JWT of the provider (three base64url parts whose header
// names an asymmetric algorithm and a kid, or typ JWT / at+jwt) is verified
// locally against the provider's JWKS, with the claim checks of the jwt
// strategy (RFC 9068): iss must be the provider's issuer, aud must hold
// `audience`, or client_id when no audience is configured (RFC 9068 makes
// aud mandatory, and the gateway's own client id is the natural one). No
// introspection call is made for it, and a JWT that fails verification is
// invalid: it is never handed to introspection as a second chance.
//
// Every other token is introspected (RFC 7662, client_secret_basic with
// client_id/client_secret) by internal/introspect: active, exp, token_type,
// iss (the provider's issuer, when one is known) and aud (only when
// `audience` is configured) are checked, and the answer is cached for
// cache_ttl ("0s": no cache, revocation is immediate), in Redis when
// Deps.Redis is set.
//
// Endpoints come from OpenID Connect discovery of issuer_url (package idp);
// explicit introspection_url / jwks_url win over discovered ones, and when
// both are set no discovery is made. New makes no request: Start makes the
// first discovery attempt, waiting for it at most 3s; if the provider cannot
// be reached then, the strategy still starts (a gateway must be able to
// start while its identity provider is down): discovery is retried on
// requests, at most once per idp.RetryInterval (10s), and until it succeeds
// every token fails closed with a technical error (503). A provider that
// answers with another issuer, or whose document offers nothing usable, is
// a configuration error: Start fails.
//
// The key set is shared (Deps.KeySets) with the login's ID-token checks and
// every other strategy of the same jwks_uri.
//
// The introspection endpoint is the configured issuer's: the one issuer_url's
// discovery document names (a document counts only when its issuer is
// issuer_url), or the introspection_url configured in the same strategy as
// issuer_url (or issuer). The gateway asks no one else, so an answer without
// iss speaks for that issuer and is accepted (RFC 7662 makes iss optional;
// zitadel's example OP leaves it out); a present iss must equal the issuer.
//
// Without issuer_url, the `issuer` key names the expected iss (required with
// jwks_url). Without client_secret no introspection is made: only JWTs can
// be accepted, opaque tokens are invalid ("unverifiable_token"). leeway
// applies to JWTs; introspection answers are judged by the provider's clock.
// Set `audience` to the API's own audience: with the client_id default, an
// ID token the provider issued to the gateway's login client carries that
// same aud, and only its nonce / at_hash tell it apart.
package oauth2

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/introspect"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/jwt"
)

const (
	// startTimeout bounds how long Start waits for the first discovery, so
	// that an unreachable provider does not hold start-up or a reload.
	startTimeout = 3 * time.Second
)

// errUnusable: the discovered provider offers nothing the strategy can
// verify tokens with; a configuration error, like an issuer mismatch.
var errUnusable = errors.New("provider unusable")

// Strategy is the oauth2 strategy; safe for concurrent use.
type Strategy struct {
	name       string
	sc         config.Strategy // a copy: the strategy never reads the live config
	issuer     string          // expected iss; "" only for introspection without issuer_url
	algorithms []string
	deps       strategies.Deps
	log        *slog.Logger

	rolesPaths            strategies.ClaimPaths
	scopesPath, emailPath strategies.ClaimPath

	static     *verifiers           // the verifiers when no discovery is needed
	discovered *idp.Lazy[verifiers] // else: built once discovery succeeded
	headers    headerKinds
}

// verifiers are what checks tokens once the endpoints are known.
type verifiers struct {
	jwt   *jwt.Verifier      // nil: the provider has no JWKS
	intro *introspect.Client // nil: no introspection endpoint or no client secret
}

// New builds the strategy named name from its config, provisioned
// (config.Strategy.Provision: its defaults are applied there, not here); it
// makes no request (see Start).
func New(name string, sc *config.Strategy, deps strategies.Deps) (strategies.Strategy, error) {
	if sc == nil {
		return nil, errors.New("oauth2 strategy: no config")
	}
	if sc.ClientID == "" {
		return nil, errors.New("client_id is required")
	}
	if sc.IssuerURL == "" && sc.IntrospectionURL == "" && sc.JWKSURL == "" {
		return nil, errors.New("needs issuer_url (OIDC discovery) or introspection_url / jwks_url")
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = idp.NewHTTPClient()
	}
	if sc.CacheTTL == nil {
		return nil, errors.New("cache_ttl unset: the config was not provisioned")
	}
	s := &Strategy{name: name, sc: *sc, deps: deps, log: deps.Log("strategy.oauth2", name)}
	// Without issuer_url the jwt-style `issuer` key names the expected iss.
	s.issuer = sc.IssuerURL
	if s.issuer == "" {
		s.issuer = sc.Issuer
	}
	if sc.JWKSURL != "" && s.issuer == "" {
		return nil, errors.New("jwks_url needs issuer_url (or issuer) to check the tokens' iss")
	}
	s.algorithms = sc.Algorithms
	if len(s.algorithms) == 0 {
		s.algorithms = idp.Algorithms
	}
	for _, a := range s.algorithms {
		if !idp.Asymmetric(a) {
			return nil, fmt.Errorf("algorithm %q cannot be verified with a JWKS of public keys", a)
		}
	}
	s.rolesPaths = strategies.NewClaimPaths(sc.RolesClaim, "")
	s.scopesPath = strategies.NewClaimPath(sc.ScopesClaim, "scope")
	s.emailPath = strategies.NewClaimPath(sc.EmailClaim, "")

	if sc.IssuerURL == "" || (sc.IntrospectionURL != "" && sc.JWKSURL != "") {
		v, err := s.build(nil)
		if err != nil {
			return nil, err
		}
		s.static = v
		return s, nil
	}
	s.discovered = idp.NewLazy(deps.Now, s.discover)
	return s, nil
}

// Start makes the first discovery attempt and waits for it at most
// startTimeout. A provider that cannot be reached is no error (requests
// retry, failing closed meanwhile); an issuer mismatch or a document that
// offers nothing usable is.
func (s *Strategy) Start(ctx context.Context) error {
	if s.discovered == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if _, err := s.discovered.Get(ctx); errors.Is(err, idp.ErrIssuerMismatch) || errors.Is(err, errUnusable) {
		return err
	}
	return nil
}

// discover is one discovery attempt: the provider's document, then the
// verifiers from it.
func (s *Strategy) discover(ctx context.Context) (*verifiers, error) {
	m, err := idp.Discover(ctx, s.deps.HTTPClient, s.sc.IssuerURL)
	var v *verifiers
	if err == nil {
		if v, err = s.build(m); err != nil {
			err = fmt.Errorf("%w: %w", errUnusable, err)
		}
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "oauth2 provider discovery failed; requests fail closed until it succeeds",
			slog.String("issuer", s.sc.IssuerURL), slog.String("error", err.Error()))
		return nil, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "oauth2 provider discovered", slog.String("issuer", s.sc.IssuerURL))
	return v, nil
}

// build makes the verifiers from the configured URLs, or the discovered
// ones (m, may be nil) where the config names none.
func (s *Strategy) build(m *idp.Metadata) (*verifiers, error) {
	jwksURL, introURL := s.sc.JWKSURL, s.sc.IntrospectionURL
	if m != nil {
		if jwksURL == "" {
			jwksURL = m.JWKSURL
		}
		if introURL == "" {
			introURL = m.IntrospectionURL
		}
	}
	v := &verifiers{}
	if jwksURL != "" {
		aud := s.sc.Audience
		if aud == "" {
			aud = s.sc.ClientID
		}
		j, err := jwt.NewVerifier(jwt.Options{
			Name: s.name, Keys: jwt.KeySet(s.deps.KeySets.Get(jwksURL)),
			Algorithms: s.algorithms, Issuer: s.issuer, Audience: aud, Leeway: s.sc.Leeway.D(),
			RolesClaims: s.sc.RolesClaim, ScopesClaim: s.sc.ScopesClaim, EmailClaim: s.sc.EmailClaim,
			Now: s.deps.Now, OnCache: s.deps.CacheHook("jwt_tokens"),
		})
		if err != nil {
			return nil, fmt.Errorf("jwt verification: %w", err)
		}
		v.jwt = j
	}
	switch {
	case introURL != "" && s.sc.ClientSecret != "":
		c, err := introspect.New(introspect.Options{
			URL: introURL, ClientID: s.sc.ClientID, ClientSecret: s.sc.ClientSecret,
			CacheTTL: s.sc.CacheTTL.D(), Issuer: s.issuer, IssuerEndpoint: s.issuer != "", Audience: s.sc.Audience,
			HTTPClient: s.deps.HTTPClient, Redis: s.deps.Redis, OnCache: s.deps.CacheHook("introspection"), Now: s.deps.Now,
		})
		if err != nil {
			return nil, err
		}
		v.intro = c
	case introURL != "":
		s.log.Warn("introspection endpoint known but no client_secret: only JWT access tokens can be accepted")
	}
	if v.jwt == nil && v.intro == nil {
		return nil, errors.New("the provider offers neither a jwks_uri nor an introspection endpoint usable with a client_secret")
	}
	return v, nil
}

// verifiers answers the verifiers, discovering the provider first when it
// has not yet succeeded (see idp.Lazy).
func (s *Strategy) verifiers(ctx context.Context) (*verifiers, error) {
	if s.static != nil {
		return s.static, nil
	}
	return s.discovered.Get(ctx)
}

// Challenge is the WWW-Authenticate challenge for a 401.
func (s *Strategy) Challenge() string { return `Bearer realm="authgateway"` }

// CredentialHeaders are the headers that carry this strategy's credential.
func (s *Strategy) CredentialHeaders() []string { return []string{"Authorization"} }

// CredentialCookie is "": access tokens come in the Authorization header only.
func (s *Strategy) CredentialCookie() string { return "" }

// Authenticate implements strategies.Strategy.
func (s *Strategy) Authenticate(ctx context.Context, r *http.Request) (*strategies.Identity, error) {
	raw, ok := strategies.BearerToken(r)
	if !ok {
		return nil, strategies.ErrNoCredentials
	}
	if len(raw) > strategies.MaxTokenBytes {
		return nil, strategies.Invalid(strategies.ReasonOversizeToken, nil)
	}
	v, err := s.verifiers(ctx)
	if err != nil {
		return nil, fmt.Errorf("oauth2 provider unavailable: %w", err)
	}
	if v.jwt != nil && s.providerJWT(raw) {
		return v.jwt.Verify(ctx, raw)
	}
	if v.intro == nil {
		return nil, strategies.Invalid(strategies.ReasonUnverifiableToken, nil)
	}
	res, err := v.intro.Introspect(ctx, raw)
	if err != nil {
		var d *introspect.DeniedError
		if errors.As(err, &d) {
			return nil, strategies.Invalid(d.Reason, nil)
		}
		return nil, fmt.Errorf("introspecting token: %w", err)
	}
	return s.identity(res)
}

// providerJWT reports whether raw is shaped as a JWT signed by a provider:
// three parts, a header that decodes, an asymmetric alg, and a kid or a JWT
// typ. Such a token is verified locally; anything else is introspected.
func (s *Strategy) providerJWT(raw string) bool {
	head, rest, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return false
	}
	return s.headers.kind(head)
}

// headerKinds remembers the verdict of providerJWT per header segment. A
// provider signs every token with one of a few headers, and decoding the
// header's JSON is most of the cost of a token seen before. The memo is
// bounded: it is emptied when full, so random headers cannot grow it.
type headerKinds struct {
	mu sync.RWMutex
	m  map[string]bool
}

const (
	maxHeaderKinds    = 256
	maxMemoHeaderSize = 512
)

func (h *headerKinds) kind(head string) bool {
	if len(head) > maxMemoHeaderSize {
		return jwtHeader(head)
	}
	h.mu.RLock()
	v, ok := h.m[head]
	h.mu.RUnlock()
	if ok {
		return v
	}
	v = jwtHeader(head)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxHeaderKinds {
		h.m = make(map[string]bool, maxHeaderKinds)
	}
	// A copy: the segment shares memory with the whole token, which must not
	// be kept.
	h.m[strings.Clone(head)] = v
	return v
}

// jwtHeader reports whether head is the base64url of a JOSE header with an
// asymmetric alg, and a kid or a JWT typ.
func jwtHeader(head string) bool {
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if json.Unmarshal(b, &h) != nil || !idp.Asymmetric(h.Alg) {
		return false
	}
	return h.Kid != "" || jwt.AccessTokenType(h.Typ)
}

var (
	_ strategies.Strategy = (*Strategy)(nil)
	_ strategies.Starter  = (*Strategy)(nil)
)
