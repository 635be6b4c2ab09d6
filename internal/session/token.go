package session

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/jwscheck"
	"github.com/authgateway/authgateway/internal/tokens"
)

// maxTokenBytes bounds what we parse; our tokens are far smaller.
const maxTokenBytes = 8 << 10

// maxIDLen bounds jti, fam and sid values (ours are 22 characters).
const maxIDLen = 128

type tokenKind int

const (
	kindAccess tokenKind = iota
	kindRefresh
)

// tokenCodec mints refresh tokens and verifies the gateway's own tokens.
type tokenCodec struct {
	iss    *tokens.Issuer
	parser *jwt.Parser
	now    func() time.Time
}

func newTokenCodec(iss *tokens.Issuer, algs []string, now func() time.Time) *tokenCodec {
	return &tokenCodec{iss: iss, now: now, parser: jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(iss.Issuer),
		jwt.WithAudience(iss.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		// Replicas' clocks may differ a little; iat from another replica
		// must not look like the future.
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(now),
	)}
}

// mintRefresh signs a refresh token: typ refresh+jwt and type "refresh", so
// that the jwt strategy never takes it for an access token.
func (c *tokenCodec) mintRefresh(sub, fam string, ttl time.Duration) (token, jti string, exp time.Time, err error) {
	now := c.now().Truncate(time.Second)
	exp = now.Add(min(ttl, c.iss.RefreshTTL))
	jti = tokens.NewID()
	token, err = c.iss.Keys.Sign(jwt.MapClaims{
		"iss": c.iss.Issuer, "aud": c.iss.Audience, "sub": sub,
		"iat": now.Unix(), "exp": exp.Unix(), "jti": jti, "fam": fam,
		"type": tokens.TypeRefresh,
	}, "refresh+jwt")
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("minting refresh token: %w", err)
	}
	return token, jti, exp, nil
}

// claims are what sessions need from a verified token.
type claims struct {
	id, subject, family string
	expiry              time.Time
}

// parse verifies one of the gateway's own tokens of the given kind. Every
// failure matches ErrInvalidToken.
func (c *tokenCodec) parse(ctx context.Context, raw string, kind tokenKind) (*claims, error) {
	if raw == "" || len(raw) > maxTokenBytes || strings.Count(raw, ".") != 2 {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	tok, err := c.parser.Parse(raw, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return c.iss.Keys.Key(ctx, kid, t.Method.Alg())
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	// Our own tokens never carry duplicate members or crit; one that does
	// was not minted by us as it reads.
	if err := jwscheck.Check(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	mc, ok := tok.Claims.(jwt.MapClaims)
	if !ok {
		return nil, fmt.Errorf("%w: claims", ErrInvalidToken)
	}
	typ, _ := tok.Header["typ"].(string)
	kindClaim, _ := mc["type"].(string)
	famClaim := "sid"
	switch kind {
	case kindRefresh:
		if typ != "refresh+jwt" || kindClaim != tokens.TypeRefresh {
			return nil, fmt.Errorf("%w: not a refresh token", ErrInvalidToken)
		}
		famClaim = "fam"
	default:
		if typ != "at+jwt" || kindClaim != tokens.TypeAccess {
			return nil, fmt.Errorf("%w: not an access token", ErrInvalidToken)
		}
	}
	out := &claims{}
	out.id, _ = mc["jti"].(string)
	out.subject, _ = mc["sub"].(string)
	out.family, _ = mc[famClaim].(string)
	if !validID(out.id) || out.subject == "" || (kind == kindRefresh && !validID(out.family)) ||
		(out.family != "" && !validID(out.family)) {
		return nil, fmt.Errorf("%w: missing jti, sub or family", ErrInvalidToken)
	}
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, fmt.Errorf("%w: exp", ErrInvalidToken)
	}
	out.expiry = exp.Time
	return out, nil
}

// validID accepts the ids we mint (base64url) and nothing that could
// confuse a Redis key or a pub/sub message.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
