package jwt

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/strategies"
)

// signRaw signs header and claims given as JSON text, byte for byte.
func signRaw(t *testing.T, m gojwt.SigningMethod, key any, header, claims string) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	sig, err := m.Sign(input, key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestJWTOneReading: a correctly signed token whose JSON can be read two
// ways, or that makes an extension critical, is refused, finally (no later
// strategy may take it), and never cached.
func TestJWTOneReading(t *testing.T) {
	s := newTestJWT(t, nil)
	body := func(more string) string {
		return fmt.Sprintf(`{"iss":"iss.example","aud":"aud.example","sub":"alice","iat":%d,"exp":%d,"realm_access":{"roles":["reader"]}%s}`,
			now.Add(-time.Minute).Unix(), now.Add(10*time.Minute).Unix(), more)
	}
	const head = `{"alg":"RS256","kid":"rs","typ":"JWT"}`
	tests := []struct {
		name, header, claims string
		reason               strategies.Reason
	}{
		{"control", head, body(""), ""},
		{"sub twice", head, body(`,"sub":"root"`), "duplicate_member"},
		{"roles twice, nested", head, body(`,"realm_access":{"roles":["reader"],"roles":["admin"]}`), "duplicate_member"},
		{"escaped name", head, body(`,"s\u0075b":"root"`), "duplicate_member"},
		{"names differing in case", head, body(`,"Sub":"root"`), "duplicate_member"},
		{"kid twice", `{"alg":"RS256","kid":"rs","kid":"rs"}`, body(""), "duplicate_member"},
		{"alg twice", `{"alg":"none","alg":"RS256","kid":"rs"}`, body(""), "duplicate_member"},
		{"crit", `{"alg":"RS256","kid":"rs","crit":["x"],"x":1}`, body(""), "unsupported_crit"},
		{"crit b64", `{"alg":"RS256","kid":"rs","crit":["b64"],"b64":true}`, body(""), "unsupported_crit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := signRaw(t, gojwt.SigningMethodRS256, rsaKey, tt.header, tt.claims)
			for range 2 { // the second time would come from the cache
				id, err := s.Verify(context.Background(), tok)
				if tt.reason == "" {
					if err != nil || id.Subject != "alice" {
						t.Fatalf("Verify = %+v, %v; want alice", id, err)
					}
					continue
				}
				var ie *strategies.InvalidError
				if !errors.As(err, &ie) || ie.Reason != tt.reason || !ie.Final {
					t.Fatalf("Verify = %+v, %v; want a final refusal %s", id, err, tt.reason)
				}
			}
		})
	}
}

// TestJWTUnverifiedEmail: an email whose token says it is not verified is
// not part of the identity; one the token says nothing about is.
func TestJWTUnverifiedEmail(t *testing.T) {
	s := newTestJWT(t, nil)
	for _, tc := range []struct {
		name     string
		verified any // nil: no email_verified claim
		want     string
	}{
		{"no claim", nil, "alice@example.com"},
		{"true", true, "alice@example.com"},
		{`"true"`, "true", "alice@example.com"},
		{`"TRUE"`, "TRUE", "alice@example.com"},
		{"false", false, ""},
		{`"false"`, "false", ""},
		{`"no"`, "no", ""},
		{"0", 0, ""},
		{"null", "null-json", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, gojwt.SigningMethodHS256, "hs", hsSecret, claims(func(c gojwt.MapClaims) {
				switch tc.verified {
				case nil:
				case "null-json":
					c["email_verified"] = nil
				default:
					c["email_verified"] = tc.verified
				}
			}), nil)
			id, err := s.Verify(context.Background(), tok)
			if err != nil || id.Email != tc.want {
				t.Fatalf("Verify = %+v, %v; want email %q", id, err, tc.want)
			}
		})
	}
}
