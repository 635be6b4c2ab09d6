// Package oidctest runs a real OpenID Provider inside the test process: the
// example OP of github.com/zitadel/oidc/v3 (exampleop.SetupServer: discovery,
// authorization code flow with PKCE and its password login form, token,
// client credentials, introspection, revocation, userinfo, JWKS, end_session),
// over a storage that makes clients, users and token lifetimes configurable.
//
// The protocol is zitadel's, not ours: tests that pass against it talk to a
// real authorization server.
package oidctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// Fixtures of DefaultClients and DefaultUsers.
const (
	// GatewayClientID may introspect; give it RedirectURIs (AddClient) to
	// let it run the login flow too.
	GatewayClientID     = "gateway"
	GatewayClientSecret = "gateway-secret"
	// ServiceClientID gets opaque client-credentials tokens for audience
	// "gateway", with roles ServiceRole.
	ServiceClientID     = "svc"
	ServiceClientSecret = "svc-secret"
	ServiceRole         = "service"
	// JWTServiceClientID is ServiceClientID with JWT access tokens.
	JWTServiceClientID     = "svc-jwt"
	JWTServiceClientSecret = "svc-jwt-secret"
	// OtherClientID gets opaque tokens for audience "other-api" only.
	OtherClientID     = "svc-other"
	OtherClientSecret = "svc-other-secret"

	UserID       = "user-1"
	UserName     = "alice"
	UserPassword = "alice-password"
	UserEmail    = "alice@example.com"
	UserRole     = "admin"
)

// Client is an OAuth2 client of the provider. Every client authenticates
// with client_secret_basic (client_secret_post works too).
type Client struct {
	ID, Secret string
	// ClientCredentials allows the client_credentials grant.
	ClientCredentials bool
	// RedirectURIs, when set, allow the authorization code flow (with or
	// without PKCE) and the refresh_token grant; http:// is allowed.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// Introspect allows calling the introspection endpoint (a resource
	// server). It may introspect any token, whatever its audience.
	Introspect bool
	// JWTAccessTokens makes the client's access tokens JWTs signed with the
	// provider's RS256 key (kid in the JWKS); otherwise they are opaque.
	JWTAccessTokens bool
	// Audience is added to the client's own ID in the aud of its
	// client-credentials tokens (login-flow tokens have aud = client ID).
	Audience []string
	// Roles is the "roles" claim of tokens whose subject is this client.
	Roles []string
}

// User can log in with the password form at /login/username.
type User struct {
	ID, Username, Password, Email string
	// Roles is the "roles" claim of the user's tokens, ID tokens, userinfo
	// and introspection responses.
	Roles []string
	// EmailUnverified: the user's email address is not verified. Like
	// zitadel, the provider then leaves email_verified out of its answers
	// (its Bool is omitempty: a false is never written), unless
	// EmailVerifiedClaim says what to state instead.
	EmailUnverified bool
	// Disabled: the user cannot sign in, and the refresh grant and
	// userinfo refuse tokens issued to them (DisableUser).
	Disabled bool
	// EmailVerifiedClaim, for an EmailUnverified user, is stated as
	// email_verified in ID tokens, userinfo, introspection answers and JWT
	// access tokens: false as Keycloak does, "false" as Cognito does.
	EmailVerifiedClaim any
}

// Options configure Start. The zero value is a provider with DefaultClients
// and DefaultUsers on 127.0.0.1.
type Options struct {
	// Host is the host name in the issuer: "127.0.0.1" (default) or
	// "localhost". The server listens on 127.0.0.1 either way.
	Host string
	// AccessTokenTTL is the lifetime of access tokens; default 5m.
	AccessTokenTTL time.Duration
	// Now is the provider's clock for the tokens it keeps: when access and
	// refresh tokens are issued and end, and so whether introspection and
	// userinfo answer them as active. Default time.Now. (zitadel's own
	// times, such as an ID token's iat, stay real.)
	Now func() time.Time
	// Clients replace DefaultClients when non-nil.
	Clients []Client
	// Users replace DefaultUsers when non-nil.
	Users []User
	// IntrospectionWithoutIssuer answers introspection without iss, as the
	// zitadel example OP does unchanged (RFC 7662 makes iss optional). By
	// default the provider adds its issuer, as zitadel itself does.
	IntrospectionWithoutIssuer bool
}

// DefaultClients are the gateway (a resource server) and three service
// clients; see the constants.
func DefaultClients() []Client {
	return []Client{
		{ID: GatewayClientID, Secret: GatewayClientSecret, Introspect: true},
		{ID: ServiceClientID, Secret: ServiceClientSecret, ClientCredentials: true,
			Audience: []string{GatewayClientID}, Roles: []string{ServiceRole}},
		{ID: JWTServiceClientID, Secret: JWTServiceClientSecret, ClientCredentials: true,
			JWTAccessTokens: true, Audience: []string{GatewayClientID}, Roles: []string{ServiceRole}},
		{ID: OtherClientID, Secret: OtherClientSecret, ClientCredentials: true,
			Audience: []string{"other-api"}},
	}
}

// DefaultUsers is alice; see the constants.
func DefaultUsers() []User {
	return []User{{ID: UserID, Username: UserName, Password: UserPassword,
		Email: UserEmail, Roles: []string{UserRole}}}
}

// Provider is a running OpenID Provider. Its URLs are read from its own
// discovery document.
type Provider struct {
	Issuer string // http://HOST:PORT, no trailing slash
	Addr   string // 127.0.0.1:PORT

	DiscoveryURL, AuthURL, TokenURL, IntrospectionURL, RevocationURL,
	JWKSURL, UserinfoURL, EndSessionURL string

	t       testing.TB
	store   *store
	handler http.Handler

	introspectPath, keysPath, tokenPath string
	introspections, keyFetches          atomic.Int64

	mu     sync.Mutex
	srv    *http.Server
	issued map[string]string // access token -> token ID
}

// Start runs a provider until the test ends.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	host := opts.Host
	switch host {
	case "":
		host = "127.0.0.1"
	case "127.0.0.1", "localhost":
	default:
		t.Fatalf("oidctest: Host must be 127.0.0.1 or localhost, got %q", host)
	}
	ttl := opts.AccessTokenTTL
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	clients, users := opts.Clients, opts.Users
	if clients == nil {
		clients = DefaultClients()
	}
	if users == nil {
		users = DefaultUsers()
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oidctest: listening: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	p := &Provider{
		Issuer: "http://" + net.JoinHostPort(host, strconv.Itoa(port)),
		Addr:   l.Addr().String(),
		t:      t,
		issued: map[string]string{},
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	p.store = newStore(p.Issuer, ttl, now, clients, users)
	p.store.introspectionIssuer = !opts.IntrospectionWithoutIssuer
	// nil logger: SetupServer would otherwise replace the process-wide
	// slog default. Its request log goes to the default logger.
	p.handler = exampleop.SetupServer(p.Issuer, p.store, nil, false)
	p.serve(l)
	t.Cleanup(p.Stop)
	p.discover(t)
	return p
}

func (p *Provider) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (p *Provider) discover(t testing.TB) {
	t.Helper()
	p.DiscoveryURL = p.Issuer + "/.well-known/openid-configuration"
	resp, err := http.Get(p.DiscoveryURL)
	if err != nil {
		t.Fatalf("oidctest: discovery: %v", err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer        string `json:"issuer"`
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
		Introspection string `json:"introspection_endpoint"`
		Revocation    string `json:"revocation_endpoint"`
		JWKS          string `json:"jwks_uri"`
		Userinfo      string `json:"userinfo_endpoint"`
		EndSession    string `json:"end_session_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("oidctest: discovery: status %d, %v", resp.StatusCode, err)
	}
	if d.Issuer != p.Issuer {
		t.Fatalf("oidctest: discovery issuer %q, want %q", d.Issuer, p.Issuer)
	}
	p.AuthURL, p.TokenURL, p.IntrospectionURL = d.Authorization, d.Token, d.Introspection
	p.RevocationURL, p.JWKSURL, p.UserinfoURL, p.EndSessionURL = d.Revocation, d.JWKS, d.Userinfo, d.EndSession
	p.introspectPath, p.keysPath, p.tokenPath = pathOf(t, d.Introspection), pathOf(t, d.JWKS), pathOf(t, d.Token)
}

func pathOf(t testing.TB, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("oidctest: endpoint %q: %v", raw, err)
	}
	return u.Path
}

func (p *Provider) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case p.introspectPath:
		p.introspections.Add(1)
	case p.keysPath:
		p.keyFetches.Add(1)
	case p.tokenPath:
		p.serveToken(w, r)
		return
	}
	p.handler.ServeHTTP(w, r)
}

// serveToken remembers which token ID each issued access token has, for Revoke.
func (p *Provider) serveToken(w http.ResponseWriter, r *http.Request) {
	c := &capture{}
	tw := &teeWriter{ResponseWriter: w}
	p.handler.ServeHTTP(tw, r.WithContext(context.WithValue(r.Context(), captureKey{}, c)))
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(tw.buf.Bytes(), &body) != nil || body.AccessToken == "" {
		return
	}
	if id, err := c.only(); err == nil {
		p.mu.Lock()
		p.issued[body.AccessToken] = id
		p.mu.Unlock()
	}
}

type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

// IntrospectionRequests counts the requests the introspection endpoint got.
func (p *Provider) IntrospectionRequests() int64 { return p.introspections.Load() }

// JWKSRequests counts the requests the JWKS endpoint got.
func (p *Provider) JWKSRequests() int64 { return p.keyFetches.Load() }

// AddClient registers a client, or replaces the one with the same ID (for
// instance to give the gateway client the redirect URI of a gateway that
// could only start once the issuer was known).
func (p *Provider) AddClient(c Client) { p.store.putClient(c) }

// ClientCredentialsToken gets an access token with the client-credentials
// grant (client_secret_basic), as golang.org/x/oauth2 does it.
func (p *Provider) ClientCredentialsToken(t testing.TB, clientID, secret string, scopes ...string) string {
	t.Helper()
	cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: p.TokenURL,
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cfg.Token(ctx)
	if err != nil {
		t.Fatalf("oidctest: client credentials for %q: %v", clientID, err)
	}
	return tok.AccessToken
}

// Revoke revokes an access token issued by the token endpoint, through the
// revocation endpoint (RFC 7009) as the client it was issued to, and checks
// the provider forgot it.
func (p *Provider) Revoke(t testing.TB, token string) {
	t.Helper()
	p.mu.Lock()
	id, ok := p.issued[token]
	p.mu.Unlock()
	if !ok {
		t.Fatalf("oidctest: Revoke: token was not issued by this provider's token endpoint")
	}
	p.store.mu.Lock()
	a, live := p.store.access[id]
	p.store.mu.Unlock()
	if !live {
		return // already revoked or rotated away
	}
	c, ok := p.store.client(a.clientID)
	if !ok {
		t.Fatalf("oidctest: Revoke: client %q of the token is gone", a.clientID)
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequest(http.MethodPost, p.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("oidctest: Revoke: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("oidctest: Revoke: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("oidctest: Revoke: status %d: %s", resp.StatusCode, body)
	}
	p.store.mu.Lock()
	_, live = p.store.access[id]
	p.store.mu.Unlock()
	if live {
		t.Fatalf("oidctest: Revoke: token still active after revocation")
	}
}

// Stop closes the listener and every connection (idempotent). State
// (clients, tokens, keys) is kept for Restart.
func (p *Provider) Stop() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart serves again on the same address after Stop, with the same state:
// tokens issued before still work.
func (p *Provider) Restart() {
	p.t.Helper()
	p.Stop()
	var l net.Listener
	_, err := poll.Wait(time.Second, func() (err error) { // the port may linger for a moment after Close
		l, err = net.Listen("tcp", p.Addr)
		return err
	})
	if err != nil {
		p.t.Fatalf("oidctest: restart on %s: %v", p.Addr, err)
	}
	p.serve(l)
}

var errNoLocation = errors.New("no Location header")

// Login runs the authorization code flow with PKCE (S256) as a browser would:
// authorization request, the example's password form, back to the redirect
// URI. It returns the code and state the redirect URI receives. The client
// must have been registered with redirectURI.
func (p *Provider) Login(t testing.TB, clientID, redirectURI, username, password string, scopes ...string) (code, state, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	state = oauth2.GenerateVerifier()
	cfg := oauth2.Config{ClientID: clientID, RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL}}
	cb, err := url.Parse(p.Authorize(t, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), redirectURI, username, password))
	if err != nil {
		t.Fatalf("oidctest: Login: %v", err)
	}
	if e := cb.Query().Get("error"); e != "" {
		t.Fatalf("oidctest: Login: provider answered error %q: %s", e, cb.Query().Get("error_description"))
	}
	return cb.Query().Get("code"), cb.Query().Get("state"), verifier
}

// Authorize takes a browser from authURL, an authorization request someone
// else made (a gateway's /auth/login redirect), through the example's
// password form as username, and answers the URL the provider then sends the
// browser to: redirectURI with the code and state, or an error.
func (p *Provider) Authorize(t testing.TB, authURL, redirectURI, username, password string) string {
	t.Helper()
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	loc, err := p.follow(client, authURL, redirectURI)
	if err != nil {
		t.Fatalf("oidctest: authorization request: %v", err)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("authRequestID") == "" {
		t.Fatalf("oidctest: expected the login form, got %q", loc)
	}
	form := url.Values{"id": {u.Query().Get("authRequestID")}, "username": {username}, "password": {password}}
	resp, err := client.PostForm(p.Issuer+"/login/username", form)
	if err != nil {
		t.Fatalf("oidctest: posting the login form: %v", err)
	}
	resp.Body.Close()
	next := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || next == "" {
		t.Fatalf("oidctest: login form answered %d (wrong password?)", resp.StatusCode)
	}
	loc, err = p.follow(client, p.resolve(next), redirectURI)
	if err != nil {
		t.Fatalf("oidctest: back to the client: %v", err)
	}
	return loc
}

// follow follows redirects until one leaves the provider for stop, or a
// page is served; it answers the last Location.
func (p *Provider) follow(client *http.Client, start, stop string) (string, error) {
	next := start
	for range 10 {
		resp, err := client.Get(next)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if loc == "" {
			return "", fmt.Errorf("%w (status %d at %s)", errNoLocation, resp.StatusCode, next)
		}
		loc = p.resolve(loc)
		if strings.HasPrefix(loc, stop) || strings.Contains(loc, "/login/username") {
			return loc, nil
		}
		next = loc
	}
	return "", errors.New("too many redirects")
}

func (p *Provider) resolve(loc string) string {
	if strings.HasPrefix(loc, "/") {
		return p.Issuer + loc
	}
	return loc
}

// SignLogoutToken signs claims as a back-channel logout token (typ
// logout+jwt) with the provider's own signing key, the one its JWKS
// publishes. zitadel's example OP does not send back-channel logout tokens
// itself; tests make the ones it would send (and forgeries of them).
func (p *Provider) SignLogoutToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	key, err := p.store.SigningKey(context.Background())
	if err != nil {
		t.Fatalf("oidctest: signing key: %v", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.SignatureAlgorithm(), Key: jose.JSONWebKey{Key: key.Key(), KeyID: key.ID()}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		t.Fatalf("oidctest: signer: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("oidctest: signing: %v", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// SetUserRoles changes a user's roles at the provider: tokens, ID tokens
// and userinfo answers issued from now on carry them.
func (p *Provider) SetUserRoles(t testing.TB, id string, roles []string) {
	t.Helper()
	if !p.store.users.change(id, func(u *User) { u.Roles = roles }) {
		t.Fatalf("oidctest: no user %q", id)
	}
}

// DisableUser disables a user at the provider: no more sign-in, and the
// refresh grant and userinfo refuse their tokens.
func (p *Provider) DisableUser(t testing.TB, id string) {
	t.Helper()
	if !p.store.users.change(id, func(u *User) { u.Disabled = true }) {
		t.Fatalf("oidctest: no user %q", id)
	}
}
