// Package oauth2strategy is the oauth2 strategy: it accepts bearer access
// tokens issued by an external authorization server.
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
// Endpoints come from OpenID Connect discovery of issuer_url; explicit
// introspection_url / jwks_url win over discovered ones, and when both are
// set no discovery is made. Discovery runs in New; if the provider cannot be
// reached then, New still succeeds (a gateway must be able to start while
// its identity provider is down): discovery is retried on requests, at most
// once per retry interval (10s), and until it succeeds every token fails
// closed with a technical error (503). A provider that answers with another
// issuer is a configuration error: New fails.
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
package oauth2strategy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/introspect"
	"github.com/authgateway/authgateway/internal/jwks"
	"github.com/authgateway/authgateway/internal/strategies"
)

const (
	// discoveryTimeout bounds one discovery attempt, at startup or later.
	discoveryTimeout = 10 * time.Second
	// discoveryRetry is the least time between two discovery attempts, so a
	// flood of requests while the provider is down does not become a flood
	// of requests to the provider.
	discoveryRetry = 10 * time.Second
	// defaultCacheTTL applies when the config left cache_ttl unset.
	defaultCacheTTL = 60 * time.Second
)

// Deps are the shared parts the strategy is built with.
type Deps struct {
	// HTTPClient calls the provider (discovery, JWKS, introspection). It is
	// copied and made to refuse redirects; without a Timeout, each call is
	// bounded by its own (10s discovery and JWKS, 5s introspection). nil: a
	// plain client.
	HTTPClient *http.Client
	// OnCache, when set, is told of cache lookups by cache name (metrics).
	OnCache func(cache string, hit bool)
	// Redis, when set, holds the introspection cache, shared by replicas.
	// nil: an in-memory cache.
	Redis redis.UniversalClient
	// Logger; nil discards.
	Logger *slog.Logger
}

// Strategy is the oauth2 strategy; safe for concurrent use.
type Strategy struct {
	name       string
	sc         config.Strategy // a copy: the strategy never reads the live config
	issuer     string          // expected iss; "" only for introspection without issuer_url
	algorithms []string
	client     *http.Client
	redis      redis.UniversalClient
	log        *slog.Logger
	onCache    func(cache string, hit bool)

	rolesPath, scopesPath, emailPath []string

	v       atomic.Pointer[verifiers] // nil until discovery succeeded
	headers headerKinds

	// Lazy discovery after a failed start.
	now        func() time.Time
	retryEvery time.Duration
	flight     singleflight.Group
	mu         sync.Mutex
	lastTry    time.Time
	lastErr    error
}

// verifiers are what checks tokens once the endpoints are known.
type verifiers struct {
	jwt   *strategies.JWT    // nil: the provider has no JWKS
	intro *introspect.Client // nil: no introspection endpoint or no client secret
}

// New builds the strategy named name from its config. See the package doc
// for discovery; ctx bounds the discovery made here (at most 10s).
func New(ctx context.Context, name string, sc *config.Strategy, deps Deps) (*Strategy, error) {
	if sc == nil {
		return nil, errors.New("oauth2 strategy: no config")
	}
	if sc.ClientID == "" {
		return nil, errors.New("client_id is required")
	}
	if sc.IssuerURL == "" && sc.IntrospectionURL == "" && sc.JWKSURL == "" {
		return nil, errors.New("needs issuer_url (OIDC discovery) or introspection_url / jwks_url")
	}
	s := &Strategy{
		name: name, sc: *sc, client: httpClient(deps.HTTPClient), redis: deps.Redis, log: deps.Logger, onCache: deps.OnCache,
		now: time.Now, retryEvery: discoveryRetry,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "strategy.oauth2", "strategy", name)
	if s.sc.CacheTTL == nil {
		d := config.Duration(defaultCacheTTL)
		s.sc.CacheTTL = &d
	}
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
		s.algorithms = asymmetric
	}
	for _, a := range s.algorithms {
		if !slices.Contains(asymmetric, a) {
			return nil, fmt.Errorf("algorithm %q cannot be verified with a JWKS of public keys", a)
		}
	}
	s.rolesPath = claimPath(sc.RolesClaim, "roles")
	s.scopesPath = claimPath(sc.ScopesClaim, "scope")
	s.emailPath = claimPath(sc.EmailClaim, "email")

	if sc.IssuerURL == "" || (sc.IntrospectionURL != "" && sc.JWKSURL != "") {
		v, err := s.build(nil)
		if err != nil {
			return nil, err
		}
		s.v.Store(v)
		return s, nil
	}

	dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	s.lastTry = s.now()
	m, err := discover(dctx, s.client, sc.IssuerURL)
	switch {
	case errors.Is(err, errIssuerMismatch):
		return nil, err
	case err != nil:
		s.lastErr = err
		s.log.LogAttrs(ctx, slog.LevelWarn, "oauth2 provider discovery failed; requests fail closed until it succeeds",
			slog.String("issuer", sc.IssuerURL), slog.String("error", err.Error()))
		return s, nil
	}
	v, err := s.build(m)
	if err != nil {
		return nil, err
	}
	s.v.Store(v)
	return s, nil
}

// httpClient copies c (or a zero client) so that it never follows a
// redirect: discovery must not be led to another issuer's document.
func httpClient(c *http.Client) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return out
}

// build makes the verifiers from the configured URLs, or the discovered
// ones (m, may be nil) where the config names none.
func (s *Strategy) build(m *metadata) (*verifiers, error) {
	jwksURL, introURL := s.sc.JWKSURL, s.sc.IntrospectionURL
	if m != nil {
		if jwksURL == "" {
			jwksURL = m.JWKSURI
		}
		if introURL == "" {
			introURL = m.Introspection
		}
	}
	v := &verifiers{}
	if jwksURL != "" {
		aud := s.sc.Audience
		if aud == "" {
			aud = s.sc.ClientID
		}
		j, err := strategies.NewJWT(strategies.JWTOptions{
			Name: s.name, Keys: keySource{jwks.New(jwksURL, s.client, jwks.Options{OnCache: hook(s.onCache, "jwks")})},
			Algorithms: s.algorithms, Issuer: s.issuer, Audience: aud, Leeway: s.sc.Leeway.D(),
			RolesClaim: s.sc.RolesClaim, ScopesClaim: s.sc.ScopesClaim, EmailClaim: s.sc.EmailClaim,
			OnCache: hook(s.onCache, "jwt_tokens"),
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
			HTTPClient: s.client, Redis: s.redis, OnCache: hook(s.onCache, "introspection"),
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

// verifiers answers the verifiers, retrying discovery when it has not yet
// succeeded and the last attempt is older than the retry interval.
func (s *Strategy) verifiers(ctx context.Context) (*verifiers, error) {
	if v := s.v.Load(); v != nil {
		return v, nil
	}
	ch := s.flight.DoChan("", func() (any, error) {
		if v := s.v.Load(); v != nil {
			return v, nil
		}
		s.mu.Lock()
		now := s.now()
		if !s.lastTry.IsZero() && now.Sub(s.lastTry) < s.retryEvery {
			err := s.lastErr
			s.mu.Unlock()
			if err == nil {
				err = errors.New("provider discovery pending")
			}
			return nil, err
		}
		s.lastTry = now
		s.mu.Unlock()

		// The attempt outlives a caller that leaves: others may wait on it.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
		defer cancel()
		m, err := discover(dctx, s.client, s.sc.IssuerURL)
		var v *verifiers
		if err == nil {
			v, err = s.build(m)
		}
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		if err != nil {
			s.log.LogAttrs(dctx, slog.LevelWarn, "oauth2 provider discovery failed",
				slog.String("issuer", s.sc.IssuerURL), slog.String("error", err.Error()))
			return nil, err
		}
		s.log.LogAttrs(dctx, slog.LevelInfo, "oauth2 provider discovered", slog.String("issuer", s.sc.IssuerURL))
		s.v.Store(v)
		return v, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*verifiers), nil
	}
}

// Challenge is the WWW-Authenticate challenge for a 401.
func (s *Strategy) Challenge() string { return `Bearer realm="authgateway"` }

// CredentialHeaders are the headers that carry this strategy's credential.
func (s *Strategy) CredentialHeaders() []string { return []string{"Authorization"} }

// CredentialCookie is "": access tokens come in the Authorization header only.
func (s *Strategy) CredentialCookie() string { return "" }

// Authenticate implements strategies.Strategy.
func (s *Strategy) Authenticate(ctx context.Context, r *http.Request) (*strategies.Identity, error) {
	raw, ok := bearerToken(r)
	if !ok {
		return nil, strategies.ErrNoCredentials
	}
	if len(raw) > strategies.MaxTokenBytes {
		return nil, strategies.Invalid("oversize_token", nil)
	}
	v, err := s.verifiers(ctx)
	if err != nil {
		return nil, fmt.Errorf("oauth2 provider unavailable: %w", err)
	}
	if v.jwt != nil && s.providerJWT(raw) {
		return v.jwt.Verify(ctx, raw)
	}
	if v.intro == nil {
		return nil, strategies.Invalid("unverifiable_token", nil)
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
	if json.Unmarshal(b, &h) != nil || !slices.Contains(asymmetric, h.Alg) {
		return false
	}
	if h.Kid != "" {
		return true
	}
	switch strings.ToLower(h.Typ) {
	case "jwt", "at+jwt", "application/at+jwt":
		return true
	}
	return false
}

// bearerToken extracts the token of an "Authorization: Bearer x" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

var (
	_ strategies.Strategy = (*Strategy)(nil)
	_ interface {
		Challenge() string
		CredentialHeaders() []string
		CredentialCookie() string
	} = (*Strategy)(nil)
)

// hook binds a cache name to an OnCache callback (nil stays nil).
func hook(f func(string, bool), name string) func(bool) {
	if f == nil {
		return nil
	}
	return func(hit bool) { f(name, hit) }
}
