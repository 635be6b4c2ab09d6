package jwscheck

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/strategies"
)

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func compact(header, payload string) string { return seg(header) + "." + seg(payload) + ".c2ln" }

func TestCheck(t *testing.T) {
	const head = `{"alg":"RS256","kid":"k1","typ":"at+jwt"}`
	const claims = `{"iss":"https://idp.example","sub":"alice","roles":["reader"],"exp":1900000000}`
	many := func(extra string) string {
		var b strings.Builder
		b.WriteString(`{`)
		for i := range 40 {
			fmt.Fprintf(&b, `"c%02d":%d,`, i, i)
		}
		b.WriteString(extra + `"z":0}`)
		return b.String()
	}
	tests := []struct {
		name            string
		header, payload string
		want            error
	}{
		{"plain token", head, claims, nil},
		{"nested objects and arrays", head, `{"sub":"a","realm_access":{"roles":["x","y"]},"groups":[{"id":1},{"id":2}],"n":null,"t":true,"f":false,"x":-1.5e+3}`, nil},
		{"same name in sibling objects", head, `{"a":{"id":1},"b":{"id":2},"id":3}`, nil},
		{"same name in parent and child", head, `{"id":{"id":{"id":1}}}`, nil},
		{"whitespace around", head, " \t\n{ \"sub\" : \"a\" }\r\n", nil},
		{"non-ASCII names that differ", head, `{"naïve":1,"naive":2,"über":3}`, nil},
		{"many members", head, many(""), nil},

		{"duplicate claim", head, `{"sub":"alice","sub":"root"}`, ErrDuplicateMember},
		{"duplicate, not adjacent", head, `{"sub":"alice","roles":["reader"],"exp":1,"sub":"root"}`, ErrDuplicateMember},
		{"duplicate with equal values", head, `{"sub":"alice","sub":"alice"}`, ErrDuplicateMember},
		{"duplicate in the header", `{"alg":"RS256","alg":"none"}`, claims, ErrDuplicateMember},
		{"duplicate nested", head, `{"realm_access":{"roles":["reader"],"roles":["admin"]}}`, ErrDuplicateMember},
		{"duplicate in an object in an array", head, `{"groups":[{"id":1},{"id":2,"id":3}]}`, ErrDuplicateMember},
		{"duplicate after a nested object closed", head, `{"a":{"b":1,"c":2},"a":3}`, ErrDuplicateMember},
		{"escaped duplicate", head, `{"sub":"alice","s\u0075b":"root"}`, ErrDuplicateMember},
		{"escaped solidus duplicate", head, `{"a/b":1,"a\/b":2}`, ErrDuplicateMember},
		{"case-folded duplicate", head, `{"sub":"alice","SUB":"root"}`, ErrDuplicateMember},
		{"long s folds to s", head, `{"sub":"alice","ſub":"root"}`, ErrDuplicateMember},
		{"Kelvin sign folds to k", head, `{"kid":"a","\u212aid":"b"}`, ErrDuplicateMember},
		{"invalid UTF-8 reads as U+FFFD", head, "{\"a\xff\":1,\"a\xfe\":2}", ErrDuplicateMember},
		{"lone surrogate reads as U+FFFD", head, `{"a\ud800":1,"a\ufffd":2}`, ErrDuplicateMember},
		{"duplicate among many members", head, many(`"C17":1,`), ErrDuplicateMember},
		{"duplicate of the last of many", head, many(`"Z":1,`), ErrDuplicateMember},

		{"crit", `{"alg":"RS256","crit":["exp"],"exp":1}`, claims, ErrCrit},
		{"crit b64", `{"alg":"RS256","crit":["b64"],"b64":true}`, claims, ErrCrit},
		{"empty crit", `{"alg":"RS256","crit":[]}`, claims, ErrCrit},
		{"crit in another case", `{"alg":"RS256","CRIT":["x"]}`, claims, ErrCrit},
		{"crit escaped", `{"alg":"RS256","\u0063rit":["x"]}`, claims, ErrCrit},
		{"crit nested in the header is no crit", `{"alg":"RS256","x":{"crit":1}}`, claims, nil},
		{"a crit claim is no header", head, `{"sub":"a","crit":["x"]}`, nil},

		{"trailing object", head, claims + `{"sub":"root"}`, ErrMalformed},
		{"trailing garbage", head, claims + `x`, ErrMalformed},
		{"empty payload", head, ``, ErrMalformed},
		{"unterminated string", head, `{"sub":"alice}`, ErrMalformed},
		{"control character in a string", head, "{\"sub\":\"a\x01\"}", ErrMalformed},
		{"bad escape", head, `{"sub":"\x"}`, ErrMalformed},
		{"short unicode escape", head, `{"sub":"\u12"}`, ErrMalformed},
		{"leading zero", head, `{"n":01}`, ErrMalformed},
		{"bare minus", head, `{"n":-}`, ErrMalformed},
		{"trailing comma", head, `{"a":1,}`, ErrMalformed},
		{"single quotes", head, `{'a':1}`, ErrMalformed},
		{"too deep", head, strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check(compact(tc.header, tc.payload)); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
		})
	}
	for _, raw := range []string{"", "abc", "a.b", seg(head) + ".!!!.sig", "!!!." + seg(claims) + ".sig"} {
		if err := Check(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("Check(%q) = %v, want ErrMalformed", raw, err)
		}
	}
	if err := Check(seg(head) + "==." + seg(claims) + ".sig"); err != nil {
		t.Errorf("padded segment: %v", err)
	}
	for err, want := range map[error]strategies.Reason{ErrDuplicateMember: "duplicate_member", ErrCrit: "unsupported_crit", ErrMalformed: "malformed_token"} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

// model is the oracle of the fuzz target: encoding/json's own tokenizer
// walks the text and every object's names (as encoding/json decodes them)
// are compared pairwise with bytes.EqualFold. It answers whether the text
// is one valid JSON value, whether some object holds two names that fold
// alike, how deep it nests, and whether crit is a top-level name.
func model(b []byte) (valid, dup bool, depth int, crit bool) {
	if !json.Valid(b) {
		return false, false, 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // 2e400 is valid JSON, and no float64
	type frame struct {
		object bool
		names  []string
		key    bool // the next token of an object is a name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true, dup, depth, crit
		}
		if err != nil {
			return false, false, 0, false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name := tok.(string)
			for _, n := range top.names {
				dup = dup || bytes.EqualFold([]byte(n), []byte(name))
			}
			crit = crit || (len(stack) == 1 && strings.EqualFold(name, "crit"))
			top.names = append(top.names, name)
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		depth = max(depth, len(stack))
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"sub":"alice","sub":"root"}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"x":1},{"x":1,"X":2}]}`,
		`{"s\u0075b":1,"sub":2}`, `{"ſ":1,"S":2}`, `{"crit":["b64"]}`, `{"alg":"RS256","kid":"k"}`,
		"{\"a\xff\":1,\"a\xfe\":2}", `{"a\ud800":1,"a\udc00":2}`, `[1,2,{"a":null}]`, `"x"`, `-0.5e-7`,
		`{"a":1}{"a":2}`, `{"n":01}`, strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s scanner
		err := s.check(b, false)
		herr := (&scanner{}).checkHeader(b)
		valid, dup, depth, crit := model(b)
		switch {
		case !valid:
			if err == nil || herr == nil {
				t.Fatalf("invalid JSON %q accepted (%v, %v)", b, err, herr)
			}
		case depth > maxDepth:
			if err == nil {
				t.Fatalf("%q nests %d deep, accepted", b, depth)
			}
		case dup != errors.Is(err, ErrDuplicateMember) || (!dup && err != nil):
			t.Fatalf("%q: Check = %v, model says duplicate=%v", b, err, dup)
		case crit && herr == nil:
			t.Fatalf("%q: header with crit accepted", b)
		case !crit && !dup && herr != nil:
			t.Fatalf("%q: header refused: %v", b, herr)
		}
	})
}

// checkHeader checks b as a JOSE header.
func (s *scanner) checkHeader(b []byte) error { return s.check(b, true) }

// BenchmarkCheck compares Check on a typical provider access token with the
// RS256 verification it follows (golang-jwt, 2048-bit key, claims decoded).
func BenchmarkCheck(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	claims := jwt.MapClaims{"iss": "https://idp.example.com/realms/app", "aud": []string{"gateway", "account"},
		"sub": "f1c2a3b4-1234-5678-9abc-def012345678", "exp": 1900000000, "iat": 1800000000, "nbf": 1800000000,
		"jti": "0b9c1f2e-aaaa-bbbb-cccc-123456789abc", "azp": "web", "scope": "openid email profile data:read",
		"email": "alice@example.com", "email_verified": true, "name": "Alice Example", "preferred_username": "alice",
		"given_name": "Alice", "family_name": "Example", "sid": "3f0b7d6c-1111-2222-3333-444455556666",
		"acr": "1", "typ": "Bearer", "allowed-origins": []string{"https://app.example.com"},
		"realm_access":    map[string]any{"roles": []string{"offline_access", "uma_authorization", "reader"}},
		"resource_access": map[string]any{"account": map[string]any{"roles": []string{"manage-account", "view-profile"}}}}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "k1"
	raw, err := tok.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := Check(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rs256_verify", func(b *testing.B) {
		b.ReportAllocs()
		p := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
		for b.Loop() {
			if _, err := p.Parse(raw, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
