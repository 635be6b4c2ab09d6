package jwt

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/strategies"

	"github.com/authgateway/authgateway/internal/jwscheck"
)

// fuzzKey is one real key of the fuzzed strategy: its kid, algorithm, the
// key that signs and the key that verifies.
type fuzzKey struct {
	kid    string
	method gojwt.SigningMethod
	sign   any
	verify any
}

func fuzzKeys() []fuzzKey {
	return []fuzzKey{
		{"hs", gojwt.SigningMethodHS256, hsSecret, hsSecret},
		{"hs384", gojwt.SigningMethodHS384, hsSecret, hsSecret},
		{"hs512", gojwt.SigningMethodHS512, hsSecret, hsSecret},
		{"rs", gojwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey},
		{"ps", gojwt.SigningMethodPS256, rsaKey, &rsaKey.PublicKey},
		{"es", gojwt.SigningMethodES256, ecKey, &ecKey.PublicKey},
		{"ed", gojwt.SigningMethodEdDSA, edKey, edKey.Public()},
	}
}

// fuzzStrategies are the strategy under test without and with its token
// cache: both must give the same answer for every token.
func fuzzStrategies(f *testing.F) (plain, cached *Verifier) {
	o := Options{
		Name: "jwt", Keys: keysForTest(),
		Algorithms: []string{"HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA"},
		Issuer:     "iss.example", Audience: "aud.example", Leeway: 30 * time.Second,
		MaxLifetime: 15 * time.Minute, RolesClaim: "realm_access.roles",
		Now: func() time.Time { return now }, CacheSize: -1,
	}
	plain, err := NewVerifier(o)
	if err != nil {
		f.Fatal(err)
	}
	o.CacheSize = 0
	if cached, err = NewVerifier(o); err != nil {
		f.Fatal(err)
	}
	return plain, cached
}

// independentlyValid is the oracle: the token verifies with the real key of
// its kid (pinned to that key's algorithm) using golang-jwt directly, and
// meets the access-token rules the strategy promises. It returns the claims.
func independentlyValid(raw string) (gojwt.MapClaims, bool) {
	keys := fuzzKeys()
	algs := make([]string, len(keys))
	for i, k := range keys {
		algs[i] = k.method.Alg()
	}
	tok, err := gojwt.Parse(raw, func(t *gojwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys {
			if k.kid == kid && k.method.Alg() == t.Method.Alg() {
				return k.verify, nil
			}
		}
		return nil, errors.New("no such key")
	}, gojwt.WithValidMethods(algs), gojwt.WithIssuer("iss.example"), gojwt.WithAudience("aud.example"),
		gojwt.WithExpirationRequired(), gojwt.WithIssuedAt(), gojwt.WithLeeway(30*time.Second),
		gojwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil || !tok.Valid {
		return nil, false
	}
	// One reading only: the check is fuzzed against a model of its own in
	// internal/jwscheck.
	if jwscheck.Check(raw) != nil {
		return nil, false
	}
	c := tok.Claims.(gojwt.MapClaims)
	if typ, ok := tok.Header["typ"]; ok {
		s, _ := typ.(string)
		if !slices.Contains([]string{"jwt", "at+jwt", "application/at+jwt"}, strings.ToLower(s)) {
			return nil, false
		}
	}
	for _, claim := range []string{"type", "token_use"} {
		if v, ok := c[claim]; ok && v != "access" {
			return nil, false
		}
	}
	for _, idTokenClaim := range []string{"nonce", "at_hash"} {
		if _, ok := c[idTokenClaim]; ok {
			return nil, false
		}
	}
	if sub, _ := c["sub"].(string); sub == "" {
		return nil, false
	}
	iat, _ := c.GetIssuedAt()
	exp, _ := c.GetExpirationTime()
	if iat == nil || exp == nil || exp.Sub(iat.Time) > 15*time.Minute {
		return nil, false
	}
	return c, true
}

// checkVerdict runs raw through both strategies and holds them to the
// oracle: an identity only for an independently valid token, and then the
// identity the token's claims state; a refusal is always strategies.ErrInvalidCredentials
// and never echoes the token.
func checkVerdict(t *testing.T, plain, cached *Verifier, raw string) {
	ctx := context.Background()
	id, err := plain.Verify(ctx, raw)
	if (id == nil) == (err == nil) {
		t.Fatalf("Verify(%q) = %v, %v: want exactly one of identity and error", raw, id, err)
	}
	for i := 0; i < 2; i++ { // the second call may be answered from the cache
		cid, cerr := cached.Verify(ctx, raw)
		if (cid == nil) != (id == nil) || (cid != nil && !sameIdentity(cid, id)) {
			t.Fatalf("cached Verify(%q) = %+v, %v; uncached = %+v, %v", raw, cid, cerr, id, err)
		}
	}
	claims, valid := independentlyValid(raw)
	if err != nil {
		if !errors.Is(err, strategies.ErrInvalidCredentials) {
			t.Fatalf("Verify(%q): error %v is not strategies.ErrInvalidCredentials", raw, err)
		}
		if len(raw) >= 8 && strings.Contains(err.Error(), raw) {
			t.Fatalf("Verify error %q echoes the token", err)
		}
		if valid {
			t.Fatalf("Verify(%q) refused a token golang-jwt verifies with the real key: %v", raw, err)
		}
		return
	}
	if !valid {
		t.Fatalf("Verify(%q) = %+v for a token that does not verify with the real key", raw, id)
	}
	sub, _ := claims["sub"].(string)
	jti, _ := claims["jti"].(string)
	email, _ := claims["email"].(string)
	// An email the token does not vouch for is dropped: email_verified
	// present, and neither true nor "true" (in any case).
	if v, ok := claims["email_verified"]; ok && v != true {
		if s, isString := v.(string); !isString || !strings.EqualFold(s, "true") {
			email = ""
		}
	}
	exp, _ := claims.GetExpirationTime()
	if id.Subject != sub || id.TokenID != jti || id.Email != email || !id.ExpiresAt.Equal(exp.Time) || id.Strategy != "jwt" {
		t.Fatalf("Verify(%q) = %+v; claims %v", raw, id, claims)
	}
}

func sameIdentity(a, b *strategies.Identity) bool {
	return a.Subject == b.Subject && a.Email == b.Email && a.ClientID == b.ClientID && a.Strategy == b.Strategy &&
		a.TokenID == b.TokenID && a.ExpiresAt.Equal(b.ExpiresAt) && slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Scopes, b.Scopes)
}

// fuzzTokenSeeds are valid tokens for every key and near misses: the
// fuzzer mutates real signatures, headers and payloads from here.
func fuzzTokenSeeds(f *testing.F) []string {
	mk := func(k fuzzKey, c gojwt.MapClaims, hdr map[string]any) string {
		tok := gojwt.NewWithClaims(k.method, c)
		tok.Header["kid"] = k.kid
		for h, v := range hdr {
			if v == nil {
				delete(tok.Header, h)
			} else {
				tok.Header[h] = v
			}
		}
		s, err := tok.SignedString(k.sign)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	var seeds []string
	for _, k := range fuzzKeys() {
		seeds = append(seeds, mk(k, claims(nil), nil), mk(k, claims(nil), map[string]any{"typ": "at+jwt"}))
	}
	hs := fuzzKeys()[0]
	valid := mk(hs, claims(nil), nil)
	p := strings.Split(valid, ".")
	seeds = append(seeds,
		mk(hs, claims(func(c gojwt.MapClaims) { c["type"] = "refresh" }), nil),
		mk(hs, claims(func(c gojwt.MapClaims) { c["nonce"] = "n" }), nil),
		mk(hs, claims(func(c gojwt.MapClaims) { c["exp"] = now.Add(time.Hour).Unix() }), nil),
		mk(hs, claims(func(c gojwt.MapClaims) { delete(c, "exp") }), nil),
		mk(hs, claims(func(c gojwt.MapClaims) { c["aud"] = []any{"x", "aud.example"} }), nil),
		mk(hs, claims(nil), map[string]any{"typ": "refresh+jwt"}),
		mk(hs, claims(nil), map[string]any{"kid": "rs"}),
		mk(hs, claims(nil), map[string]any{"kid": "../../dev/null"}),
		mk(hs, claims(nil), map[string]any{"jku": "http://127.0.0.1:1/jwks.json"}),
		p[0]+"."+p[1]+".",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"hs"}`))+"."+p[1]+".",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"rs"}`))+"."+p[1]+"."+p[2],
		p[0]+"."+p[1]+"."+p[2]+"=",
		p[0]+"."+p[1]+"x."+p[2],
		p[0]+".."+p[2],
		"..", "", "a.b.c", "e30.e30.", strings.Repeat("A", strategies.MaxTokenBytes+1),
	)
	return seeds
}

// FuzzJWTVerify: arbitrary token strings never panic the JWT strategy, and
// an identity comes only from a token that golang-jwt, used directly,
// verifies with the real key and that meets every access-token rule.
func FuzzJWTVerify(f *testing.F) {
	for _, s := range fuzzTokenSeeds(f) {
		f.Add(s)
	}
	plain, cached := fuzzStrategies(f)
	f.Fuzz(func(t *testing.T, raw string) {
		checkVerdict(t, plain, cached, raw)
	})
}

// FuzzJWTVerifySigned fuzzes what a random string almost never reaches:
// tokens with a correct signature by a real key over an arbitrary header and
// payload. The strategy must accept exactly the ones the oracle accepts.
func FuzzJWTVerifySigned(f *testing.F) {
	keys := fuzzKeys()
	for i, k := range keys {
		h := `{"alg":"` + k.method.Alg() + `","kid":"` + k.kid + `","typ":"JWT"}`
		f.Add(h, `{"iss":"iss.example","aud":"aud.example","sub":"alice","iat":1795694340,"exp":1795694940,"realm_access":{"roles":["admin"]}}`, uint8(i))
	}
	f.Add(`{"alg":"HS256","kid":"hs"}`, `{"iss":"iss.example","aud":["aud.example"],"sub":"a","iat":1795694340,"exp":1795694940,"type":"access","token_use":"access"}`, uint8(0))
	f.Add(`{"alg":"HS256","kid":"hs","typ":"at+JWT"}`, `{"iss":"iss.example","aud":"aud.example","sub":"a","iat":1795694340.5,"exp":1795695240,"nbf":1795694340}`, uint8(0))
	f.Add(`{"alg":"RS256","kid":"hs"}`, `{"iss":"iss.example","aud":"aud.example","sub":"a","iat":1795694340,"exp":1795694940}`, uint8(0))
	f.Add(`{"alg":"HS256","kid":"hs","typ":1}`, `{"iss":"iss.example","aud":"aud.example","sub":"a","iat":1795694340,"exp":1795694940,"type":null}`, uint8(0))
	plain, cached := fuzzStrategies(f)
	f.Fuzz(func(t *testing.T, header, payload string, which uint8) {
		k := keys[int(which)%len(keys)]
		input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		sig, err := k.method.Sign(input, k.sign)
		if err != nil {
			t.Fatalf("signing: %v", err)
		}
		checkVerdict(t, plain, cached, input+"."+base64.RawURLEncoding.EncodeToString(sig))
	})
}
