package login

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/jwscheck"
	"github.com/authgateway/authgateway/internal/proxy"
)

// PathBackchannelLogout is where the provider posts logout tokens (OIDC
// Back-Channel Logout 1.0).
const PathBackchannelLogout = "/auth/backchannel-logout"

// backchannelEvent is the member of a logout token's events claim that
// makes it one.
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// Logout tokens are accepted this long after their iat (and this much
// before it, for clocks that differ); their jti is remembered as long.
const (
	logoutTokenMaxAge = 5 * time.Minute
	logoutTokenLeeway = 30 * time.Second
)

// maxLogoutBody bounds the form a provider posts.
const maxLogoutBody = 64 << 10

// serveBackchannelLogout ends the sessions a logout token names: those of
// its sid (the provider session the login came from) or, without sid, every
// session of its sub, on every replica (the session store and its
// denylist). The token must be signed by the provider's key set, be
// addressed to us (iss, aud), recent (iat), carry the back-channel event,
// no nonce (an ID token is not a logout token), and be new (its jti is
// consumed in the shared store). Any refusal is 400 and ends nothing.
func (h *Handler) serveBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		proxy.WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutBody)
	if err := r.ParseForm(); err != nil || len(r.PostForm["logout_token"]) != 1 {
		h.refuseLogoutToken(w, r, "logout_token_missing", nil)
		return
	}
	lt, reason, err := h.verifyLogoutToken(r, r.PostForm.Get("logout_token"))
	if reason != "" {
		h.refuseLogoutToken(w, r, reason, err)
		return
	}
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "back-channel logout", slog.String("error", err.Error()))
		proxy.WriteError(w, http.StatusServiceUnavailable, "logout could not be completed")
		return
	}
	n := 0
	if lt.sid != "" {
		n, err = h.o.Sessions.RevokeProviderSession(ctx, lt.sid)
	} else {
		n, err = h.o.Sessions.RevokeSubject(ctx, lt.sub)
	}
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "back-channel logout not propagated", slog.String("error", err.Error()))
		proxy.WriteError(w, http.StatusServiceUnavailable, "logout could not be completed")
		return
	}
	h.count(MetricBackchannelLogout)
	h.log.LogAttrs(ctx, slog.LevelInfo, "back-channel logout", slog.String("subject", lt.sub), slog.Int("sessions", n))
	h.audit(r, audit.Event{Event: audit.BackchannelLogout, Subject: lt.sub, TokenID: lt.jti, Detail: fmt.Sprintf("%d sessions", n)})
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) refuseLogoutToken(w http.ResponseWriter, r *http.Request, reason string, err error) {
	attrs := []slog.Attr{slog.String("reason", reason)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "back-channel logout refused", attrs...)
	h.failed(r)
	h.audit(r, audit.Event{Event: audit.BackchannelLogout, Status: http.StatusBadRequest, Reason: reason})
	proxy.WriteError(w, http.StatusBadRequest, "invalid_request")
}

type logoutToken struct{ sub, sid, jti string }

// verifyLogoutToken checks raw (OIDC Back-Channel Logout 1.0, 2.6). A
// refusal has a reason; an error without one is technical (the provider or
// the store could not be reached).
func (h *Handler) verifyLogoutToken(r *http.Request, raw string) (*logoutToken, string, error) {
	ctx := r.Context()
	if len(raw) > maxLogoutBody || strings.Count(raw, ".") != 2 {
		return nil, "logout_token_malformed", nil
	}
	if reason := logoutTokenType(raw); reason != "" {
		return nil, reason, nil
	}
	p, err := h.provider(ctx)
	if err != nil {
		return nil, "", err
	}
	idt, err := p.logoutVerifier.Verify(oidc.ClientContext(ctx, h.o.HTTPClient), raw)
	if err != nil {
		return nil, "logout_token_invalid", err
	}
	if err := jwscheck.Check(raw); err != nil {
		return nil, string(jwscheck.Reason(err)), err
	}
	var c struct {
		Sub    string                     `json:"sub"`
		Sid    string                     `json:"sid"`
		JTI    string                     `json:"jti"`
		IAT    *float64                   `json:"iat"`
		Exp    *float64                   `json:"exp"`
		Events map[string]json.RawMessage `json:"events"`
		// A RawMessage, not a pointer: "nonce": null is a nonce member too
		// (a pointer would be left nil by it).
		Nonce json.RawMessage `json:"nonce"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, "logout_token_claims", err
	}
	now := h.o.Now()
	ev, ok := c.Events[backchannelEvent]
	switch {
	case !ok || len(ev) == 0 || ev[0] != '{':
		return nil, "logout_token_event", nil
	case c.Nonce != nil:
		return nil, "logout_token_nonce", nil
	case c.Sub == "" && c.Sid == "":
		return nil, "logout_token_no_subject", nil
	case c.JTI == "" || len(c.JTI) > 256 || len(c.Sid) > 256:
		return nil, "logout_token_jti", nil
	case c.IAT == nil:
		return nil, "logout_token_iat", nil
	}
	iat := time.Unix(int64(*c.IAT), 0)
	if now.Sub(iat) > logoutTokenMaxAge || iat.Sub(now) > logoutTokenLeeway {
		return nil, "logout_token_iat", nil
	}
	if c.Exp != nil && now.Sub(time.Unix(int64(*c.Exp), 0)) > logoutTokenLeeway {
		return nil, "logout_token_expired", nil
	}
	first, err := h.o.Sessions.ConsumeOnce(ctx, "bclogout:"+idt.Issuer+":"+c.JTI, logoutTokenMaxAge+2*logoutTokenLeeway)
	if err != nil {
		return nil, "", fmt.Errorf("recording logout token: %w", err)
	}
	if !first {
		return nil, "logout_token_replayed", nil
	}
	return &logoutToken{sub: c.Sub, sid: c.Sid, jti: c.JTI}, "", nil
}

// logoutTokenType refuses a token whose typ names another kind of token
// (an ID token's JWT is allowed: many providers send that; the events and
// nonce checks tell them apart).
func logoutTokenType(raw string) string {
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "logout_token_malformed"
	}
	var hdr struct {
		Typ *string `json:"typ"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return "logout_token_malformed"
	}
	if hdr.Typ == nil {
		return ""
	}
	switch strings.ToLower(strings.TrimPrefix(strings.ToLower(*hdr.Typ), "application/")) {
	case "logout+jwt", "jwt":
		return ""
	}
	return "logout_token_type"
}
