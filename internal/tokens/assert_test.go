package tokens

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
)

func testAsserter(tb testing.TB) (*Asserter, *ecdsa.PrivateKey) {
	tb.Helper()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	priv, _ := writeKey(tb, p256)
	ks, err := LoadKeySet([]config.SigningKey{withPEM(tb, config.SigningKey{Kid: "k", Algorithm: "ES256", PrivateKeyFile: priv})})
	if err != nil {
		tb.Fatal(err)
	}
	return NewAsserter(ks, "gw", time.Minute), p256
}

// TestAssertionStatesItsOwnIdentity: an assertion is reused only for an
// identity that states exactly the same thing. Issue 14 finding 4: two
// tokens of one subject without jti (admin console, then a mobile app with
// fewer rights) got the first one's assertion, roles and all.
func TestAssertionStatesItsOwnIdentity(t *testing.T) {
	a, key := testAsserter(t)
	base := strategies.Identity{Subject: "alice", Email: "alice@example.com", Roles: []string{"admin"},
		Scopes: []string{"console"}, ClientID: "admin-console", Strategy: "jwt"}
	claimsOf := func(tok string) jwt.MapClaims {
		t.Helper()
		parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithAudience("app"))
		if err != nil {
			t.Fatal(err)
		}
		return parsed.Claims.(jwt.MapClaims)
	}
	first, err := a.Assert(&base, "app")
	if err != nil {
		t.Fatal(err)
	}
	variants := []struct {
		name   string
		change func(*strategies.Identity)
		claim  string
		want   any
	}{
		{"fewer roles", func(id *strategies.Identity) { id.Roles = []string{"reader"} }, "roles", []any{"reader"}},
		{"no roles", func(id *strategies.Identity) { id.Roles = nil }, "roles", nil},
		{"roles split differently", func(id *strategies.Identity) { id.Roles = []string{"ad", "min"} }, "roles", []any{"ad", "min"}},
		{"other scopes", func(id *strategies.Identity) { id.Scopes = []string{"mobile"} }, "scope", "mobile"},
		{"other email", func(id *strategies.Identity) { id.Email = "alice@mobile.example" }, "email", "alice@mobile.example"},
		{"no email", func(id *strategies.Identity) { id.Email = "" }, "email", nil},
		{"other client", func(id *strategies.Identity) { id.ClientID = "mobile" }, "client_id", "mobile"},
		{"other strategy", func(id *strategies.Identity) { id.Strategy = "sso" }, "strategy", "sso"},
		{"other subject", func(id *strategies.Identity) { id.Subject = "bob" }, "sub", "bob"},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			id := base
			id.Roles, id.Scopes = slices.Clone(base.Roles), slices.Clone(base.Scopes)
			v.change(&id)
			tok, err := a.Assert(&id, "app")
			if err != nil {
				t.Fatal(err)
			}
			if tok == first {
				t.Fatalf("identity with %s got the assertion of another identity", v.name)
			}
			got := claimsOf(tok)[v.claim]
			if !equalClaim(got, v.want) {
				t.Fatalf("assertion %s = %v, want %v", v.claim, got, v.want)
			}
			// And the first identity still gets its own.
			if again, _ := a.Assert(&base, "app"); claimsOf(again)["roles"].([]any)[0] != "admin" {
				t.Fatal("the first identity's assertion changed")
			}
		})
	}
	// The same statement is reused, even from a fresh copy.
	current, _ := a.Assert(&base, "app")
	same := base
	same.Roles = []string{"admin"}
	if tok, _ := a.Assert(&same, "app"); tok != current {
		t.Error("an identical identity did not reuse the assertion")
	}
	// Mutating the caller's slices afterwards cannot change what the cache
	// believes the assertion states.
	same.Roles[0] = "reader"
	if tok, _ := a.Assert(&same, "app"); tok == current || claimsOf(tok)["roles"].([]any)[0] != "reader" {
		t.Error("cached entry aliases the caller's roles slice")
	}
}

func equalClaim(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case []any:
		g, ok := got.([]any)
		return ok && slices.Equal(g, w)
	default:
		return got == want
	}
}

// BenchmarkAssert measures a reused assertion (one identity, many requests)
// against minting one (a new identity each time).
func BenchmarkAssert(b *testing.B) {
	a, _ := testAsserter(b)
	id := &strategies.Identity{Subject: "alice", Email: "alice@example.com", Roles: []string{"admin", "reader"},
		Scopes: []string{"read", "write"}, ClientID: "console", Strategy: "jwt", TokenID: "jti-1"}
	b.Run("cached", func(b *testing.B) {
		if _, err := a.Assert(id, "app"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Assert(id, "app"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := *id
			id.Subject = "user-" + strconv.Itoa(i)
			i++
			if _, err := a.Assert(&id, "app"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
