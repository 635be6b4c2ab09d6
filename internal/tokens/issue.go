package tokens

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/config"
)

// Token types, in the "type" claim and the typ header, so that a refresh token
// can never pass as an access token.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"

	typAccess  = "at+jwt"
	typRefresh = "refresh+jwt"
)

// Issuer mints the gateway's own tokens.
type Issuer struct {
	Keys       *KeySet
	Issuer     string
	Audience   string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	Now        func() time.Time
}

// NewIssuer builds an Issuer from the tokens section.
func NewIssuer(cfg config.Tokens) (*Issuer, error) {
	ks, err := LoadKeySet(cfg.SigningKeys)
	if err != nil {
		return nil, err
	}
	return &Issuer{Keys: ks, Issuer: cfg.Issuer, Audience: cfg.Audience,
		AccessTTL: cfg.AccessTTL.D(), RefreshTTL: cfg.RefreshTTL.D(), Now: time.Now}, nil
}

// AccessClaims describes the subject of a new access token.
type AccessClaims struct {
	Subject string
	Email   string
	Roles   []string
	Scopes  []string
	// TTL overrides AccessTTL when positive (never longer than AccessTTL).
	TTL time.Duration
	// SessionID ties the token to a refresh-token family (login sessions).
	SessionID string
}

// Access mints an access token; it returns the token, its jti and expiry.
func (i *Issuer) Access(c AccessClaims) (token, jti string, exp time.Time, err error) {
	ttl := i.AccessTTL
	if c.TTL > 0 && c.TTL < ttl {
		ttl = c.TTL
	}
	now := i.Now().Truncate(time.Second)
	exp = now.Add(ttl)
	jti = NewID()
	claims := jwt.MapClaims{
		"iss": i.Issuer, "aud": i.Audience, "sub": c.Subject,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
		"jti": jti, "type": TypeAccess,
	}
	addIdentityClaims(claims, c.Email, c.Roles, c.Scopes)
	if c.SessionID != "" {
		claims["sid"] = c.SessionID
	}
	token, err = i.Keys.Sign(claims, typAccess)
	return token, jti, exp, err
}

// addIdentityClaims sets email, roles and scope (space-separated, RFC 8693
// style) when they are known.
func addIdentityClaims(claims jwt.MapClaims, email string, roles, scopes []string) {
	if email != "" {
		claims["email"] = email
	}
	if len(roles) > 0 {
		claims["roles"] = roles
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
}

// NewID returns 128 random bits, base64url: token ids, family ids.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
