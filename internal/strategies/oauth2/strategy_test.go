package oauth2

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/clocktest"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

func TestAcceptsTokens(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	tests := []struct {
		name, client, secret string
		introspections       int64 // requests the provider gets for it
	}{
		{"opaque", oidctest.ServiceClientID, oidctest.ServiceClientSecret, 1},
		{"jwt", oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStrategy(t, gatewayConfig(p, time.Minute), strategies.Deps{})
			tok := p.ClientCredentialsToken(t, tt.client, tt.secret, "data:read", "data:write")
			before := p.IntrospectionRequests()
			id := mustAccept(t, s, tok)
			if id.Subject != tt.client || id.ClientID != tt.client || id.Strategy != testName ||
				!slices.Equal(id.Scopes, []string{"data:read", "data:write"}) ||
				!slices.Equal(id.Roles, []string{oidctest.ServiceRole}) || id.Email != "" {
				t.Fatalf("identity = %+v", id)
			}
			if until := time.Until(id.ExpiresAt); until <= 0 || until > 6*time.Minute {
				t.Fatalf("ExpiresAt = %v; want within the token's 5m lifetime", id.ExpiresAt)
			}
			if id.TokenID == "" {
				t.Errorf("TokenID is empty; want the token's jti")
			}
			if got := p.IntrospectionRequests() - before; got != tt.introspections {
				t.Fatalf("introspection requests = %d; want %d", got, tt.introspections)
			}
		})
	}
	t.Run("user token", func(t *testing.T) {
		s := newStrategy(t, gatewayConfig(p, time.Minute), strategies.Deps{})
		access, _ := userTokens(t, p)
		id := mustAccept(t, s, access)
		if id.Subject != oidctest.UserID || id.ClientID != oidctest.GatewayClientID ||
			id.Email != oidctest.UserEmail || !slices.Equal(id.Roles, []string{oidctest.UserRole}) ||
			!slices.Contains(id.Scopes, "email") {
			t.Fatalf("identity = %+v", id)
		}
	})
	t.Run("dotted roles claim and custom scopes claim", func(t *testing.T) {
		sc := gatewayConfig(p, time.Minute)
		sc.RolesClaim, sc.ScopesClaim = config.ClaimNames{"missing.roles"}, "roles"
		s := newStrategy(t, sc, strategies.Deps{})
		tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read")
		id := mustAccept(t, s, tok)
		if len(id.Roles) != 0 || !slices.Equal(id.Scopes, []string{oidctest.ServiceRole}) {
			t.Fatalf("identity = %+v; want no roles and scopes from the roles claim", id)
		}
	})
}

func TestNoCredentials(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	s := newStrategy(t, gatewayConfig(p, time.Minute), strategies.Deps{})
	tests := []struct{ name, header string }{
		{"none", ""},
		{"basic", "Basic Z2F0ZXdheTpzZWNyZXQ="},
		{"empty bearer", "Bearer "},
		{"bearer without space", "Bearerabc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://gw.test/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			id, err := s.Authenticate(context.Background(), r)
			if id != nil || !errors.Is(err, strategies.ErrNoCredentials) {
				t.Fatalf("Authenticate = %+v, %v; want ErrNoCredentials", id, err)
			}
		})
	}
	if got := p.IntrospectionRequests(); got != 0 {
		t.Fatalf("introspection requests = %d; want 0", got)
	}
}

func TestRevokedToken(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	svc := func() string {
		return p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	}

	t.Run("cached answer serves until its entry ends", func(t *testing.T) {
		s := newStrategy(t, gatewayConfig(p, time.Hour), strategies.Deps{})
		tok := svc()
		mustAccept(t, s, tok)
		p.Revoke(t, tok)
		mustAccept(t, s, tok) // the documented cost of cache_ttl
	})
	t.Run("refused once the entry expired (cache_ttl 1s)", func(t *testing.T) {
		s := newStrategy(t, gatewayConfig(p, time.Second), strategies.Deps{})
		tok := svc()
		mustAccept(t, s, tok)
		p.Revoke(t, tok)
		poll.Until(t, 20*time.Second, "revoked token", func() error {
			id, err := authenticate(s, tok)
			if errors.Is(err, strategies.ErrInvalidCredentials) && id == nil {
				if r := reasonOf(err); r != "inactive" {
					return fmt.Errorf("reason %q; want inactive", r)
				}
				return nil
			}
			return fmt.Errorf("Authenticate = %+v, %v", id, err)
		})
	})
	t.Run("refused at once with cache_ttl 0s", func(t *testing.T) {
		s := newStrategy(t, gatewayConfig(p, 0), strategies.Deps{})
		tok := svc()
		mustAccept(t, s, tok)
		mustAccept(t, s, tok)
		p.Revoke(t, tok)
		wantInvalid(t, s, tok)
	})
}

// TestExpiredTokens: a token is accepted while young (which also fills the
// caches), and refused once exp has passed: no cache outlives its token.
// The provider and the gateway share one clock that the test moves (by less
// than the cache TTL, so that an entry kept for CacheTTL would still answer).
func TestExpiredTokens(t *testing.T) {
	const ttl = 10 * time.Second
	clk := &clocktest.Offset{}
	p := oidctest.Start(t, oidctest.Options{AccessTokenTTL: ttl, Now: clk.Now})
	sc := gatewayConfig(p, time.Minute)
	sc.Leeway = 0
	s := newStrategy(t, sc, strategies.Deps{Now: clk.Now})
	for _, c := range []struct{ name, id, secret string }{
		{"opaque", oidctest.ServiceClientID, oidctest.ServiceClientSecret},
		{"jwt", oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := p.ClientCredentialsToken(t, c.id, c.secret)
			if _, err := authenticate(s, tok); err != nil {
				t.Fatalf("fresh token: %v", err)
			}
			clk.Advance(ttl + time.Second)
			if id, err := authenticate(s, tok); id != nil || !errors.Is(err, strategies.ErrInvalidCredentials) {
				t.Fatalf("expired token: Authenticate = %+v, %v; want ErrInvalidCredentials", id, err)
			}
		})
	}
}

// jwksKid answers the kid of the provider's signing key.
func jwksKid(t *testing.T, p *oidctest.Provider) string {
	t.Helper()
	resp, err := http.Get(p.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ks); err != nil || len(ks.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	return ks.Keys[0].Kid
}

// sign makes a JWT with the given header fields and claims.
func sign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRefusedTokens(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	other := oidctest.Start(t, oidctest.Options{}) // another issuer, same client names
	p.AddClient(oidctest.Client{ID: "svc-other-jwt", Secret: "svc-other-jwt-secret", ClientCredentials: true,
		JWTAccessTokens: true, Audience: []string{"other-api"}})
	s := newStrategy(t, gatewayConfig(p, time.Minute), strategies.Deps{})
	noAud := gatewayConfig(p, time.Minute)
	noAud.Audience = "" // JWTs then need aud = client_id
	sNoAud := newStrategy(t, noAud, strategies.Deps{})

	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kid := jwksKid(t, p)
	now := time.Now()
	good := jwt.MapClaims{"iss": p.Issuer, "sub": "svc", "aud": oidctest.GatewayClientID,
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "scope": "data:read"}
	_, idToken := userTokens(t, p)
	b64 := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name   string
		s      *Strategy
		token  string
		reason strategies.Reason // "" = any invalid reason
	}{
		{"opaque for another audience", s,
			p.ClientCredentialsToken(t, oidctest.OtherClientID, oidctest.OtherClientSecret), "wrong_audience"},
		{"jwt for another audience", s,
			p.ClientCredentialsToken(t, "svc-other-jwt", "svc-other-jwt-secret"), "wrong_audience"},
		{"jwt for another audience, audience defaults to client_id", sNoAud,
			p.ClientCredentialsToken(t, "svc-other-jwt", "svc-other-jwt-secret"), "wrong_audience"},
		{"opaque from another issuer", s,
			other.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret), "inactive"},
		{"jwt from another issuer", s,
			other.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret), "unknown_key"},
		{"forged jwt with the provider's kid", s,
			sign(t, jwt.SigningMethodRS256, forger, map[string]any{"kid": kid}, good), "bad_signature"},
		{"unsigned jwt (alg none)", s,
			b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"svc"}`)) + ".", "inactive"},
		{"hmac jwt keyed with the client secret", s,
			sign(t, jwt.SigningMethodHS256, []byte(oidctest.GatewayClientSecret), map[string]any{"kid": kid}, good), "inactive"},
		{"id token as access token", s, idToken, "id_token"},
		{"garbage", s, "garbage", "inactive"},
		{"three garbage parts", s, "a.b.c", "inactive"},
		{"jwt header, garbage body", s, b64([]byte(`{"alg":"RS256","kid":"`+kid+`"}`)) + ".!!!.!!!", "malformed_token"},
		{"space inside", s, "abc def", "malformed_token"},
		{"control character", s, "abc\x01def", "malformed_token"},
		{"oversize", s, strings.Repeat("a", strategies.MaxTokenBytes+1), "oversize_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wantInvalid(t, tt.s, tt.token)
			if got := reasonOf(err); tt.reason != "" && got != tt.reason {
				t.Fatalf("reason = %q; want %q (%v)", got, tt.reason, err)
			}
		})
	}
	t.Run("no introspection for the provider's jwts", func(t *testing.T) {
		before := p.IntrospectionRequests()
		for _, tok := range []string{idToken, sign(t, jwt.SigningMethodRS256, forger, map[string]any{"kid": kid}, good)} {
			wantInvalid(t, s, tok)
		}
		if got := p.IntrospectionRequests() - before; got != 0 {
			t.Fatalf("introspection requests = %d; want 0", got)
		}
	})
	t.Run("jwt of the right audience is accepted with the client_id default", func(t *testing.T) {
		mustAccept(t, sNoAud, p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret))
	})
}

func TestProviderDown(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	s := newStrategy(t, gatewayConfig(p, time.Minute), strategies.Deps{})
	cachedOpaque := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	cachedJWT := p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret)
	freshOpaque := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	freshJWT := p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret)
	mustAccept(t, s, cachedOpaque)
	mustAccept(t, s, cachedJWT)

	p.Stop()
	mustAccept(t, s, cachedOpaque) // within cache_ttl
	mustAccept(t, s, cachedJWT)
	mustAccept(t, s, freshJWT) // the key set fetched before still verifies it
	for range 3 {
		wantTechnical(t, s, freshOpaque)
	}
	// A JWT whose kid is unknown would need a key set fetch: technical too,
	// not an invalid token (the provider may have rotated its keys).
	other := oidctest.Start(t, oidctest.Options{})
	foreign := other.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret)
	if id, err := authenticate(s, foreign); id != nil || err == nil {
		t.Fatalf("unknown kid while the provider is down = %+v, %v; want an error", id, err)
	}

	p.Restart()
	id := mustAccept(t, s, freshOpaque)
	if id.Subject != oidctest.ServiceClientID {
		t.Fatalf("after restart: identity %+v", id)
	}
}

func TestOneIntrospectionPerToken(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			p := oidctest.Start(t, oidctest.Options{})
			var deps strategies.Deps
			if backend == "redis" {
				srv := redistest.Start(t)
				rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
				t.Cleanup(func() { _ = rc.Close() })
				deps.Redis = rc
			}
			s := newStrategy(t, gatewayConfig(p, time.Minute), deps)
			tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
			const workers, each = 20, 50 // 1,000 requests
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for range workers {
				wg.Go(func() {
					for range each {
						if id, err := authenticate(s, tok); err != nil || id.Subject != oidctest.ServiceClientID {
							errs <- fmt.Errorf("Authenticate = %+v, %v", id, err)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if got := p.IntrospectionRequests(); got != 1 {
				t.Fatalf("introspection requests = %d; want 1", got)
			}
		})
	}
}

func TestDiscoveryFailureAtStartup(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	jwtTok := p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret)
	p.Stop()

	clk := &clocktest.Offset{}
	s := newStrategy(t, gatewayConfig(p, time.Minute), strategies.Deps{Now: clk.Now}) // must not fail
	for _, tk := range []string{tok, jwtTok, "garbage"} {
		wantTechnical(t, s, tk)
	}

	p.Restart()
	// Retries are rate limited: within the interval the last failure stands.
	wantTechnical(t, s, tok)
	clk.Advance(idp.RetryInterval)
	mustAccept(t, s, tok)
	mustAccept(t, s, jwtTok)
	wantInvalid(t, s, "garbage")

	t.Run("provider still down at the retry", func(t *testing.T) {
		p2 := oidctest.Start(t, oidctest.Options{})
		p2.Stop()
		clk := &clocktest.Offset{}
		s := newStrategy(t, gatewayConfig(p2, time.Minute), strategies.Deps{Now: clk.Now})
		for range 3 {
			clk.Advance(idp.RetryInterval)
			wantTechnical(t, s, tok)
		}
	})
}

func TestDiscoveryChecks(t *testing.T) {
	t.Run("issuer mismatch fails Start", func(t *testing.T) {
		p := oidctest.Start(t, oidctest.Options{Host: "localhost"})
		sc := gatewayConfig(p, time.Minute)
		sc.IssuerURL = "http://" + p.Addr // 127.0.0.1: the provider names localhost
		if _, err := build(sc, strategies.Deps{}); !errors.Is(err, idp.ErrIssuerMismatch) {
			t.Fatalf("New and Start = %v; want an issuer mismatch", err)
		}
	})
	t.Run("explicit introspection_url wins", func(t *testing.T) {
		p := oidctest.Start(t, oidctest.Options{})
		elsewhere := oidctest.Start(t, oidctest.Options{})
		sc := gatewayConfig(p, time.Minute)
		sc.IntrospectionURL = elsewhere.IntrospectionURL
		s := newStrategy(t, sc, strategies.Deps{})
		tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
		wantInvalid(t, s, tok)
		if p.IntrospectionRequests() != 0 || elsewhere.IntrospectionRequests() != 1 {
			t.Fatalf("introspections: discovered %d, explicit %d; want 0, 1",
				p.IntrospectionRequests(), elsewhere.IntrospectionRequests())
		}
	})
	t.Run("explicit jwks_url wins", func(t *testing.T) {
		p := oidctest.Start(t, oidctest.Options{})
		elsewhere := oidctest.Start(t, oidctest.Options{})
		sc := gatewayConfig(p, time.Minute)
		sc.JWKSURL = elsewhere.JWKSURL
		s := newStrategy(t, sc, strategies.Deps{})
		tok := p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret)
		wantInvalid(t, s, tok)
		if p.JWKSRequests() != 0 || elsewhere.JWKSRequests() == 0 {
			t.Fatalf("jwks fetches: discovered %d, explicit %d", p.JWKSRequests(), elsewhere.JWKSRequests())
		}
	})
	t.Run("no discovery when every URL is explicit", func(t *testing.T) {
		p := oidctest.Start(t, oidctest.Options{})
		sc := gatewayConfig(p, time.Minute)
		sc.IssuerURL = "http://127.0.0.1:1" // nothing listens; never asked
		sc.Issuer = ""
		sc.IntrospectionURL, sc.JWKSURL = p.IntrospectionURL, p.JWKSURL
		s := newStrategy(t, sc, strategies.Deps{})
		// The tokens' iss is the provider's, not issuer_url: refused.
		tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
		if got := reasonOf(func() error { _, err := authenticate(s, tok); return err }()); got != "wrong_issuer" {
			t.Fatalf("reason = %q; want wrong_issuer", got)
		}
	})
	t.Run("introspection only, without issuer_url", func(t *testing.T) {
		p := oidctest.Start(t, oidctest.Options{})
		sc := gatewayConfig(p, time.Minute)
		sc.IssuerURL, sc.IntrospectionURL = "", p.IntrospectionURL
		s := newStrategy(t, sc, strategies.Deps{})
		// JWTs are introspected too when no key set is configured.
		for _, c := range [][2]string{{oidctest.ServiceClientID, oidctest.ServiceClientSecret},
			{oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret}} {
			mustAccept(t, s, p.ClientCredentialsToken(t, c[0], c[1]))
		}
		if got := p.IntrospectionRequests(); got != 2 {
			t.Fatalf("introspection requests = %d; want 2", got)
		}
	})
	t.Run("without client_secret only JWTs", func(t *testing.T) {
		p := oidctest.Start(t, oidctest.Options{})
		sc := gatewayConfig(p, time.Minute)
		sc.ClientSecret = ""
		s := newStrategy(t, sc, strategies.Deps{})
		mustAccept(t, s, p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret))
		err := wantInvalid(t, s, p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret))
		if got := reasonOf(err); got != "unverifiable_token" {
			t.Fatalf("reason = %q; want unverifiable_token", got)
		}
	})
}

func TestNewConfigErrors(t *testing.T) {
	base := func() *config.Strategy {
		return &config.Strategy{Type: "oauth2", IssuerURL: "http://127.0.0.1:1", ClientID: "gw", ClientSecret: "s"}
	}
	tests := []struct {
		name string
		mod  func(*config.Strategy)
	}{
		{"no client_id", func(sc *config.Strategy) { sc.ClientID = "" }},
		{"no endpoints", func(sc *config.Strategy) { sc.IssuerURL = "" }},
		{"hmac algorithm", func(sc *config.Strategy) { sc.Algorithms = []string{"RS256", "HS256"} }},
		{"jwks_url without issuer", func(sc *config.Strategy) { sc.IssuerURL, sc.JWKSURL = "", "http://127.0.0.1:1/keys" }},
		{"bad introspection_url", func(sc *config.Strategy) {
			sc.IssuerURL, sc.IntrospectionURL, sc.Issuer = "", "ftp://x", "http://i"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := base()
			tt.mod(sc)
			if s, err := New(testName, sc, strategies.Deps{}); err == nil {
				t.Fatalf("New = %v; want an error", s)
			}
		})
	}
	if _, err := New(testName, nil, strategies.Deps{}); err == nil {
		t.Fatal("New(nil config) succeeded")
	}
}

func TestProviderJWT(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	tok := func(header string) string { return b64([]byte(header)) + ".e30.c2ln" }
	tests := []struct {
		token string
		want  bool
	}{
		{tok(`{"alg":"RS256","kid":"k"}`), true},
		{tok(`{"alg":"ES256","typ":"at+jwt"}`), true},
		{tok(`{"alg":"EdDSA","typ":"JWT"}`), true},
		{tok(`{"alg":"PS256","typ":"application/at+JWT"}`), true},
		{tok(`{"alg":"RS256"}`), false},                  // neither kid nor typ
		{tok(`{"alg":"RS256","typ":"dpop+jwt"}`), false}, // not a token type of ours
		{tok(`{"alg":"HS256","kid":"k"}`), false},
		{tok(`{"alg":"none","kid":"k"}`), false},
		{tok(`{"alg":"RS256","kid":1}`), false},
		{tok(`not json`), false},
		{"!!!.e30.c2ln", false},
		{b64([]byte(`{"alg":"RS256","kid":"k"}`)) + ".e30", false},
		{b64([]byte(`{"alg":"RS256","kid":"k"}`)) + ".e30.c2ln.x", false},
		{"opaque-token", false},
	}
	s := &Strategy{}
	for range 2 { // the second round answers from the memo
		for _, tt := range tests {
			if got := s.providerJWT(tt.token); got != tt.want {
				t.Errorf("providerJWT(%q) = %v; want %v", tt.token, got, tt.want)
			}
		}
	}
}

func FuzzProviderJWT(f *testing.F) {
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"k"}`)) + ".e30.x")
	f.Add("a.b.c")
	f.Add("")
	st := &Strategy{}
	f.Fuzz(func(t *testing.T, s string) {
		if st.providerJWT(s) && strings.Count(s, ".") != 2 {
			t.Fatalf("providerJWT(%q) = true for a token without three parts", s)
		}
	})
}
