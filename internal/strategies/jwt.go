package strategies

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/jwscheck"
)

// MaxTokenBytes bounds the size of a bearer token we are willing to parse.
const MaxTokenBytes = 8 << 10

// KeySource returns the verification key for a token's kid and alg. It must
// refuse a key whose algorithm differs from alg (no algorithm confusion).
type KeySource interface {
	Key(ctx context.Context, kid, alg string) (any, error)
}

// Revocations reports whether an access token's jti was revoked (logout).
type Revocations interface {
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// JWTOptions configures a JWT strategy.
type JWTOptions struct {
	Name       string // the configured strategy name, reported in X-Auth-Strategy
	Keys       KeySource
	Algorithms []string
	Issuer     string
	Audience   string
	Leeway     time.Duration
	// MaxLifetime, when positive, refuses tokens whose exp-iat exceeds it (the
	// gateway's own tokens: tokens.access_ttl).
	MaxLifetime time.Duration
	RolesClaim  string // dotted path, e.g. realm_access.roles
	ScopesClaim string // default: "scope" (space-separated) or "scp" (array)
	EmailClaim  string
	// Cookie, when set, is a cookie the access token may also come from.
	Cookie      string
	Revocations Revocations // optional
	Now         func() time.Time
	// CacheSize bounds the verified-token cache (entries); 0 = 10,000,
	// negative = no cache.
	CacheSize int
	// OnCache, when set, is told of each verified-token cache lookup.
	OnCache func(hit bool)
}

// JWT authenticates bearer JWTs.
type JWT struct {
	opts      JWTOptions
	parser    *jwt.Parser
	rolesPath []string
	cache     *tokenCache // nil when disabled
}

// NewJWT builds a JWT strategy.
func NewJWT(o JWTOptions) (*JWT, error) {
	if o.Keys == nil || o.Issuer == "" || o.Audience == "" || len(o.Algorithms) == 0 {
		return nil, errors.New("jwt strategy needs keys, issuer, audience and algorithms")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RolesClaim == "" {
		o.RolesClaim = "roles"
	}
	if o.EmailClaim == "" {
		o.EmailClaim = "email"
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(o.Algorithms),
		jwt.WithIssuer(o.Issuer),
		jwt.WithAudience(o.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
		jwt.WithTimeFunc(o.Now),
	)
	s := &JWT{opts: o, parser: p, rolesPath: strings.Split(o.RolesClaim, ".")}
	if o.CacheSize >= 0 {
		if o.CacheSize == 0 {
			o.CacheSize = 10_000
		}
		s.cache = newTokenCache(o.CacheSize, 5*time.Minute)
	}
	return s, nil
}

// Challenge is the WWW-Authenticate challenge for a 401.
func (s *JWT) Challenge() string { return `Bearer realm="authgateway"` }

// CredentialHeaders are the headers that carry this strategy's credential.
func (s *JWT) CredentialHeaders() []string { return []string{"Authorization"} }

// CredentialCookie is the cookie that carries this strategy's credential, if any.
func (s *JWT) CredentialCookie() string { return s.opts.Cookie }

// Authenticate implements Strategy.
func (s *JWT) Authenticate(ctx context.Context, r *http.Request) (*Identity, error) {
	if raw, ok := bearerToken(r); ok {
		return s.Verify(ctx, raw)
	}
	if s.opts.Cookie == "" {
		return nil, ErrNoCredentials
	}
	c, err := r.Cookie(s.opts.Cookie)
	if err != nil || c.Value == "" {
		return nil, ErrNoCredentials
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
func (s *JWT) Verify(ctx context.Context, raw string) (*Identity, error) {
	if len(raw) > MaxTokenBytes {
		return nil, Invalid("oversize_token", nil)
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
		return nil, Invalid("malformed_token", nil)
	}
	var keyErr error
	keyFound := false
	tok, err := s.parser.Parse(raw, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := s.opts.Keys.Key(ctx, kid, t.Method.Alg())
		keyErr, keyFound = err, err == nil
		return k, err
	})
	if err != nil {
		err = s.classify(err, keyErr)
		if ie := (*InvalidError)(nil); keyFound && errors.As(err, &ie) && ie.Reason != "bad_signature" {
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
		return nil, &InvalidError{Reason: jwscheck.Reason(err), Err: err, Final: true}
	}
	claims, ok := tok.Claims.(jwt.MapClaims)
	if !ok {
		return nil, Invalid("malformed_token", nil)
	}
	if err := s.checkKind(tok, claims); err != nil {
		err.(*InvalidError).Final = true
		return nil, err
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, Invalid("missing_sub", nil)
	}
	if s.opts.MaxLifetime > 0 {
		iat, _ := claims.GetIssuedAt()
		exp, _ := claims.GetExpirationTime()
		if iat == nil {
			return nil, Invalid("missing_iat", nil)
		}
		if exp.Sub(iat.Time) > s.opts.MaxLifetime {
			return nil, Invalid("lifetime_too_long", nil)
		}
	}
	id := &Identity{Subject: sub, Strategy: s.opts.Name}
	if !EmailUnverified(claims) {
		id.Email, _ = claims[s.opts.EmailClaim].(string)
	}
	id.Roles = StringList(lookupPath(claims, s.rolesPath))
	id.Scopes = scopesOf(claims, s.opts.ScopesClaim)
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

// EmailUnverified reports whether claims hold an email_verified member that
// does not say true (true, or "true" as AWS Cognito sends it): false,
// "false", or anything else. Such an email is no identity: it is not
// forwarded, shown or matched. Without the member the claims say nothing,
// and the email is kept.
func EmailUnverified(claims map[string]any) bool {
	v, ok := claims["email_verified"]
	if !ok {
		return false
	}
	switch x := v.(type) {
	case bool:
		return !x
	case string:
		return !strings.EqualFold(x, "true")
	}
	return true
}

// notRevoked consults the jti denylist; it runs for cached tokens too.
func (s *JWT) notRevoked(ctx context.Context, id *Identity) (*Identity, error) {
	if s.opts.Revocations == nil || id.TokenID == "" {
		return id, nil
	}
	revoked, err := s.opts.Revocations.IsRevoked(ctx, id.TokenID)
	if err != nil {
		return nil, fmt.Errorf("checking token revocation: %w", err)
	}
	if revoked {
		return nil, &InvalidError{Reason: "revoked_token", Final: true}
	}
	return id, nil
}

// checkKind refuses tokens that are not access tokens: refresh tokens and ID
// tokens are signed by the same keys but must never open a route.
func (s *JWT) checkKind(tok *jwt.Token, claims jwt.MapClaims) error {
	if typ, ok := tok.Header["typ"]; ok {
		ts, _ := typ.(string)
		switch strings.ToLower(ts) {
		case "jwt", "at+jwt", "application/at+jwt":
		default:
			return Invalid("wrong_token_type", nil)
		}
	}
	if t, ok := claims["type"]; ok && t != "access" {
		return Invalid("wrong_token_type", nil)
	}
	if t, ok := claims["token_use"]; ok && t != "access" { // AWS Cognito style
		return Invalid("wrong_token_type", nil)
	}
	// ID tokens carry nonce / at_hash; an access token has no use for them.
	if _, ok := claims["nonce"]; ok {
		return Invalid("id_token", nil)
	}
	if _, ok := claims["at_hash"]; ok {
		return Invalid("id_token", nil)
	}
	return nil
}

func (s *JWT) classify(err, keyErr error) error {
	switch {
	case keyErr != nil && !errors.Is(err, jwt.ErrTokenSignatureInvalid) && isTechnical(keyErr):
		return fmt.Errorf("fetching verification key: %w", keyErr)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Invalid("malformed_token", nil)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return Invalid("unknown_key", nil)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Invalid("bad_signature", nil)
	case errors.Is(err, jwt.ErrTokenExpired):
		return Invalid("expired", nil)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Invalid("missing_claim", nil)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return Invalid("wrong_issuer", nil)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Invalid("wrong_audience", nil)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return Invalid("not_yet_valid", nil)
	default:
		return Invalid("invalid_token", nil)
	}
}

// TechnicalError marks a key-source failure that is not the token's fault
// (JWKS endpoint unreachable): the request fails closed, but it is not
// counted as the client's auth failure.
type TechnicalError interface{ Technical() bool }

func isTechnical(err error) bool {
	var t TechnicalError
	return errors.As(err, &t) && t.Technical()
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

func lookupPath(claims map[string]any, path []string) any {
	var cur any = claims
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// StringList reads a claim that is an array of strings, or one string of
// space- or comma-separated values (roles and scopes claims).
func StringList(v any) []string {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return slices.Clone(x)
	case string:
		return strings.FieldsFunc(x, func(r rune) bool { return r == ' ' || r == ',' })
	}
	return nil
}

func scopesOf(claims map[string]any, claim string) []string {
	if claim != "" {
		return StringList(lookupPath(claims, strings.Split(claim, ".")))
	}
	if s, ok := claims["scope"].(string); ok {
		return strings.Fields(s)
	}
	return StringList(claims["scp"])
}

var _ Strategy = (*JWT)(nil)
