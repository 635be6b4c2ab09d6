package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/jwks"
	"github.com/authgateway/authgateway/internal/login"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/tokens"
)

// sessions is what browser login contributes to the gateway.
type sessions struct {
	// Endpoints are /auth/login, /auth/callback, /auth/logout, /auth/refresh,
	// /auth/session by canonical path.
	Endpoints map[string]http.Handler
	// Revocations is the access-token denylist the jwt strategy consults.
	Revocations strategies.Revocations
}

// buildSessions builds the login flow and session stores when some oauth2
// strategy has login: true; nil otherwise.
func (a *App) buildSessions(ctx context.Context) (*sessions, error) {
	s, closeFn, err := newSessions(ctx, sessionDeps{
		cfg: a.Config(), logger: a.Logger, redis: a.Redis, issuer: a.Issuer, audit: a.auditRequest,
		idp: a.idp, keySets: a.keySets,
		// Read at request time: the Gateway is built after the sessions.
		onFailure: func(r *http.Request) {
			if g := a.Gateway; g != nil {
				g.CountAuthFailure(r)
			}
		},
	})
	if closeFn != nil {
		a.closers = append(a.closers, closeFn)
	}
	return s, err
}

type sessionDeps struct {
	cfg       *config.Config
	logger    *slog.Logger
	redis     redis.UniversalClient
	issuer    *tokens.Issuer
	onFailure func(*http.Request)
	audit     func(*http.Request, audit.Event)
	idp       *http.Client
	keySets   *jwks.Sets
}

func newSessions(_ context.Context, d sessionDeps) (*sessions, func(), error) {
	cfg := d.cfg
	names := make([]string, 0, len(cfg.Strategies))
	for name, sc := range cfg.Strategies {
		if sc != nil && sc.Type == "oauth2" && sc.Login {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, nil, nil
	}
	sort.Strings(names)
	name := names[0]
	sc := cfg.Strategies[name]
	path := "strategies." + name
	if len(names) > 1 {
		// The endpoints are fixed paths: there is room for one provider.
		return nil, nil, config.Errors{cfg.Problem("strategies."+names[1]+".login", "only one oauth2 strategy may have login: true (%s has it too)", name)}
	}
	if d.issuer == nil || d.issuer.Keys.Signer() == nil {
		return nil, nil, config.Errors{cfg.Problem(path+".login", "login: true needs tokens.signing_keys with a signing key: the gateway mints the session tokens")}
	}
	secret, err := stateSecret(cfg.Tokens.SigningKeys[0])
	if err != nil {
		return nil, nil, config.Errors{cfg.Problem("tokens.signing_keys[0]", "%v", err)}
	}
	var algs []string
	for _, k := range cfg.Tokens.SigningKeys {
		if !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	mgr, err := session.New(session.Options{Issuer: d.issuer, Algorithms: algs, Redis: d.redis, Logger: d.logger})
	if err != nil {
		return nil, nil, config.Errors{cfg.Problem(path+".login", "%v", err)}
	}
	h, err := login.New(login.Options{
		Name: name, IssuerURL: sc.IssuerURL, AuthorizationURL: sc.AuthorizationURL, TokenURL: sc.TokenURL,
		JWKSURL: sc.JWKSURL, UserinfoURL: sc.UserinfoURL, ClientID: sc.ClientID, ClientSecret: sc.ClientSecret,
		Scopes: sc.Scopes, RedirectURL: sc.RedirectURL, AllowedRedirectHosts: sc.AllowedRedirectHosts,
		RolesClaim: sc.RolesClaim, EmailClaim: sc.EmailClaim, AllowUnverifiedEmail: sc.AllowUnverifiedEmail,
		Issuer: d.issuer, Algorithms: algs, Sessions: mgr, StateSecret: secret,
		AccessCookie: sessionCookie(cfg, d.logger), HTTPClient: d.idp, KeySets: d.keySets,
		Logger: d.logger, OnFailure: d.onFailure, Audit: d.audit,
	})
	if err != nil {
		mgr.Close()
		return nil, nil, config.Errors{cfg.Problem(path, "%v", err)}
	}
	return &sessions{Endpoints: h.Endpoints(), Revocations: mgr}, mgr.Close, nil
}

// stateSecret is the keying material of the login-state cookie: the first
// signing key's HMAC secret or private key file. Every replica has it, and
// HKDF derives a key for this purpose alone. Rotating signing_keys[0]
// invalidates logins in flight (at most 10 minutes' worth).
func stateSecret(k config.SigningKey) ([]byte, error) {
	if k.Secret != "" {
		return []byte(k.Secret), nil
	}
	if k.PrivateKeyFile == "" || len(k.KeyPEM) == 0 {
		return nil, fmt.Errorf("login needs the first signing key to have a secret or private_key_file")
	}
	return k.KeyPEM, nil
}

// sessionCookie is the access cookie the jwt strategies (keys: tokens) read;
// the login must set that one.
func sessionCookie(cfg *config.Config, logger *slog.Logger) string {
	var found []string
	for _, sc := range cfg.Strategies {
		if sc != nil && sc.Type == "jwt" && sc.Keys == "tokens" && sc.Cookie != "" && !slices.Contains(found, sc.Cookie) {
			found = append(found, sc.Cookie)
		}
	}
	switch len(found) {
	case 0:
		logger.Warn("login is enabled but no jwt strategy with keys: tokens reads the session cookie; sessions will not open any route")
		return config.DefaultSessionCookie
	case 1:
		return found[0]
	}
	sort.Strings(found)
	logger.Warn("jwt strategies read different session cookies; login sets the first", "cookie", found[0])
	return found[0]
}

// auditRequest records an endpoint's audit event with what the gateway
// established about r: the request id of its access-log line (accepted or
// generated: never a raw client value) and the client IP it resolved, so the
// audit line joins the access log.
func (a *App) auditRequest(r *http.Request, ev audit.Event) {
	if a.Audit == nil {
		return
	}
	// The endpoints are served only through the gateway; a handler called
	// otherwise records no address or id rather than one the client wrote.
	if info, ok := proxy.RequestInfo(r); ok {
		ev.ClientIP, ev.RequestID, ev.Path = info.ClientIP.String(), info.RequestID, info.Path
	}
	if ev.Route == "" {
		ev.Route = "gateway"
	}
	a.Audit.Write(ev)
}
