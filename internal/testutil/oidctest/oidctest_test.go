package oidctest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/authgateway/authgateway/internal/testutil/clocktest"
)

// introspect calls the introspection endpoint as the gateway client.
func introspect(t *testing.T, p *Provider, token string) map[string]any {
	t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, _ := http.NewRequest(http.MethodPost, p.IntrospectionURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(GatewayClientID, GatewayClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("introspection: status %d: %v", resp.StatusCode, err)
	}
	return m
}

func keySet(t *testing.T, p *Provider) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(p.JWKSURL)
	if err != nil {
		t.Fatalf("jwks: %v", err)
	}
	defer resp.Body.Close()
	var ks jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&ks); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return ks
}

func TestDiscovery(t *testing.T) {
	for _, host := range []string{"", "localhost"} {
		t.Run("host="+host, func(t *testing.T) {
			p := Start(t, Options{Host: host})
			wantHost := host
			if wantHost == "" {
				wantHost = "127.0.0.1"
			}
			if !strings.HasPrefix(p.Issuer, "http://"+wantHost+":") {
				t.Fatalf("issuer %q; want host %s", p.Issuer, wantHost)
			}
			for name, u := range map[string]string{"auth": p.AuthURL, "token": p.TokenURL,
				"introspection": p.IntrospectionURL, "revocation": p.RevocationURL, "jwks": p.JWKSURL,
				"userinfo": p.UserinfoURL, "end_session": p.EndSessionURL} {
				if !strings.HasPrefix(u, p.Issuer+"/") {
					t.Errorf("%s endpoint %q not under issuer %q", name, u, p.Issuer)
				}
			}
			if ks := keySet(t, p); len(ks.Keys) != 1 || ks.Keys[0].KeyID == "" || !ks.Keys[0].IsPublic() {
				t.Fatalf("jwks = %+v; want one public key with a kid", ks)
			}
		})
	}
}

func TestClientCredentialsOpaque(t *testing.T) {
	p := Start(t, Options{})
	tok := p.ClientCredentialsToken(t, ServiceClientID, ServiceClientSecret, "data:read", "data:write")
	if strings.Count(tok, ".") == 2 {
		t.Fatalf("token %q looks like a JWT; want opaque", tok)
	}
	m := introspect(t, p, tok)
	if m["active"] != true || m["sub"] != ServiceClientID || m["client_id"] != ServiceClientID ||
		m["scope"] != "data:read data:write" || m["iss"] != p.Issuer || m["token_type"] != "Bearer" {
		t.Fatalf("introspection = %v", m)
	}
	if aud, _ := m["aud"].([]any); !slices.Contains(aud, any(GatewayClientID)) {
		t.Fatalf("aud = %v; want it to hold %q", m["aud"], GatewayClientID)
	}
	if roles, _ := m["roles"].([]any); len(roles) != 1 || roles[0] != ServiceRole {
		t.Fatalf("roles = %v", m["roles"])
	}
	if exp, _ := m["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
		t.Fatalf("exp = %v; want future", m["exp"])
	}
	if got := p.IntrospectionRequests(); got != 1 {
		t.Fatalf("IntrospectionRequests = %d; want 1", got)
	}

	p.Revoke(t, tok)
	if m := introspect(t, p, tok); m["active"] != false {
		t.Fatalf("after revoke: %v", m)
	}
}

func TestClientCredentialsJWT(t *testing.T) {
	p := Start(t, Options{})
	tok := p.ClientCredentialsToken(t, JWTServiceClientID, JWTServiceClientSecret, "data:read")
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parsing JWT access token: %v", err)
	}
	var claims jwt.Claims
	var extra struct {
		Scope    string   `json:"scope"`
		Roles    []string `json:"roles"`
		ClientID string   `json:"client_id"`
	}
	if err := parsed.Claims(keySet(t, p), &claims, &extra); err != nil {
		t.Fatalf("verifying with the JWKS: %v", err)
	}
	if err := claims.Validate(jwt.Expected{Issuer: p.Issuer, AnyAudience: jwt.Audience{GatewayClientID}, Time: time.Now()}); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if claims.Subject != JWTServiceClientID || extra.Scope != "data:read" || extra.ClientID != JWTServiceClientID ||
		!slices.Equal(extra.Roles, []string{ServiceRole}) {
		t.Fatalf("claims = %+v %+v", claims, extra)
	}
	if m := introspect(t, p, tok); m["active"] != true {
		t.Fatalf("introspection of the JWT = %v", m)
	}
	p.Revoke(t, tok)
	if m := introspect(t, p, tok); m["active"] != false {
		t.Fatalf("after revoke: %v", m)
	}
}

func TestIntrospectionRefusals(t *testing.T) {
	p := Start(t, Options{})
	tok := p.ClientCredentialsToken(t, ServiceClientID, ServiceClientSecret)
	tests := []struct {
		name, id, secret, token string
		wantStatus              int
		wantActive              bool
	}{
		{"gateway", GatewayClientID, GatewayClientSecret, tok, 200, true},
		{"wrong secret", GatewayClientID, "nope", tok, 401, false},
		{"client without introspect", ServiceClientID, ServiceClientSecret, tok, 200, false},
		{"garbage token", GatewayClientID, GatewayClientSecret, "garbage", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"token": {tt.token}}
			req, _ := http.NewRequest(http.MethodPost, p.IntrospectionURL, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(tt.id, tt.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d; want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			if m["active"] != tt.wantActive {
				t.Fatalf("active = %v; want %v", m["active"], tt.wantActive)
			}
		})
	}
}

func TestWrongClientSecretGetsNoToken(t *testing.T) {
	p := Start(t, Options{})
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, p.TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ServiceClientID, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d; want 400/401", resp.StatusCode)
	}
}

// TestShortTokenLifetime: an access token is active for exactly
// AccessTokenTTL on the provider's clock.
func TestShortTokenLifetime(t *testing.T) {
	clk := clocktest.NewFake(time.Now())
	p := Start(t, Options{AccessTokenTTL: time.Second, Now: clk.Now})
	tok := p.ClientCredentialsToken(t, ServiceClientID, ServiceClientSecret)
	if m := introspect(t, p, tok); m["active"] != true {
		t.Fatalf("fresh token: %v", m)
	}
	clk.Advance(time.Second - time.Millisecond)
	if m := introspect(t, p, tok); m["active"] != true {
		t.Fatalf("token 1 ms before its end: %v", m)
	}
	clk.Advance(time.Millisecond)
	if m := introspect(t, p, tok); m["active"] != false {
		t.Fatalf("expired token: %v", m)
	}
}

func TestStopRestart(t *testing.T) {
	p := Start(t, Options{})
	tok := p.ClientCredentialsToken(t, ServiceClientID, ServiceClientSecret)
	p.Stop()
	if _, err := http.Get(p.DiscoveryURL); err == nil {
		t.Fatal("provider still answers after Stop")
	}
	p.Restart()
	if m := introspect(t, p, tok); m["active"] != true {
		t.Fatalf("token issued before the restart: %v", m)
	}
}

func TestLoginCodeFlowPKCE(t *testing.T) {
	p := Start(t, Options{})
	const redirect = "http://127.0.0.1:1/auth/callback"
	web := Client{ID: GatewayClientID, Secret: GatewayClientSecret, Introspect: true, RedirectURIs: []string{redirect}}
	p.AddClient(web)

	code, _, _ := p.Login(t, GatewayClientID, redirect, UserName, UserPassword, "openid", "email", "profile")
	cfg := oauth2.Config{ClientID: web.ID, ClientSecret: web.Secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption("wrong-verifier-wrong-verifier-wrong-verifier")); err == nil {
		t.Fatal("exchange with a wrong PKCE verifier succeeded")
	}
	code, _, verifier := p.Login(t, GatewayClientID, redirect, UserName, UserPassword, "openid", "email", "profile")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	var claims struct {
		jwt.Claims
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	}
	if err := idt.Claims(keySet(t, p), &claims); err != nil {
		t.Fatalf("id_token signature: %v", err)
	}
	if claims.Subject != UserID || claims.Email != UserEmail || !slices.Equal(claims.Roles, []string{UserRole}) ||
		claims.Issuer != p.Issuer {
		t.Fatalf("id_token claims = %+v", claims)
	}
	m := introspect(t, p, tok.AccessToken)
	if m["active"] != true || m["sub"] != UserID || m["username"] != UserName || m["client_id"] != GatewayClientID {
		t.Fatalf("introspection of the user's token = %v", m)
	}
	p.Revoke(t, tok.AccessToken)
	if m := introspect(t, p, tok.AccessToken); m["active"] != false {
		t.Fatalf("after revoke: %v", m)
	}
}

func TestLoginWrongPassword(t *testing.T) {
	p := Start(t, Options{})
	const redirect = "http://127.0.0.1:1/cb"
	p.AddClient(Client{ID: "web", Secret: "web-secret", RedirectURIs: []string{redirect}})
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		p.Login(ft, "web", redirect, UserName, "wrong", "openid")
	}()
	if !strings.Contains(ft.msg, "form answered 200") {
		t.Fatalf("login with a wrong password: %q; want the form shown again", ft.msg)
	}
}

// fatalRecorder turns Fatalf into a recorded failure and a panic.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func TestUnregisteredRedirectRefused(t *testing.T) {
	p := Start(t, Options{})
	p.AddClient(Client{ID: "web", Secret: "web-secret", RedirectURIs: []string{"http://127.0.0.1:1/cb"}})
	cfg := oauth2.Config{ClientID: "web", RedirectURL: "http://evil.example/cb", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL}}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "http://evil.example") {
		t.Fatalf("redirected to an unregistered URI: %s", loc)
	}
}

func TestRefreshRotation(t *testing.T) {
	p := Start(t, Options{})
	const redirect = "http://127.0.0.1:1/cb"
	web := Client{ID: "web", Secret: "web-secret", RedirectURIs: []string{redirect}}
	p.AddClient(web)
	code, _, verifier := p.Login(t, web.ID, redirect, UserName, UserPassword, "openid", "offline_access")
	cfg := oauth2.Config{ClientID: web.ID, ClientSecret: web.Secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	ctx := context.Background()
	first, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil || first.RefreshToken == "" {
		t.Fatalf("exchange: %v, refresh token %q", err, first.RefreshToken)
	}
	first.Expiry = time.Now().Add(-time.Minute) // force a refresh
	second, err := cfg.TokenSource(ctx, first).Token()
	if err != nil || second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh: %v", err)
	}
	if m := introspect(t, p, first.AccessToken); m["active"] != false {
		t.Fatalf("access token of a rotated refresh token: %v", m)
	}
	if m := introspect(t, p, second.AccessToken); m["active"] != true {
		t.Fatalf("new access token: %v", m)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: first.RefreshToken}).Token(); err == nil {
		t.Fatal("a rotated refresh token was accepted again")
	}
}

// TestIntrospectionWithoutIssuer: the option answers as the zitadel example
// OP does unchanged, without iss; everything else stays.
func TestIntrospectionWithoutIssuer(t *testing.T) {
	p := Start(t, Options{IntrospectionWithoutIssuer: true})
	tok := p.ClientCredentialsToken(t, ServiceClientID, ServiceClientSecret, "data:read")
	m := introspect(t, p, tok)
	if _, ok := m["iss"]; ok || m["active"] != true || m["sub"] != ServiceClientID {
		t.Fatalf("introspection = %v; want active, without iss", m)
	}
}

// TestUnverifiedEmail: how the provider speaks of a user whose email is not
// verified — silence, as zitadel, or an explicit false (Keycloak) or "false"
// (Cognito) — in the ID token, userinfo, introspection and JWT access tokens.
func TestUnverifiedEmail(t *testing.T) {
	const redirect = "http://127.0.0.1:1/auth/callback"
	for _, tc := range []struct {
		name  string
		claim any
	}{{"left out", nil}, {"false", false}, {`"false"`, "false"}} {
		t.Run(tc.name, func(t *testing.T) {
			u := User{ID: "user-2", Username: "uma", Password: "uma-password", Email: "uma@example.com",
				EmailUnverified: true, EmailVerifiedClaim: tc.claim}
			p := Start(t, Options{Users: []User{u}})
			p.AddClient(Client{ID: GatewayClientID, Secret: GatewayClientSecret, Introspect: true,
				RedirectURIs: []string{redirect}, JWTAccessTokens: true})
			code, _, verifier := p.Login(t, GatewayClientID, redirect, u.Username, u.Password, "openid", "email")
			cfg := oauth2.Config{ClientID: GatewayClientID, ClientSecret: GatewayClientSecret, RedirectURL: redirect,
				Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			check := func(where string, raw string) {
				t.Helper()
				parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				var m map[string]any
				if err := parsed.Claims(keySet(t, p), &m); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				checkEmail(t, where, m, tc.claim)
			}
			idt, _ := tok.Extra("id_token").(string)
			check("id token", idt)
			check("JWT access token", tok.AccessToken)
			checkEmail(t, "introspection", introspect(t, p, tok.AccessToken), tc.claim)
			ui, err := (&http.Client{Timeout: 10 * time.Second}).Do(func() *http.Request {
				r, _ := http.NewRequest(http.MethodGet, p.UserinfoURL, nil)
				r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				return r
			}())
			if err != nil {
				t.Fatal(err)
			}
			defer ui.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(ui.Body).Decode(&m); err != nil {
				t.Fatal(err)
			}
			checkEmail(t, "userinfo", m, tc.claim)
		})
	}
}

func checkEmail(t *testing.T, where string, m map[string]any, want any) {
	t.Helper()
	v, ok := m["email_verified"]
	if m["email"] != "uma@example.com" || ok != (want != nil) || v != want {
		t.Errorf("%s: email %v, email_verified %v (present %v); want uma@example.com, %v", where, m["email"], v, ok, want)
	}
}
