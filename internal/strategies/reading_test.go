package strategies

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signRaw signs header and claims given as JSON text, byte for byte.
func signRaw(t *testing.T, m jwt.SigningMethod, key any, header, claims string) string {
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
		name, header, claims, reason string
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
			tok := signRaw(t, jwt.SigningMethodRS256, rsaKey, tt.header, tt.claims)
			for range 2 { // the second time would come from the cache
				id, err := s.Verify(context.Background(), tok)
				if tt.reason == "" {
					if err != nil || id.Subject != "alice" {
						t.Fatalf("Verify = %+v, %v; want alice", id, err)
					}
					continue
				}
				var ie *InvalidError
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
			tok := sign(t, jwt.SigningMethodHS256, "hs", hsSecret, claims(func(c jwt.MapClaims) {
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

// TestChainRefusesSpaceAround: a subject, email or client id with white
// space around it would read one way in the gateway and another after HTTP
// trimmed it: refused and counted, whichever strategy produced it.
func TestChainRefusesSpaceAround(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   Identity
		ok   bool
	}{
		{"clean", Identity{Subject: "root", Email: "root@example.com", ClientID: "console"}, true},
		{"space inside", Identity{Subject: "ro ot", Email: "r@example.com"}, true},
		{"leading space", Identity{Subject: " root"}, false},
		{"trailing spaces", Identity{Subject: "root  "}, false},
		{"no-break space", Identity{Subject: "root\u00a0"}, false},
		{"ideographic space", Identity{Subject: "\u3000root"}, false},
		{"line separator", Identity{Subject: "root\u2028"}, false},
		{"next line", Identity{Subject: "\u0085root"}, false},
		{"byte order mark", Identity{Subject: "\ufeffroot"}, false},
		{"zero-width space", Identity{Subject: "root\u200b"}, false},
		{"mongolian vowel separator", Identity{Subject: "\u180eroot"}, false},
		{"email", Identity{Subject: "root", Email: "root@example.com "}, false},
		{"client id", Identity{Subject: "root", ClientID: " console"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			res := Run(context.Background(), []Named{{"x", fixed{id: &id}}}, httptest.NewRequest("GET", "/", nil), false)
			if tc.ok != (res.Identity != nil) {
				t.Fatalf("identity %+v: got %+v, want accepted=%v", tc.id, res.Identity, tc.ok)
			}
			if !tc.ok && (!res.Invalid || res.Reason != "bad_identity_value") {
				t.Fatalf("invalid=%v reason=%q; want an invalid credential, bad_identity_value", res.Invalid, res.Reason)
			}
		})
	}
}
