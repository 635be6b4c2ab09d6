package login

import (
	"context"
	"errors"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/strategies"
)

// providerTokenAAD binds a sealed provider refresh token to its use.
const providerTokenAAD = "authgateway provider refresh token v1"

// sealProviderToken seals the provider's refresh token for the session
// store: it never leaves the gateway, and a reader of Redis cannot use it.
func (h *Handler) sealProviderToken(rt string) (string, error) {
	return h.codec.sealBytes([]byte(rt), []byte(providerTokenAAD))
}

// update re-reads a session's identity at the provider (session.Updater,
// sessions.update_on_refresh): the sealed refresh token buys a new access
// token, whose userinfo gives the roles and email now. The provider
// refusing the refresh token or the userinfo (a user disabled, a session
// ended there) ends the gateway session; the provider being unreachable
// leaves it as it was.
func (h *Handler) update(ctx context.Context, id session.Identity) (session.Identity, error) {
	if id.ProviderRefresh == "" {
		return id, nil // a login before update_on_refresh, or no refresh token given
	}
	rt, err := h.codec.openBytes(id.ProviderRefresh, []byte(providerTokenAAD))
	if err != nil {
		return id, fmt.Errorf("%w: sealed provider token unreadable", session.ErrProviderRefused)
	}
	p, err := h.provider(ctx)
	if err != nil {
		return id, err
	}
	cctx := oidc.ClientContext(ctx, h.o.HTTPClient)
	tok, err := p.oauth.TokenSource(cctx, &oauth2.Token{RefreshToken: string(rt)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			return id, fmt.Errorf("%w: refresh grant: %s", session.ErrProviderRefused, re.ErrorCode)
		}
		return id, fmt.Errorf("provider refresh grant: %w", err)
	}
	ui, err := p.op.UserInfo(cctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		// go-oidc reports the status in its error text only: a 4xx is the
		// provider's refusal, anything else an outage.
		if isClientStatus(err) {
			return id, fmt.Errorf("%w: userinfo: %v", session.ErrProviderRefused, err)
		}
		return id, fmt.Errorf("provider userinfo: %w", err)
	}
	if ui.Subject != id.Subject {
		return id, fmt.Errorf("%w: userinfo for another subject", session.ErrProviderRefused)
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		return id, fmt.Errorf("reading userinfo: %w", err)
	}
	next := id
	next.Roles = strategies.NewClaimPaths(h.o.RolesClaim, "roles").Strings(claims)
	if email, _ := claims[h.o.EmailClaim].(string); email == "" || strategies.EmailUnverified(claims) {
		next.Email = ""
	} else if _, stated := claims["email_verified"]; stated || h.o.AllowUnverifiedEmail {
		next.Email = email
	}
	if tok.RefreshToken != "" {
		if next.ProviderRefresh, err = h.sealProviderToken(tok.RefreshToken); err != nil {
			return id, err
		}
	}
	if raw, _ := tok.Extra("id_token").(string); h.o.ProviderLogout && raw != "" && len(raw) <= 8<<10 {
		next.IDToken = raw // the newest hint for a provider logout
	}
	return next, nil
}

// isClientStatus reports whether a go-oidc userinfo error carries a 4xx
// status ("401 Unauthorized: ...").
func isClientStatus(err error) bool {
	msg := err.Error()
	return len(msg) >= 3 && msg[0] == '4' && msg[1] >= '0' && msg[1] <= '9' && msg[2] >= '0' && msg[2] <= '9'
}
