package oauth2

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

const testName = "oauth2"

// gatewayConfig is the oauth2 strategy of the gateway client against p,
// with cacheTTL as its cache_ttl.
func gatewayConfig(p *oidctest.Provider, cacheTTL time.Duration) *config.Strategy {
	ttl := config.Duration(cacheTTL)
	return &config.Strategy{
		Type: "oauth2", IssuerURL: p.Issuer,
		ClientID: oidctest.GatewayClientID, ClientSecret: oidctest.GatewayClientSecret,
		Audience: oidctest.GatewayClientID, CacheTTL: &ttl,
		RolesClaim: config.ClaimNames{"roles"}, EmailClaim: "email",
	}
}

// newStrategy builds and starts the strategy; it is closed with the test.
func newStrategy(t testing.TB, sc *config.Strategy, deps strategies.Deps) *Strategy {
	t.Helper()
	s, err := build(sc, deps)
	if err != nil {
		t.Fatalf("New and Start: %v", err)
	}
	return s
}

// build is New then Start, as the gateway runs them.
func build(sc *config.Strategy, deps strategies.Deps) (*Strategy, error) {
	st, err := New(testName, sc, deps)
	if err != nil {
		return nil, err
	}
	s := st.(*Strategy)
	return s, s.Start(context.Background())
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/api", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func authenticate(s *Strategy, tok string) (*strategies.Identity, error) {
	return s.Authenticate(context.Background(), bearer(tok))
}

// mustAccept authenticates tok and fails the test unless it is accepted.
func mustAccept(t *testing.T, s *Strategy, tok string) *strategies.Identity {
	t.Helper()
	id, err := authenticate(s, tok)
	if err != nil || id == nil {
		t.Fatalf("Authenticate = %+v, %v; want an identity", id, err)
	}
	return id
}

// wantInvalid fails the test unless tok is refused as an invalid credential
// (401); it answers the error.
func wantInvalid(t *testing.T, s *Strategy, tok string) error {
	t.Helper()
	id, err := authenticate(s, tok)
	if id != nil || !errors.Is(err, strategies.ErrInvalidCredentials) {
		t.Fatalf("Authenticate = %+v, %v; want invalid credentials", id, err)
	}
	return err
}

// wantTechnical fails the test unless tok meets a technical failure:
// neither an identity, nor invalid, nor "not mine".
func wantTechnical(t *testing.T, s *Strategy, tok string) {
	t.Helper()
	id, err := authenticate(s, tok)
	if id != nil || err == nil || errors.Is(err, strategies.ErrInvalidCredentials) ||
		errors.Is(err, strategies.ErrNoCredentials) {
		t.Fatalf("Authenticate = %+v, %v; want a technical error", id, err)
	}
}

func reasonOf(err error) strategies.Reason {
	var ie *strategies.InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

// userTokens logs alice in through the authorization code flow as the
// gateway client and answers her access token and ID token.
func userTokens(t *testing.T, p *oidctest.Provider) (access, idToken string) {
	t.Helper()
	return userTokensOf(t, p, oidctest.UserName, oidctest.UserPassword, false)
}

// userTokensOf logs user in as the gateway client, whose access tokens are
// JWTs when jwtAccess, and answers the access token and ID token.
func userTokensOf(t *testing.T, p *oidctest.Provider, user, password string, jwtAccess bool) (access, idToken string) {
	t.Helper()
	const redirect = "http://127.0.0.1:1/auth/callback"
	p.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret,
		Introspect: true, RedirectURIs: []string{redirect}, JWTAccessTokens: jwtAccess})
	code, _, verifier := p.Login(t, oidctest.GatewayClientID, redirect, user, password,
		"openid", "email", "profile")
	cfg := oauth2.Config{ClientID: oidctest.GatewayClientID, ClientSecret: oidctest.GatewayClientSecret,
		RedirectURL: redirect, Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL,
			AuthStyle: oauth2.AuthStyleInHeader}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idt, _ := tok.Extra("id_token").(string)
	return tok.AccessToken, idt
}
