// Package jwt is the jwt strategy: bearer JWTs (or a session cookie
// holding one) verified against the gateway's own signing keys (keys:
// tokens) or a provider's key set (jwks_url). Its Verifier also checks the
// provider JWTs of the oauth2 strategy and the login's session cookie.
package jwt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/jwscheck"
	"github.com/authgateway/authgateway/internal/strategies"
)

// Options configure a Verifier.
type Options struct {
	Name       string // the configured strategy name, reported in X-Auth-Strategy
	Keys       strategies.KeySource
	Algorithms []string
	Issuer     string
	Audience   string
	Leeway     time.Duration
	// MaxLifetime, when positive, refuses tokens whose exp-iat exceeds it (the
	// gateway's own tokens: tokens.access_ttl).
	MaxLifetime time.Duration
	RolesClaim  string // dotted path, e.g. realm_access.roles
	// RolesClaims, when set, replace RolesClaim: several dotted claims
	// whose values are joined (roles_claim as a list).
	RolesClaims []string
	ScopesClaim string // default: "scope" (space-separated) or "scp" (array)
	EmailClaim  string
	// Cookie, when set, is a cookie the access token may also come from.
	Cookie      string
	Revocations strategies.Revocations // optional
	Now         func() time.Time
	// CacheSize is how many verified tokens the cache holds without
	// evicting one (it may hold up to a quarter more, as its shards fill
	// unevenly); 0 = 10,000, negative = no cache.
	CacheSize int
	// OnCache, when set, is told of each verified-token cache lookup.
	OnCache func(hit bool)
}

// Verifier authenticates bearer JWTs; safe for concurrent use.
type Verifier struct {
	opts       Options
	parser     *gojwt.Parser
	rolesPath  strategies.ClaimPaths
	scopesPath strategies.ClaimPath // nil: "scope" (space-separated) or "scp" (array)
	cache      *tokenCache          // nil when disabled
}

// NewVerifier builds a Verifier.
func NewVerifier(o Options) (*Verifier, error) {
	if o.Keys == nil || o.Issuer == "" || o.Audience == "" || len(o.Algorithms) == 0 {
		return nil, errors.New("jwt strategy needs keys, issuer, audience and algorithms")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// The verifier's own defaults, for users of Options; a strategy built
	// from the config gets them from config.Strategy.Provision.
	if o.EmailClaim == "" {
		o.EmailClaim = config.DefaultEmailClaim
	}
	p := gojwt.NewParser(
		gojwt.WithValidMethods(o.Algorithms),
		gojwt.WithIssuer(o.Issuer),
		gojwt.WithAudience(o.Audience),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		gojwt.WithLeeway(o.Leeway),
		gojwt.WithTimeFunc(o.Now),
	)
	s := &Verifier{opts: o, parser: p, rolesPath: rolesPaths(o)}
	if o.ScopesClaim != "" {
		s.scopesPath = strategies.NewClaimPath(o.ScopesClaim, "")
	}
	if o.CacheSize >= 0 {
		if o.CacheSize == 0 {
			o.CacheSize = 10_000
		}
		s.cache = newTokenCache(o.CacheSize, 5*time.Minute)
	}
	return s, nil
}

// Challenge is the WWW-Authenticate challenge for a 401.
func (s *Verifier) Challenge() string { return `Bearer realm="authgateway"` }

// CredentialHeaders are the headers that carry this strategy's credential.
func (s *Verifier) CredentialHeaders() []string { return []string{"Authorization"} }

// CredentialCookie is the cookie that carries this strategy's credential, if any.
func (s *Verifier) CredentialCookie() string { return s.opts.Cookie }

// Authenticate implements strategies.Strategy.
func (s *Verifier) Authenticate(ctx context.Context, r *http.Request) (*strategies.Identity, error) {
	if raw, ok := strategies.BearerToken(r); ok {
		return s.Verify(ctx, raw)
	}
	if s.opts.Cookie == "" {
		return nil, strategies.ErrNoCredentials
	}
	c, err := r.Cookie(s.opts.Cookie)
	if err != nil || c.Value == "" {
		return nil, strategies.ErrNoCredentials
	}
	id, err := s.Verify(ctx, c.Value)
	if err != nil {
		return nil, err
	}
	// A copy: the verified identity may be cached and shared with requests
	// that sent the same token as a bearer token.
	fromCookie := *id
	fromCookie.FromCookie = true
	return &fromCookie, nil
}

// Verify checks a raw token and returns its identity.
func (s *Verifier) Verify(ctx context.Context, raw string) (*strategies.Identity, error) {
	if len(raw) > strategies.MaxTokenBytes {
		return nil, strategies.Invalid(strategies.ReasonOversizeToken, nil)
	}
	if s.cache != nil {
		id, ok := s.cache.get(raw, s.opts.Now())
		if s.opts.OnCache != nil {
			s.opts.OnCache(ok)
		}
		if ok {
			return s.notRevoked(ctx, id)
		}
	}
	if strings.Count(raw, ".") != 2 {
		return nil, strategies.Invalid(strategies.ReasonMalformedToken, nil)
	}
	var keyErr error
	keyFound := false
	tok, err := s.parser.Parse(raw, func(t *gojwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := s.opts.Keys.Key(ctx, kid, t.Method.Alg())
		keyErr, keyFound = err, err == nil
		return k, err
	})
	if err != nil {
		err = s.classify(err, keyErr)
		if ie := (*strategies.InvalidError)(nil); keyFound && errors.As(err, &ie) && ie.Reason != strategies.ReasonBadSignature {
			// Signed by one of our keys (the signature held) but refused:
			// no other strategy should take it.
			ie.Final = true
		}
		return nil, err
	}
	// The signature holds; now the bytes must have one reading only
	// (duplicate members, crit): a refusal is final, the token is the key
	// holder's.
	if err := jwscheck.Check(raw); err != nil {
		return nil, &strategies.InvalidError{Reason: jwscheck.Reason(err), Err: err, Final: true}
	}
	claims, ok := tok.Claims.(gojwt.MapClaims)
	if !ok {
		return nil, strategies.Invalid(strategies.ReasonMalformedToken, nil)
	}
	if reason := checkKind(tok, claims); reason != "" {
		return nil, &strategies.InvalidError{Reason: reason, Final: true}
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, strategies.Invalid(strategies.ReasonMissingSub, nil)
	}
	if s.opts.MaxLifetime > 0 {
		iat, _ := claims.GetIssuedAt()
		exp, _ := claims.GetExpirationTime()
		if iat == nil {
			return nil, strategies.Invalid(strategies.ReasonMissingIAT, nil)
		}
		if exp.Sub(iat.Time) > s.opts.MaxLifetime {
			return nil, strategies.Invalid(strategies.ReasonLifetimeTooLong, nil)
		}
	}
	id := &strategies.Identity{Subject: sub, Strategy: s.opts.Name, Claims: claims}
	if !strategies.EmailUnverified(claims) {
		id.Email, _ = claims[s.opts.EmailClaim].(string)
	}
	id.Roles = s.rolesPath.Strings(claims)
	id.Scopes = s.scopes(claims)
	id.ClientID, _ = claims["client_id"].(string)
	if id.ClientID == "" {
		id.ClientID, _ = claims["azp"].(string)
	}
	id.TokenID, _ = claims["jti"].(string)
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		id.ExpiresAt = exp.Time
	}
	if s.cache != nil {
		s.cache.put(raw, id, id.ExpiresAt, s.opts.Now())
	}
	return s.notRevoked(ctx, id)
}

// notRevoked consults the jti denylist; it runs for cached tokens too.
func (s *Verifier) notRevoked(ctx context.Context, id *strategies.Identity) (*strategies.Identity, error) {
	if s.opts.Revocations == nil || id.TokenID == "" {
		return id, nil
	}
	revoked, err := s.opts.Revocations.IsRevoked(ctx, id.TokenID)
	if err != nil {
		return nil, fmt.Errorf("checking token revocation: %w", err)
	}
	if revoked {
		return nil, &strategies.InvalidError{Reason: strategies.ReasonRevoked, Final: true}
	}
	return id, nil
}

// checkKind refuses tokens that are not access tokens: refresh tokens and ID
// tokens are signed by the same keys but must never open a route. It
// answers the reason, or "".
func checkKind(tok *gojwt.Token, claims gojwt.MapClaims) strategies.Reason {
	if typ, ok := tok.Header["typ"]; ok {
		ts, _ := typ.(string)
		if !AccessTokenType(ts) {
			return strategies.ReasonWrongTokenType
		}
	}
	if t, ok := claims["type"]; ok && t != "access" {
		return strategies.ReasonWrongTokenType
	}
	if t, ok := claims["token_use"]; ok && t != "access" { // AWS Cognito style
		return strategies.ReasonWrongTokenType
	}
	// ID tokens carry nonce / at_hash; an access token has no use for them.
	if _, ok := claims["nonce"]; ok {
		return strategies.ReasonIDToken
	}
	if _, ok := claims["at_hash"]; ok {
		return strategies.ReasonIDToken
	}
	return ""
}

// AccessTokenType reports whether typ, a JOSE header's typ, is one an
// access token may carry: JWT, or at+jwt (RFC 9068), in any case.
func AccessTokenType(typ string) bool {
	switch strings.ToLower(typ) {
	case "jwt", "at+jwt", "application/at+jwt":
		return true
	}
	return false
}

// tokenErrors map golang-jwt's errors to reasons, the first match winning.
var tokenErrors = []struct {
	err    error
	reason strategies.Reason
}{
	{gojwt.ErrTokenMalformed, strategies.ReasonMalformedToken},
	{gojwt.ErrTokenUnverifiable, strategies.ReasonUnknownKey},
	{gojwt.ErrTokenSignatureInvalid, strategies.ReasonBadSignature},
	{gojwt.ErrTokenExpired, strategies.ReasonExpired},
	{gojwt.ErrTokenRequiredClaimMissing, strategies.ReasonMissingClaim},
	{gojwt.ErrTokenInvalidIssuer, strategies.ReasonWrongIssuer},
	{gojwt.ErrTokenInvalidAudience, strategies.ReasonWrongAudience},
	{gojwt.ErrTokenNotValidYet, strategies.ReasonNotYetValid},
	{gojwt.ErrTokenUsedBeforeIssued, strategies.ReasonNotYetValid},
}

// classify turns a refusal of golang-jwt into an invalid credential with its
// reason, or a technical error when the key could not be fetched.
func (s *Verifier) classify(err, keyErr error) error {
	if keyErr != nil && !errors.Is(err, gojwt.ErrTokenSignatureInvalid) && isTechnical(keyErr) {
		return fmt.Errorf("fetching verification key: %w", keyErr)
	}
	for _, e := range tokenErrors {
		if errors.Is(err, e.err) {
			return strategies.Invalid(e.reason, nil)
		}
	}
	return strategies.Invalid(strategies.ReasonInvalidToken, nil)
}

// scopes reads the scopes claim: scopes_claim when configured, else
// "scope" (a space-separated string, RFC 9068) or "scp" (an array).
func (s *Verifier) scopes(claims map[string]any) []string {
	if s.scopesPath != nil {
		return strategies.StringList(s.scopesPath.Lookup(claims))
	}
	if sc, ok := claims["scope"].(string); ok {
		return strings.Fields(sc)
	}
	return strategies.StringList(claims["scp"])
}

var _ strategies.Strategy = (*Verifier)(nil)

// rolesPaths are the claims roles are read from: RolesClaims, else
// RolesClaim, else the default.
func rolesPaths(o Options) strategies.ClaimPaths {
	if len(o.RolesClaims) > 0 {
		return strategies.NewClaimPaths(o.RolesClaims, config.DefaultRolesClaim)
	}
	return strategies.NewClaimPaths([]string{o.RolesClaim}[:min(1, len(o.RolesClaim))], config.DefaultRolesClaim)
}
