package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"

	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/login"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/session"
)

// buildLogin builds the login and session endpoints of generation g from
// the oauth2 strategy with login: true, if cfg has one: with g's signing
// keys, the strategy's provider, client secret and redirect settings, over
// the process's session store (built with the first generation). A config
// that turns login on after start gets no endpoints until a restart
// (restartKeys says so): the session store is built once.
func (a *App) buildLogin(cfg *config.Config, g *generation) (*login.Handler, error) {
	names := make([]string, 0, len(cfg.Strategies))
	for name, sc := range cfg.Strategies {
		if sc != nil && sc.Type == "oauth2" && sc.Login {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	sort.Strings(names)
	name := names[0]
	sc := cfg.Strategies[name]
	path := "strategies." + name
	if len(names) > 1 {
		// The endpoints are fixed paths: there is room for one provider.
		return nil, config.Errors{cfg.Problem("strategies."+names[1]+".login", "only one oauth2 strategy may have login: true (%s has it too)", name)}
	}
	if g.issuer == nil {
		return nil, config.Errors{cfg.Problem(path+".login", "login: true needs tokens.signing_keys with a signing key: the gateway mints the session tokens")}
	}
	secret, err := stateSecret(cfg.Tokens.SigningKeys[0])
	if err != nil {
		return nil, config.Errors{cfg.Problem("tokens.signing_keys[0]", "%v", err)}
	}
	algs := signingAlgorithms(cfg)
	if a.sessions == nil {
		if a.gen.Load() != nil {
			return nil, nil // login turned on by a reload: after a restart
		}
		mgr, err := session.New(session.Options{Issuer: g.issuer, Algorithms: algs, Redis: a.Redis, Logger: a.Logger, DryRun: a.dryRun})
		if err != nil {
			return nil, config.Errors{cfg.Problem(path+".login", "%v", err)}
		}
		a.sessions = mgr
	}
	h, err := login.New(login.Options{
		Name: name, IssuerURL: sc.IssuerURL, AuthorizationURL: sc.AuthorizationURL, TokenURL: sc.TokenURL,
		JWKSURL: sc.JWKSURL, UserinfoURL: sc.UserinfoURL, ClientID: sc.ClientID, ClientSecret: sc.ClientSecret,
		Scopes: sc.Scopes, RedirectURL: sc.RedirectURL, AllowedRedirectHosts: sc.AllowedRedirectHosts,
		RolesClaim: sc.RolesClaim, EmailClaim: sc.EmailClaim, AllowUnverifiedEmail: sc.AllowUnverifiedEmail,
		Issuer: g.issuer, Algorithms: algs, Sessions: a.sessions.WithIssuer(g.issuer, algs).WithLimits(cfg.Sessions.ReuseGrace.D(), cfg.Sessions.AbsoluteTTL.D()), StateSecret: secret,
		AccessCookie: sessionCookie(cfg, a.Logger), HTTPClient: a.idp, KeySets: a.keySets,
		Logger: a.Logger, Audit: a.auditRequest, Count: a.Metrics.SessionEvent,
		TransparentRefresh: cfg.Sessions.TransparentRefreshOn(), RefreshBefore: cfg.Sessions.RefreshBefore.D(),
		BackchannelLogout: cfg.Sessions.BackchannelLogout, ProviderLogout: cfg.Sessions.ProviderLogout,
		UpdateOnRefresh:    cfg.Sessions.UpdateOnRefresh,
		PostLogoutRedirect: cfg.Sessions.PostLogoutRedirect,
		// The generation's gateway is built after its endpoints.
		OnFailure: func(r *http.Request) { g.gateway.CountAuthFailure(r) },
	})
	if err != nil {
		return nil, config.Errors{cfg.Problem(path, "%v", err)}
	}
	return h, nil
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
