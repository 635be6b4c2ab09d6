package oidctest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// store is the example storage of zitadel/oidc with the parts it hard-codes
// replaced: its clients, its client-credentials service users, its users and
// its access tokens (the example fixes a 5-minute lifetime, lets no other
// client introspect a client-credentials token and answers no "roles").
// Auth requests, codes, the login check and the signing key stay the example's.
type store struct {
	*storage.Storage

	issuer    string
	accessTTL time.Duration
	now       func() time.Time
	users     *userSet
	// introspectionIssuer: introspection answers carry iss.
	introspectionIssuer bool

	mu      sync.Mutex
	clients map[string]Client
	access  map[string]*accessToken          // by token ID
	refresh map[string]*storage.RefreshToken // by token value (= ID)
}

type accessToken struct {
	id, clientID, subject string
	audience, scopes      []string
	issued, expires       time.Time
	refreshID             string
}

func newStore(issuer string, accessTTL time.Duration, now func() time.Time, clients []Client, users []User) *store {
	s := &store{
		issuer:    issuer,
		accessTTL: accessTTL,
		now:       now,
		users:     &userSet{m: make(map[string]User, len(users))},
		clients:   make(map[string]Client, len(clients)),
		access:    make(map[string]*accessToken),
		refresh:   make(map[string]*storage.RefreshToken),
	}
	for _, u := range users {
		s.users.m[u.ID] = u
	}
	for _, c := range clients {
		s.clients[c.ID] = c
	}
	s.Storage = storage.NewStorageWithClients(userStore{s.users}, map[string]*storage.Client{})
	return s
}

func (s *store) client(id string) (Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return c, ok
}

func (s *store) putClient(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = c
}

// rolesOf answers the roles of a subject, a user or a client.
func (s *store) rolesOf(subject string) []string {
	if u, ok := s.users.get(subject); ok {
		return u.Roles
	}
	if c, ok := s.client(subject); ok {
		return c.Roles
	}
	return nil
}

// GetClientByClientID implements op.Storage.
func (s *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.client(id)
	if !ok {
		return nil, errors.New("client not found")
	}
	return opClient{c}, nil
}

// AuthorizeClientIDSecret implements op.Storage (client_secret_basic/post).
func (s *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.client(id)
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("invalid client")
	}
	return nil
}

// ClientCredentials implements op.ClientCredentialsStorage.
func (s *store) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	if err := s.AuthorizeClientIDSecret(ctx, id, secret); err != nil {
		return nil, err
	}
	c, _ := s.client(id)
	return opClient{c}, nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage.
func (s *store) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	c, ok := s.client(id)
	if !ok {
		return nil, errors.New("client not found")
	}
	return &ccRequest{clientID: id, audience: append([]string{id}, c.Audience...), scopes: scopes}, nil
}

// ccRequest is the token request of the client-credentials grant.
type ccRequest struct {
	clientID         string
	audience, scopes []string
}

func (r *ccRequest) GetSubject() string    { return r.clientID }
func (r *ccRequest) GetAudience() []string { return r.audience }
func (r *ccRequest) GetScopes() []string   { return r.scopes }
func (r *ccRequest) GetClientID() string   { return r.clientID }

func clientOf(req op.TokenRequest) string {
	if r, ok := req.(interface{ GetClientID() string }); ok {
		return r.GetClientID()
	}
	return ""
}

// newAccess records an access token; the caller holds s.mu.
func (s *store) newAccess(ctx context.Context, req op.TokenRequest, refreshID string) *accessToken {
	now := s.now()
	a := &accessToken{
		id:        uuid.NewString(),
		clientID:  clientOf(req),
		subject:   req.GetSubject(),
		audience:  slices.Clone(req.GetAudience()),
		scopes:    slices.Clone(req.GetScopes()),
		issued:    now,
		expires:   now.Add(s.accessTTL),
		refreshID: refreshID,
	}
	s.access[a.id] = a
	if c, ok := ctx.Value(captureKey{}).(*capture); ok {
		c.add(a.id)
	}
	return a
}

// CreateAccessToken implements op.Storage.
func (s *store) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.newAccess(ctx, req, "")
	return a.id, a.expires, nil
}

// CreateAccessAndRefreshTokens implements op.Storage, with refresh-token rotation.
func (s *store) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rt storage.RefreshToken
	if current != "" {
		old, ok := s.refresh[current]
		if !ok {
			return "", "", time.Time{}, errors.New("invalid refresh token")
		}
		delete(s.refresh, current)
		delete(s.access, old.AccessToken)
		if old.Expiration.Before(s.now()) {
			return "", "", time.Time{}, errors.New("expired refresh token")
		}
		rt = *old
	} else {
		rt = storage.RefreshToken{
			ApplicationID: clientOf(req),
			UserID:        req.GetSubject(),
			Audience:      slices.Clone(req.GetAudience()),
			Scopes:        slices.Clone(req.GetScopes()),
		}
		if r, ok := req.(op.IDTokenRequest); ok {
			rt.AuthTime, rt.AMR = r.GetAuthTime(), r.GetAMR()
		}
	}
	rt.ID = uuid.NewString()
	rt.Token = rt.ID
	rt.Expiration = s.now().Add(5 * time.Hour)
	a := s.newAccess(ctx, req, rt.ID)
	rt.AccessToken = a.id
	s.refresh[rt.ID] = &rt
	return a.id, rt.Token, a.expires, nil
}

// TokenRequestByRefreshToken implements op.Storage.
func (s *store) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok || rt.Expiration.Before(s.now()) {
		return nil, errors.New("invalid refresh_token")
	}
	if u, ok := s.users.get(rt.UserID); ok && u.Disabled {
		return nil, errors.New("user disabled")
	}
	cp := *rt // the request may change its scopes
	return storage.RefreshTokenRequestFromBusiness(&cp), nil
}

// GetRefreshTokenInfo implements op.Storage.
func (s *store) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.UserID, rt.ID, nil
}

// RevokeToken implements op.Storage (RFC 7009): only the client a token was
// issued to may revoke it; an unknown token is no error.
func (s *store) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.access[tokenOrID]; ok {
		if a.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued for this client")
		}
		delete(s.access, tokenOrID)
		return nil
	}
	if rt, ok := s.refresh[tokenOrID]; ok {
		if rt.ApplicationID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued for this client")
		}
		delete(s.refresh, tokenOrID)
		delete(s.access, rt.AccessToken)
	}
	return nil
}

// TerminateSession implements op.Storage (end_session).
func (s *store) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, a := range s.access {
		if a.subject == userID && a.clientID == clientID {
			delete(s.access, id)
			delete(s.refresh, a.refreshID)
		}
	}
	return nil
}

// activeToken answers a live access token; the caller holds no lock.
func (s *store) activeToken(tokenID, subject string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.access[tokenID]
	if !ok || a.subject != subject {
		return accessToken{}, errors.New("token is invalid")
	}
	if !a.expires.After(s.now()) {
		return accessToken{}, errors.New("token is expired")
	}
	if u, ok := s.users.get(subject); ok && u.Disabled {
		return accessToken{}, errors.New("user disabled")
	}
	return *a, nil
}

// SetIntrospectionFromToken implements op.Storage. Any client registered
// with Introspect may introspect any token (as Keycloak does); the example
// would demand the caller be in the token's audience, which leaves no way to
// test an audience check on the resource server's side.
func (s *store) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	if c, ok := s.client(clientID); !ok || !c.Introspect {
		return errors.New("client may not introspect")
	}
	a, err := s.activeToken(tokenID, subject)
	if err != nil {
		return err
	}
	if s.introspectionIssuer {
		resp.Issuer = s.issuer
	}
	resp.Subject = a.subject
	resp.ClientID = a.clientID
	resp.Scope = a.scopes
	resp.Audience = a.audience
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(a.expires)
	resp.IssuedAt = oidc.FromTime(a.issued)
	resp.JWTID = a.id
	if u, ok := s.users.get(a.subject); ok {
		resp.Username = u.Username
		if slices.Contains(a.scopes, oidc.ScopeEmail) {
			resp.Email, resp.EmailVerified = u.Email, oidc.Bool(!u.EmailUnverified)
			if v := emailVerifiedClaim(u); v != nil {
				resp.Claims = map[string]any{"email_verified": v}
			}
		}
	}
	if roles := s.rolesOf(a.subject); len(roles) > 0 {
		if resp.Claims == nil {
			resp.Claims = map[string]any{}
		}
		resp.Claims["roles"] = roles
	}
	return nil
}

// SetUserinfoFromToken implements op.Storage (the userinfo endpoint).
func (s *store) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	a, err := s.activeToken(tokenID, subject)
	if err != nil {
		return err
	}
	s.fillUserinfo(ui, a.subject, a.scopes)
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest (ID tokens).
func (s *store) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.fillUserinfo(ui, req.GetSubject(), scopes)
	return nil
}

func (s *store) fillUserinfo(ui *oidc.UserInfo, subject string, scopes []string) {
	ui.Subject = subject
	if u, ok := s.users.get(subject); ok {
		if slices.Contains(scopes, oidc.ScopeEmail) {
			ui.Email, ui.EmailVerified = u.Email, oidc.Bool(!u.EmailUnverified)
			if v := emailVerifiedClaim(u); v != nil {
				ui.AppendClaims("email_verified", v)
			}
		}
		if slices.Contains(scopes, oidc.ScopeProfile) {
			ui.PreferredUsername = u.Username
			ui.Name = u.Username
		}
	}
	if roles := s.rolesOf(subject); len(roles) > 0 {
		ui.AppendClaims("roles", roles)
	}
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// the extra claims of JWT access tokens. zitadel/oidc leaves "scope" out of
// them, RFC 9068 wants it.
func (s *store) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	claims := map[string]any{}
	if sc := req.GetScopes(); len(sc) > 0 {
		claims["scope"] = strings.Join(sc, " ")
	}
	if roles := s.rolesOf(req.GetSubject()); len(roles) > 0 {
		claims["roles"] = roles
	}
	if u, ok := s.users.get(req.GetSubject()); ok && slices.Contains(req.GetScopes(), oidc.ScopeEmail) {
		claims["email"] = u.Email
		if v := emailVerifiedClaim(u); v != nil {
			claims["email_verified"] = v
		}
	}
	return claims, nil
}

// emailVerifiedClaim is the email_verified member to state beside what
// zitadel writes itself (nothing for an unverified email), or nil.
func emailVerifiedClaim(u User) any {
	if u.EmailUnverified {
		return u.EmailVerifiedClaim
	}
	return nil
}

// opClient adapts a Client to op.Client.
type opClient struct{ c Client }

var _ op.Client = opClient{}

func (o opClient) GetID() string                    { return o.c.ID }
func (o opClient) RedirectURIs() []string           { return o.c.RedirectURIs }
func (o opClient) PostLogoutRedirectURIs() []string { return o.c.PostLogoutRedirectURIs }
func (o opClient) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}
func (o opClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }
func (o opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (o opClient) GrantTypes() []oidc.GrantType {
	var g []oidc.GrantType
	if o.c.ClientCredentials {
		g = append(g, oidc.GrantTypeClientCredentials)
	}
	if len(o.c.RedirectURIs) > 0 {
		g = append(g, oidc.GrantTypeCode, oidc.GrantTypeRefreshToken)
	}
	return g
}

func (o opClient) LoginURL(id string) string { return "/login/username?authRequestID=" + id }
func (o opClient) AccessTokenType() op.AccessTokenType {
	if o.c.JWTAccessTokens {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}
func (o opClient) IDTokenLifetime() time.Duration { return time.Hour }

// DevMode lets redirect URIs be http:// (the gateway under test is).
func (o opClient) DevMode() bool { return true }
func (o opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (o opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed lets any custom scope (data:read, ...) through.
func (o opClient) IsScopeAllowed(string) bool           { return true }
func (o opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (o opClient) ClockSkew() time.Duration             { return 0 }

// userStore adapts the configured users to storage.UserStore, which the
// example's login form checks passwords against.
type userStore struct{ users *userSet }

func (u userStore) GetUserByID(id string) *storage.User {
	if x, ok := u.users.get(id); ok && !x.Disabled {
		return toStorageUser(x)
	}
	return nil
}

func (u userStore) GetUserByUsername(name string) *storage.User {
	u.users.mu.RLock()
	defer u.users.mu.RUnlock()
	for _, x := range u.users.m {
		if x.Username == name && !x.Disabled {
			return toStorageUser(x)
		}
	}
	return nil
}

// userSet holds the users; tests change them while the provider runs
// (SetUserRoles, DisableUser).
type userSet struct {
	mu sync.RWMutex
	m  map[string]User // by ID
}

func (u *userSet) get(id string) (User, bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	x, ok := u.m[id]
	return x, ok
}

func (u *userSet) change(id string, f func(*User)) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	x, ok := u.m[id]
	if ok {
		f(&x)
		u.m[id] = x
	}
	return ok
}

func (u userStore) ExampleClientID() string { return "" }

func toStorageUser(x User) *storage.User {
	return &storage.User{
		ID: x.ID, Username: x.Username, Password: x.Password,
		FirstName: x.Username, Email: x.Email, EmailVerified: !x.EmailUnverified,
		PreferredLanguage: language.English,
	}
}

// capture collects the IDs of the access tokens created while serving one
// token-endpoint request, so Revoke can find a token's client later.
type captureKey struct{}

type capture struct {
	mu  sync.Mutex
	ids []string
}

func (c *capture) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
}

func (c *capture) only() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ids) != 1 {
		return "", fmt.Errorf("%d access tokens created in one request", len(c.ids))
	}
	return c.ids[0], nil
}
