package login

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"github.com/authgateway/authgateway/internal/audit"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgateway/authgateway/internal/jwscheck"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/strategies"
)

// serveLogin starts a login: a fresh state, nonce and PKCE verifier go into
// the encrypted state cookie, and the browser to the provider.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writePage(w, http.StatusMethodNotAllowed, "Method not allowed", "Sign-in starts with a GET request.")
		return
	}
	p, err := h.provider(r.Context())
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "identity provider unavailable",
			slog.String("reason", "discovery_failed"), slog.String("error", err.Error()))
		writePage(w, http.StatusBadGateway, "Sign-in unavailable", "The identity provider cannot be reached. Please try again in a moment.")
		return
	}
	st := loginState{
		State:    h.newID(),
		Nonce:    h.newID(),
		Verifier: oauth2.GenerateVerifier(),
		RD:       h.redirects.Safe(r.URL.Query().Get("rd")),
		Expires:  h.o.Now().Add(StateTTL).Unix(),
	}
	sealed, err := h.codec.seal(st)
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "sealing login state", slog.String("error", err.Error()))
		writePage(w, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: h.o.StateCookie, Value: sealed, Path: "/", MaxAge: int(StateTTL / time.Second),
		// Lax: the callback arrives as a top-level cross-site navigation
		// from the provider; Strict would withhold the cookie there.
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	target := p.oauth.AuthCodeURL(st.State, oauth2.S256ChallengeOption(st.Verifier), oidc.Nonce(st.Nonce))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
}

// newID is 256 random bits, base64url (state and nonce).
func (h *Handler) newID() string { return oauth2.GenerateVerifier() }

// serveCallback finishes a login: the state must match the cookie's and is
// consumed, the code is exchanged with the PKCE verifier, the ID token is
// verified (signature, iss, aud, exp, nonce), and a session begins.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writePage(w, http.StatusMethodNotAllowed, "Method not allowed", "The sign-in callback takes a GET request.")
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	c, err := r.Cookie(h.o.StateCookie)
	if err != nil || c.Value == "" {
		h.deny(ctx, "state_cookie_missing")
		writePage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in was not started here, has expired or was already used. Please start again.")
		return
	}
	// Single use: whatever happens next, the cookie is gone.
	h.clearCookie(w.Header(), h.o.StateCookie, http.SameSiteLaxMode)
	st, err := h.codec.open(c.Value)
	if err != nil || h.o.Now().Unix() > st.Expires {
		h.deny(ctx, "state_cookie_invalid")
		writePage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in has expired or is not valid. Please start again.")
		return
	}
	if got := q.Get("state"); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(st.State)) != 1 {
		h.deny(ctx, "state_mismatch")
		writePage(w, http.StatusBadRequest, "Sign-in failed", "The sign-in response does not belong to this browser's sign-in. Please start again.")
		return
	}
	ttl := time.Until(time.Unix(st.Expires, 0)) + time.Minute
	first, err := h.o.Sessions.ConsumeOnce(ctx, "state:"+st.State, ttl)
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "recording login state", slog.String("error", err.Error()))
		writePage(w, http.StatusServiceUnavailable, "Sign-in unavailable", "Please try again in a moment.")
		return
	}
	if !first {
		h.deny(ctx, "state_replayed")
		writePage(w, http.StatusBadRequest, "Sign-in already used", "This sign-in response was already used. Please start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		h.deny(ctx, "provider_error")
		msg := "The identity provider answered: " + e
		if d := q.Get("error_description"); d != "" {
			msg += " (" + d + ")"
		}
		writePage(w, http.StatusBadRequest, "Sign-in refused", truncate(msg, 300))
		return
	}
	code := q.Get("code")
	if code == "" {
		h.deny(ctx, "code_missing")
		writePage(w, http.StatusBadRequest, "Sign-in failed", "The identity provider sent no authorization code.")
		return
	}
	p, err := h.provider(ctx)
	if err != nil {
		writePage(w, http.StatusBadGateway, "Sign-in unavailable", "The identity provider cannot be reached. Please try again in a moment.")
		return
	}
	id, status, msg := h.identify(r, p, code, st)
	if id == nil {
		writePage(w, status, "Sign-in failed", msg)
		return
	}
	t, err := h.o.Sessions.Start(ctx, *id)
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "starting session", slog.String("error", err.Error()))
		writePage(w, http.StatusServiceUnavailable, "Sign-in unavailable", "Please try again in a moment.")
		return
	}
	h.setSessionCookies(w.Header(), t)
	h.log.LogAttrs(ctx, slog.LevelInfo, "login", slog.String("subject", id.Subject), slog.String("family", t.Family))
	h.audit(r, audit.Event{Event: audit.Login, Subject: id.Subject, Strategy: "login"})
	writeContinue(w, h.redirects.Safe(st.RD))
}

// identify exchanges the code and verifies the ID token; on failure it
// returns the status and message to show.
func (h *Handler) identify(r *http.Request, p *provider, code string, st loginState) (*session.Identity, int, string) {
	ctx := oidc.ClientContext(r.Context(), h.o.HTTPClient)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		attrs := []slog.Attr{slog.String("reason", "code_exchange_failed")}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			attrs = append(attrs, slog.String("provider_error", re.ErrorCode))
		} else {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		h.log.LogAttrs(ctx, slog.LevelWarn, "login denied", attrs...)
		h.audit(r, audit.Event{Event: audit.LoginFailure, Reason: "code_exchange_failed"})
		return nil, http.StatusBadGateway, "The identity provider did not accept this sign-in. Please start again."
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		h.deny(ctx, "id_token_missing")
		return nil, http.StatusBadGateway, "The identity provider sent no ID token."
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		h.failed(r)
		h.log.LogAttrs(ctx, slog.LevelWarn, "login denied", slog.String("reason", "id_token_invalid"), slog.String("error", err.Error()))
		h.audit(r, audit.Event{Event: audit.LoginFailure, Reason: "id_token_invalid"})
		return nil, http.StatusBadRequest, "The identity provider's answer could not be verified."
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		h.failed(r)
		h.deny(ctx, "nonce_mismatch")
		return nil, http.StatusBadRequest, "The identity provider's answer could not be verified."
	}
	// go-oidc checked the signature and go-jose refused crit extensions
	// other than b64; the bytes must also have one reading only (no
	// duplicate members, which go-oidc's struct decoding would read last
	// and case-insensitively, and no crit at all).
	if err := jwscheck.Check(raw); err != nil {
		reason := string(jwscheck.Reason(err))
		h.failed(r)
		h.deny(ctx, reason)
		h.audit(r, audit.Event{Event: audit.LoginFailure, Reason: reason})
		return nil, http.StatusBadRequest, "The identity provider's answer could not be verified."
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil || idt.Subject == "" {
		h.deny(ctx, "id_token_claims")
		return nil, http.StatusBadRequest, "The identity provider's answer could not be read."
	}
	// OIDC Core 3.1.3.7: with several audiences, azp must name us (go-oidc
	// only checks that we are among them).
	if azp, _ := claims["azp"].(string); len(idt.Audience) > 1 && azp != h.o.ClientID {
		h.failed(r)
		h.deny(ctx, "id_token_azp")
		return nil, http.StatusBadRequest, "The identity provider's answer could not be verified."
	}
	id := &session.Identity{Subject: idt.Subject}
	if h.o.ProviderLogout {
		// Kept only for the id_token_hint of a provider logout: about a
		// kilobyte per session that would otherwise sit in the store.
		id.IDToken = raw
	}
	if h.o.UpdateOnRefresh && tok.RefreshToken != "" {
		sealed, err := h.sealProviderToken(tok.RefreshToken)
		if err != nil {
			h.log.LogAttrs(ctx, slog.LevelError, "sealing the provider's refresh token", slog.String("error", err.Error()))
			return nil, http.StatusInternalServerError, "Something went wrong. Please try again."
		}
		id.ProviderRefresh = sealed
	}
	// The provider's session, for a back-channel logout that names it.
	if sid, _ := claims["sid"].(string); len(sid) <= 256 {
		id.ProviderSession = sid
	}
	roles := strategies.NewClaimPaths(h.o.RolesClaim, "roles")
	id.Roles = roles.Strings(claims)
	email, _ := claims[h.o.EmailClaim].(string)
	emailFrom := claims // the claims that vouch (or not) for the email
	if email == "" || id.Roles == nil {
		if ui := h.userinfo(ctx, p, tok, id.Subject); ui != nil {
			if email == "" {
				email, _ = ui[h.o.EmailClaim].(string)
				emailFrom = ui
			}
			if id.Roles == nil {
				id.Roles = roles.Strings(ui)
			}
		}
	}
	if email != "" {
		_, stated := emailFrom["email_verified"]
		switch {
		case stated && !strategies.EmailUnverified(emailFrom):
			id.Email = email
		case stated && !h.o.AllowUnverifiedEmail:
			h.deny(ctx, "email_unverified")
			h.audit(r, audit.Event{Event: audit.LoginFailure, Subject: id.Subject, Reason: "email_unverified"})
			return nil, http.StatusForbidden, "Your email address is not verified at the identity provider. Verify it there, then sign in again."
		case !stated && h.o.AllowUnverifiedEmail:
			// The operator vouches for a provider that never says.
			id.Email = email
		}
		// Otherwise the session has no email: the provider says it is not
		// verified (and the switch lets the user in anyway), or says nothing
		// (many providers never send email_verified; zitadel leaves it out
		// when it is false). Refusing those logins would lock out every user
		// of such a provider; not vouching for the email is enough.
	}
	return id, 0, ""
}

// userinfo answers the claims of the userinfo endpoint, when the provider
// has one and it speaks of subject; nil otherwise. Best effort: a login
// does not fail for it.
func (h *Handler) userinfo(ctx context.Context, p *provider, tok *oauth2.Token, subject string) map[string]any {
	if p.op.UserInfoEndpoint() == "" {
		return nil
	}
	ui, err := p.op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != subject {
		return nil
	}
	var claims map[string]any
	if ui.Claims(&claims) != nil {
		return nil
	}
	return claims
}

// serveRefresh rotates the refresh token (POST, same origin only).
func (h *Handler) serveRefresh(w http.ResponseWriter, r *http.Request) {
	if !h.postSameOrigin(w, r) {
		return
	}
	c, err := r.Cookie(h.o.RefreshCookie)
	if err != nil || c.Value == "" {
		h.unauthorized(w, "no session")
		return
	}
	t, err := h.rotate(r, w.Header(), c.Value)
	switch {
	case errors.Is(err, session.ErrReused):
		h.unauthorized(w, "session revoked")
		return
	case errors.Is(err, session.ErrTooFrequent):
		w.Header().Set("Retry-After", "60")
		proxy.WriteError(w, http.StatusTooManyRequests, "refreshing too often")
		return
	case isClientRefusal(err):
		h.unauthorized(w, "session expired")
		return
	case err != nil:
		proxy.WriteError(w, http.StatusServiceUnavailable, "session store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		ExpiresAt   int64  `json:"expires_at"`
	}{t.Access, "Bearer", int64(t.AccessExpiry.Sub(h.o.Now()).Seconds()), t.AccessExpiry.Unix()})
}

// isClientRefusal reports a refresh error that ends the browser's session
// (its cookies are cleared), as opposed to a technical failure.
func isClientRefusal(err error) bool {
	return errors.Is(err, session.ErrInvalidToken) || errors.Is(err, session.ErrRevoked) ||
		errors.Is(err, session.ErrReused) || errors.Is(err, session.ErrExpired) ||
		errors.Is(err, session.ErrProviderRefused)
}

// rotate refreshes the session of refresh token raw for r, at /auth/refresh
// or inside a request (Renew). The new cookies are set in hdr; a refusal
// that ends the session clears them. Every outcome is logged, audited and
// counted here.
func (h *Handler) rotate(r *http.Request, hdr http.Header, raw string) (*session.Tokens, error) {
	ctx := r.Context()
	t, err := h.o.Sessions.Refresh(ctx, raw)
	switch {
	case err == nil && t.Grace:
		h.count(MetricGrace)
		h.audit(r, audit.Event{Event: audit.RefreshGrace, TokenID: t.AccessID})
	case err == nil:
		h.count(MetricRefresh)
		h.audit(r, audit.Event{Event: audit.RefreshRotated, TokenID: t.AccessID})
	case errors.Is(err, session.ErrReused):
		h.failed(r)
		h.deny(ctx, "refresh_reuse")
		h.count(MetricReuse)
		h.audit(r, audit.Event{Event: audit.RefreshReuse, Reason: "refresh_reuse"})
	case errors.Is(err, session.ErrInvalidToken):
		h.failed(r)
		h.deny(ctx, "refresh_invalid")
	case errors.Is(err, session.ErrExpired):
		h.deny(ctx, "session_absolute_expiry")
		h.count(MetricAbsoluteExpiry)
		h.audit(r, audit.Event{Event: audit.SessionExpired, Reason: "absolute_ttl"})
	case errors.Is(err, session.ErrProviderRefused):
		h.deny(ctx, "provider_refused")
		h.count(MetricProviderRefused)
		h.audit(r, audit.Event{Event: audit.SessionProviderRefused, Reason: "provider_refused"})
	case errors.Is(err, session.ErrRevoked):
		h.deny(ctx, "session_revoked")
	case errors.Is(err, session.ErrTooFrequent):
		h.deny(ctx, "refresh_too_frequent")
	default:
		h.log.LogAttrs(ctx, slog.LevelError, "refreshing session", slog.String("error", err.Error()))
	}
	switch {
	case err == nil:
		h.setSessionCookies(hdr, t)
	case isClientRefusal(err):
		h.clearSessionCookies(hdr)
	}
	return t, err
}

// AccessCookie is the session's access cookie (proxy.SessionRenewer).
func (h *Handler) AccessCookie() string { return h.o.AccessCookie }

// Fresh reports whether an access token expiring at exp is not yet due for
// renewal (implements proxy.SessionRenewer): more than RefreshBefore left,
// or no transparent refresh at all.
func (h *Handler) Fresh(exp time.Time) bool {
	return !h.o.TransparentRefresh || exp.Sub(h.o.Now()) > h.o.RefreshBefore
}

// Renew refreshes r's session inside r when its access cookie is missing,
// expired, revoked or expires within RefreshBefore and it carries a refresh
// cookie (transparent refresh, proxy.SessionRenewer): r's Cookie header
// then holds the new access token, for the strategies, and hdr the new
// cookies, for the browser. It reports whether it rotated. A session that
// cannot be renewed is left as it came: the strategies judge it. due says
// the caller verified r's access cookie and found it due (Fresh false):
// it is not verified again.
func (h *Handler) Renew(r *http.Request, hdr http.Header, due bool) bool {
	if !h.o.TransparentRefresh {
		return false
	}
	rc, err := r.Cookie(h.o.RefreshCookie)
	if err != nil || rc.Value == "" {
		return false
	}
	if _, bearer := strategies.BearerToken(r); bearer {
		return false // the strategies read the bearer token, not the cookie
	}
	if !due {
		id, err := h.access.Authenticate(r.Context(), r)
		if err == nil && h.Fresh(id.ExpiresAt) {
			return false
		}
		if err != nil && !errors.Is(err, strategies.ErrNoCredentials) && !errors.Is(err, strategies.ErrInvalidCredentials) {
			return false // the revocation list cannot be read: nothing to decide on
		}
	}
	t, err := h.rotate(r, hdr, rc.Value)
	if err != nil {
		return false
	}
	setRequestCookie(r.Header, h.o.AccessCookie, t.Access)
	return true
}

// setRequestCookie makes name=value the only cookie of that name in the
// Cookie header(s) of h, keeping the others as they were.
func setRequestCookie(h http.Header, name, value string) {
	var kept []string
	for _, line := range h["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if n, _, _ := strings.Cut(p, "="); p == "" || strings.TrimSpace(n) == name {
				continue
			}
			kept = append(kept, p)
		}
	}
	h["Cookie"] = []string{strings.Join(append(kept, name+"="+value), "; ")}
}

// serveLogout ends the session: the refresh family is revoked and the
// access tokens minted in it are denied on every replica. A POST must come
// from this origin (postSameOrigin). A GET is a top-level navigation (a
// "Log out" link): it acts only when the browser says it was started on
// this origin or by the user (Sec-Fetch-Site same-origin or none); from
// anywhere else it answers a page whose button posts here, so no other
// site can log anyone out. With provider_logout the browser then goes on
// to the provider's end_session_endpoint (RP-initiated logout), which
// sends it back to post_logout_redirect.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	navigate := r.Header.Get("Sec-Fetch-Mode") == "navigate"
	if r.Method == http.MethodGet {
		if site := r.Header.Get("Sec-Fetch-Site"); site != "same-origin" && site != "none" {
			h.deny(r.Context(), "logout_cross_site_get")
			writeLogoutConfirm(w, h.providerOrigin(r))
			return
		}
		navigate = true
	} else if !h.postSameOrigin(w, r) {
		return
	}
	access := ""
	if c, err := r.Cookie(h.o.AccessCookie); err == nil {
		access = c.Value
	}
	if tok, ok := strategies.BearerToken(r); ok {
		access = tok
	}
	refresh := ""
	if c, err := r.Cookie(h.o.RefreshCookie); err == nil {
		refresh = c.Value
	}
	h.clearSessionCookies(w.Header())
	id, err := h.o.Sessions.LogoutIdentity(r.Context(), access, refresh)
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "logout not propagated", slog.String("error", err.Error()))
		proxy.WriteError(w, http.StatusServiceUnavailable, "logout could not be completed; please try again")
		return
	}
	ev := audit.Event{Event: audit.Logout}
	if id != nil {
		ev.Subject = id.Subject
	}
	h.audit(r, ev)
	next := h.providerLogoutURL(r, id)
	if next == "" {
		next = h.redirects.Safe(r.URL.Query().Get("rd"))
	} else {
		h.count(MetricProviderLogout)
		h.audit(r, audit.Event{Event: audit.ProviderLogout, Subject: ev.Subject})
	}
	// A navigation (a link, a plain HTML form: 303 turns its POST into a
	// GET) is sent on; fetch() gets JSON, with where to go next when the
	// provider's session is to end too.
	if navigate {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	body := map[string]string{"status": "logged_out"}
	if h.o.ProviderLogout && next != "" && !strings.HasPrefix(next, "/") {
		body["provider_logout_url"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

// providerOrigin is the origin of the provider's end_session_endpoint when
// logouts go on there, else "".
func (h *Handler) providerOrigin(r *http.Request) string {
	if !h.o.ProviderLogout {
		return ""
	}
	p, err := h.provider(r.Context())
	if err != nil {
		return ""
	}
	u, err := url.Parse(p.endSession)
	if err != nil || u.Host == "" || strings.ContainsAny(u.Host, " ;'") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// providerLogoutURL is the provider's end_session_endpoint with the
// session's id_token_hint (else our client_id), post_logout_redirect_uri
// and a fresh state; "" when provider logout is off or the provider has no
// such endpoint.
func (h *Handler) providerLogoutURL(r *http.Request, id *session.Identity) string {
	if !h.o.ProviderLogout {
		return ""
	}
	p, err := h.provider(r.Context())
	if err != nil || p.endSession == "" {
		return ""
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return ""
	}
	back := h.redirects.Safe(h.o.PostLogoutRedirect)
	if strings.HasPrefix(back, "/") {
		back = h.origin + back
	}
	q := u.Query()
	if id != nil && id.IDToken != "" {
		q.Set("id_token_hint", id.IDToken)
	} else {
		q.Set("client_id", h.o.ClientID)
	}
	q.Set("post_logout_redirect_uri", back)
	q.Set("state", h.newID())
	u.RawQuery = q.Encode()
	return u.String()
}

// serveSession answers the current identity, or 401.
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		proxy.WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	h.Renew(r, w.Header(), false)
	id, err := h.access.Authenticate(r.Context(), r)
	switch {
	case errors.Is(err, strategies.ErrNoCredentials), errors.Is(err, strategies.ErrInvalidCredentials):
		h.unauthorized(w, "no session")
		return
	case err != nil:
		h.log.LogAttrs(r.Context(), slog.LevelError, "checking session", slog.String("error", err.Error()))
		proxy.WriteError(w, http.StatusServiceUnavailable, "session check unavailable")
		return
	}
	roles := id.Roles
	if roles == nil {
		roles = []string{}
	}
	writeJSON(w, http.StatusOK, struct {
		Sub   string   `json:"sub"`
		Email string   `json:"email,omitempty"`
		Roles []string `json:"roles"`
		Exp   int64    `json:"exp"`
	}{id.Subject, id.Email, roles, id.ExpiresAt.Unix()})
}

// postSameOrigin admits POSTs that a page of this gateway's own origin
// sent: Origin equal to ours, or, without Origin, Sec-Fetch-Site:
// same-origin. Browsers set both and scripts cannot forge them, so a page
// elsewhere cannot make a victim's browser refresh or end its session.
// Clients that send neither (curl) are refused too: these endpoints work by
// cookie, and only browsers hold the cookies.
func (h *Handler) postSameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		proxy.WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
		return false
	}
	ok := false
	if o := r.Header.Get("Origin"); o != "" {
		ok = o == h.origin
	} else {
		ok = r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	if !ok {
		h.deny(r.Context(), "cross_origin")
		proxy.WriteError(w, http.StatusForbidden, "cross-origin request refused")
	}
	return ok
}

func (h *Handler) unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="authgateway"`)
	proxy.WriteError(w, http.StatusUnauthorized, msg)
}

func (h *Handler) deny(ctx context.Context, reason string) {
	h.log.LogAttrs(ctx, slog.LevelInfo, "session request denied", slog.String("reason", reason))
}

func (h *Handler) setSessionCookies(hdr http.Header, t *session.Tokens) {
	now := h.o.Now()
	hdr.Add("Set-Cookie", h.sessionCookie(h.o.AccessCookie, t.Access, t.AccessExpiry.Sub(now)).String())
	hdr.Add("Set-Cookie", h.sessionCookie(h.o.RefreshCookie, t.Refresh, t.RefreshExpiry.Sub(now)).String())
	hdr.Set("Cache-Control", "no-store")
}

// sessionCookie: Strict, so that no other site can make the browser send
// it; the cookie lives exactly as long as its token, so an expired session
// is simply absent (and a navigation goes to login, not to a 401).
func (h *Handler) sessionCookie(name, value string, ttl time.Duration) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: max(int(ttl/time.Second), 1),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

func (h *Handler) clearSessionCookies(hdr http.Header) {
	h.clearCookie(hdr, h.o.AccessCookie, http.SameSiteStrictMode)
	h.clearCookie(hdr, h.o.RefreshCookie, http.SameSiteStrictMode)
	hdr.Set("Cache-Control", "no-store")
}

func (h *Handler) clearCookie(hdr http.Header, name string, ss http.SameSite) {
	hdr.Add("Set-Cookie", (&http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: ss}).String())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		proxy.WriteError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
