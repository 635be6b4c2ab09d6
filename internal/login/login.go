// Package login is the gateway's browser login: the OAuth2 authorization
// code flow with PKCE against an OpenID Provider (/auth/login,
// /auth/callback), and the session endpoints that follow it (/auth/refresh,
// /auth/logout, /auth/session).
//
// A login ends in a session of the gateway's own: an access token and a
// rotating refresh token (package session) in __Host- cookies that are
// HttpOnly, Secure and SameSite=Strict. The jwt strategy with keys: tokens
// reads the access cookie on every route.
package login

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/jwks"
	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/jwt"
	"github.com/authgateway/authgateway/internal/tokens"
)

// Cookie names (defaults). __Host- makes the browser insist on Secure,
// Path=/ and no Domain: no sibling subdomain can set or shadow them.
const (
	DefaultAccessCookie  = config.DefaultSessionCookie
	DefaultRefreshCookie = "__Host-authgw_refresh"
	DefaultStateCookie   = "__Host-authgw_login"
)

// StateTTL is how long a login may take from /auth/login to /auth/callback.
const StateTTL = 10 * time.Minute

// Endpoint paths (contract).
const (
	PathLogin    = "/auth/login"
	PathCallback = "/auth/callback"
	PathRefresh  = "/auth/refresh"
	PathLogout   = "/auth/logout"
	PathSession  = "/auth/session"
)

// Options configure a Handler.
type Options struct {
	// Name is the oauth2 strategy's configured name (logs).
	Name string
	// IssuerURL is the provider's issuer: discovery, and the iss every ID
	// token must carry. Required.
	IssuerURL string
	// AuthorizationURL, TokenURL, JWKSURL, UserinfoURL override what
	// discovery finds; with the first three set, discovery is skipped.
	AuthorizationURL, TokenURL, JWKSURL, UserinfoURL string
	ClientID, ClientSecret                           string
	// Scopes requested; "openid" is always added (the config's default is
	// config.DefaultLoginScopes).
	Scopes []string
	// RedirectURL is this gateway's /auth/callback as the provider knows it;
	// its origin is the gateway's own origin (CSRF checks, redirects).
	RedirectURL string
	// AllowedRedirectHosts may be named by an absolute post-login rd.
	AllowedRedirectHosts []string
	// RolesClaim are the (dotted) ID token or userinfo claims holding roles,
	// their values joined; none reads none (the config's default is
	// config.DefaultRolesClaim).
	RolesClaim []string
	// EmailClaim is the ID token claim holding the email; "" reads none
	// (the config's default is config.DefaultEmailClaim).
	EmailClaim string
	// AllowUnverifiedEmail lets users sign in whose email the provider states
	// unverified (email_verified false); their session has no email. Default
	// false: such a login is refused (403, reason email_unverified). An email
	// the provider says nothing about is kept only with the switch; without
	// it the login succeeds and the session has no email.
	AllowUnverifiedEmail bool

	// TransparentRefresh lets Renew rotate sessions inside requests;
	// RefreshBefore is how long before expiry an access cookie is renewed.
	// Defaults false and 0 (the config's are true and 1m).
	TransparentRefresh bool
	RefreshBefore      time.Duration
	// UpdateOnRefresh re-reads the user's roles and email from the provider
	// at every rotation (its refresh token, sealed in the session store,
	// then userinfo); the provider refusing ends the session. It asks for
	// the offline_access scope. Default false.
	UpdateOnRefresh bool
	// BackchannelLogout serves PathBackchannelLogout. Default false.
	BackchannelLogout bool
	// ProviderLogout sends /auth/logout on to the provider's
	// end_session_endpoint (RP-initiated logout), which brings the browser
	// back to PostLogoutRedirect (a path of this gateway or an allowed
	// host; default "/"). Default false.
	ProviderLogout     bool
	PostLogoutRedirect string
	// Count, when set, is told of each session event by its metric name
	// (Metric* constants).
	Count func(event string)

	// Issuer is the gateway's token issuer (verifies the access cookie).
	Issuer *tokens.Issuer
	// Algorithms of tokens.signing_keys; default the signing key's.
	Algorithms []string
	// Sessions mints, rotates and revokes sessions. Required.
	Sessions *session.Manager
	// StateSecret is the input keying material of the state cookie key
	// (at least 32 bytes; the same on every replica). Required.
	StateSecret []byte
	// Cookie names; defaults above. AccessCookie must be the cookie the jwt
	// strategy reads.
	AccessCookie, RefreshCookie, StateCookie string

	// HTTPClient talks to the provider: an idp.Harden one (no redirects, a
	// timeout, a size cap). Default: idp.NewHTTPClient().
	HTTPClient *http.Client
	// KeySets are the providers' key sets by URL, shared with the oauth2
	// strategies: ID tokens are checked against the same cached set. nil:
	// a set of the login's own.
	KeySets *jwks.Sets
	// Logger; nil discards.
	Logger *slog.Logger
	// OnFailure, when set, is told of a failed attempt that only the client
	// itself can have caused (a forged or reused refresh token, an ID token
	// that does not verify), to count it against the client's IP.
	OnFailure func(*http.Request)
	// Audit, when set, records login, logout, login failures and refresh
	// reuse in the audit log (the callee adds client IP and request id).
	Audit func(r *http.Request, ev audit.Event)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Handler serves the login and session endpoints.
type Handler struct {
	o         Options
	log       *slog.Logger
	origin    string // scheme://host[:port] of RedirectURL, as browsers send Origin
	redirects Redirects
	codec     *stateCodec
	access    strategies.Strategy // the session cookie's verifier (the jwt strategy's)
	scopes    []string
	prov      *idp.Lazy[provider] // discovered on first use
}

// provider is the discovered OpenID Provider.
type provider struct {
	op       *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	// logoutVerifier checks back-channel logout tokens: the same keys, iss
	// and aud; their exp is optional and checked by the caller.
	logoutVerifier *oidc.IDTokenVerifier
	// endSession is the provider's end_session_endpoint, if any.
	endSession string
}

// New validates o and builds the handler. It does no network I/O: the
// provider is discovered on first use (retried at most once per
// idp.RetryInterval while it cannot be reached), so the gateway starts (and
// `validate` passes) while the provider is down.
func New(o Options) (*Handler, error) {
	switch {
	case o.IssuerURL == "":
		return nil, errors.New("login needs issuer_url (ID tokens are checked against it)")
	case o.ClientID == "" || o.ClientSecret == "":
		return nil, errors.New("login needs client_id and client_secret")
	case o.Sessions == nil || o.Issuer == nil:
		return nil, errors.New("login needs the session manager and token issuer")
	}
	self, err := url.Parse(o.RedirectURL)
	if err != nil || (self.Scheme != "https" && self.Scheme != "http") || self.Host == "" {
		return nil, fmt.Errorf("login needs an absolute http(s) redirect_url, got %q", o.RedirectURL)
	}
	if o.AccessCookie == "" {
		o.AccessCookie = DefaultAccessCookie
	}
	if o.RefreshCookie == "" {
		o.RefreshCookie = DefaultRefreshCookie
	}
	if o.StateCookie == "" {
		o.StateCookie = DefaultStateCookie
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = idp.NewHTTPClient()
	}
	if o.KeySets == nil {
		o.KeySets = jwks.NewSets(o.HTTPClient, jwks.Options{})
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []string{o.Issuer.Keys.Signer().Alg}
	}
	codec, err := newStateCodec(o.StateSecret, o.StateCookie)
	if err != nil {
		return nil, err
	}
	// The session cookie is checked exactly as a jwt strategy with keys:
	// tokens checks it on every route, with that strategy's defaults.
	sc := &config.Strategy{
		Type: "jwt", Keys: "tokens", Issuer: o.Issuer.Issuer, Audience: o.Issuer.Audience,
		Algorithms: o.Algorithms, Cookie: o.AccessCookie,
	}
	sc.Provision()
	access, err := jwt.New("session", sc, strategies.Deps{
		Tokens:      &strategies.GatewayTokens{Keys: o.Issuer.Keys, Issuer: o.Issuer.Issuer, AccessTTL: o.Issuer.AccessTTL},
		Revocations: o.Sessions, Now: o.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("session verifier: %w", err)
	}
	scopes := o.Scopes
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	if o.UpdateOnRefresh && !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		scopes = append(slices.Clone(scopes), oidc.ScopeOfflineAccess) // a refresh token to re-read with
	}
	origin := self.Scheme + "://" + strings.ToLower(self.Host)
	if p := self.Port(); (self.Scheme == "https" && p == "443") || (self.Scheme == "http" && p == "80") {
		origin = self.Scheme + "://" + strings.ToLower(self.Hostname())
	}
	selfURL, _ := url.Parse(origin)
	h := &Handler{
		o: o, log: o.Logger.With("component", "login", "strategy", o.Name),
		origin: origin, redirects: Redirects{Self: selfURL, Hosts: o.AllowedRedirectHosts},
		codec: codec, access: access, scopes: scopes,
	}
	h.prov = idp.NewLazy(o.Now, h.newProvider)
	if o.UpdateOnRefresh {
		h.o.Sessions = o.Sessions.WithUpdater(h.update)
	}
	return h, nil
}

// Endpoints are the handlers by canonical path.
func (h *Handler) Endpoints() map[string]http.Handler {
	eps := map[string]http.Handler{
		PathLogin:    http.HandlerFunc(h.serveLogin),
		PathCallback: http.HandlerFunc(h.serveCallback),
		PathRefresh:  http.HandlerFunc(h.serveRefresh),
		PathLogout:   http.HandlerFunc(h.serveLogout),
		PathSession:  http.HandlerFunc(h.serveSession),
	}
	if h.o.BackchannelLogout {
		eps[PathBackchannelLogout] = http.HandlerFunc(h.serveBackchannelLogout)
	}
	return eps
}

// Origin is the gateway's own origin, derived from RedirectURL.
func (h *Handler) Origin() string { return h.origin }

// provider answers the discovered OpenID Provider (see idp.Lazy).
func (h *Handler) provider(ctx context.Context) (*provider, error) { return h.prov.Get(ctx) }

// newProvider is one discovery attempt: the explicit endpoints, the rest
// from the discovery document.
func (h *Handler) newProvider(ctx context.Context) (*provider, error) {
	o := h.o
	pc := oidc.ProviderConfig{IssuerURL: o.IssuerURL, AuthURL: o.AuthorizationURL,
		TokenURL: o.TokenURL, JWKSURL: o.JWKSURL, UserInfoURL: o.UserinfoURL}
	endSession := ""
	if pc.AuthURL == "" || pc.TokenURL == "" || pc.JWKSURL == "" {
		m, err := idp.Discover(ctx, o.HTTPClient, o.IssuerURL)
		if err != nil {
			return nil, err
		}
		pc.AuthURL = cmp.Or(pc.AuthURL, m.AuthURL)
		pc.TokenURL = cmp.Or(pc.TokenURL, m.TokenURL)
		pc.JWKSURL = cmp.Or(pc.JWKSURL, m.JWKSURL)
		pc.UserInfoURL = cmp.Or(pc.UserInfoURL, m.UserinfoURL)
		endSession = m.EndSessionURL
		// Only public-key algorithms: an HS256 ID token would be signed with
		// our client secret, which proves nothing about the provider.
		pc.Algorithms = m.IDTokenAlgorithms
	}
	if pc.AuthURL == "" || pc.TokenURL == "" || pc.JWKSURL == "" {
		return nil, errors.New("provider has no authorization, token or jwks endpoint")
	}
	if len(pc.Algorithms) == 0 {
		pc.Algorithms = []string{"RS256"} // the OIDC default
	}
	// The provider keeps our client (timeouts, no redirects) for userinfo.
	op := pc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), o.HTTPClient))
	// go-oidc checks iss, aud (our client id) and exp, and the signature
	// against the key set the oauth2 strategies share; the nonce is ours to
	// check.
	verifier := oidc.NewVerifier(o.IssuerURL, o.KeySets.Get(pc.JWKSURL),
		&oidc.Config{ClientID: o.ClientID, Now: o.Now, SupportedSigningAlgs: pc.Algorithms})
	logoutVerifier := oidc.NewVerifier(o.IssuerURL, o.KeySets.Get(pc.JWKSURL),
		&oidc.Config{ClientID: o.ClientID, Now: o.Now, SupportedSigningAlgs: pc.Algorithms, SkipExpiryCheck: true})
	return &provider{
		op: op, logoutVerifier: logoutVerifier, endSession: endSession,
		oauth: oauth2.Config{
			ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL, Scopes: h.scopes,
			// client_secret_basic, as the config reference promises.
			Endpoint: oauth2.Endpoint{AuthURL: pc.AuthURL, TokenURL: pc.TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
		},
		verifier: verifier,
	}, nil
}

func (h *Handler) failed(r *http.Request) {
	if h.o.OnFailure != nil {
		h.o.OnFailure(r)
	}
}

// Session events, as counted by Options.Count.
const (
	MetricRefresh           = "refresh"
	MetricGrace             = "grace"
	MetricReuse             = "reuse"
	MetricAbsoluteExpiry    = "absolute_expiry"
	MetricBackchannelLogout = "backchannel_logout"
	MetricProviderLogout    = "provider_logout"
	MetricProviderRefused   = "provider_refused"
)

func (h *Handler) count(event string) {
	if h.o.Count != nil {
		h.o.Count(event)
	}
}

func (h *Handler) audit(r *http.Request, ev audit.Event) {
	if h.o.Audit != nil {
		h.o.Audit(r, ev)
	}
}
