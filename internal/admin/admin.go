// Package admin is the admin listener's dashboard and API: what the
// gateway made of its config (routes, strategies, upstreams and their
// health), its traffic and denials, the config's reload state, API keys
// (through the manager the `keys` CLI uses) and session revocation.
//
// Access: with a token (server.admin_token_file) every page and API needs
// it, as Authorization: Bearer or the cookie the login form sets; without
// one the listener is meant for loopback (validate warns otherwise) and
// only loopback Host names are served, so a DNS-rebound name cannot reach
// it from a browser. Every change (POST) also needs a same-origin request
// (Sec-Fetch-Site / Origin) and the page's CSRF token, unless it carries
// the token as a Bearer header (which no other site can make a browser
// send). /healthz, /readyz and /metrics stay open for probes and scrapers.
package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/apikey"
)

// CookieName holds the admin session: an HMAC of the token, never the
// token itself. __Host-: Secure, Path=/, no Domain.
const CookieName = "__Host-authgateway-admin"

// Options configures the handler.
type Options struct {
	// Token is the admin token; "" serves without one (loopback only).
	Token string
	// Probes serves /healthz, /readyz and /metrics, without the token.
	Probes http.Handler
	// View returns what the dashboard shows of the gateway's state.
	View func(ctx context.Context) View
	// Stats is the traffic the dashboard charts; may be nil.
	Stats *Stats
	// Keys opens the key manager of an api_key strategy; may be nil.
	Keys func(ctx context.Context, strategy string) (KeyManager, error)
	// Sessions revokes a subject's sessions; nil until a session store
	// that can is wired.
	Sessions SessionRevoker
	Logger   *slog.Logger
	// OnKeyEvent records a key change (the audit log); may be nil.
	OnKeyEvent func(event, strategy, keyID, subject string)
}

// KeyManager is the `keys` CLI's manager of one api_key strategy's store
// (apikey.Manager).
type KeyManager interface {
	List(ctx context.Context) ([]*apikey.Record, error)
	Create(ctx context.Context, p apikey.CreateParams) (string, *apikey.Record, error)
	Revoke(ctx context.Context, id string) error
	Rotate(ctx context.Context, id string, grace time.Duration) (string, *apikey.Record, error)
}

// SessionRevoker ends every browser session of a subject, returning how
// many it ended.
type SessionRevoker interface {
	RevokeSubject(ctx context.Context, subject string) (int, error)
}

// UpstreamHealth is what a route's upstream pool says of its targets;
// a route without one shows its upstream URL only.
type UpstreamHealth interface {
	Targets() []TargetStatus
}

// TargetStatus is one upstream target's health.
type TargetStatus struct {
	URL     string
	Healthy bool
	Detail  string // why not, when not
}

// Handler is the admin listener's handler.
type Handler struct {
	opts    Options
	mux     *http.ServeMux
	cookie  string // the session cookie's value ("" without a token)
	csrf    string // the CSRF token of every page
	origins *http.CrossOriginProtection
}

// New returns the admin handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var key []byte
	if o.Token != "" {
		key = []byte(o.Token)
	} else {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	h := &Handler{opts: o, mux: http.NewServeMux(), csrf: mac(key, "csrf"), origins: http.NewCrossOriginProtection()}
	if o.Token != "" {
		h.cookie = mac(key, "admin session cookie")
	}
	h.routes()
	return h
}

func mac(key []byte, what string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(what))
	return hex.EncodeToString(m.Sum(nil))
}

func (h *Handler) routes() {
	if h.opts.Probes != nil {
		for _, p := range []string{"GET /healthz", "GET /readyz", "GET /metrics"} {
			h.mux.Handle(p, h.opts.Probes)
		}
	}
	h.mux.HandleFunc("GET /{$}", h.dashboard)
	h.mux.HandleFunc("GET /static/{file}", serveStatic)
	h.mux.HandleFunc("POST /login", h.login)
	h.mux.HandleFunc("POST /logout", h.mutating(h.logout))
	h.mux.HandleFunc("POST /keys/create", h.mutating(h.keyCreate))
	h.mux.HandleFunc("POST /keys/revoke", h.mutating(h.keyRevoke))
	h.mux.HandleFunc("POST /keys/rotate", h.mutating(h.keyRotate))
	h.mux.HandleFunc("POST /sessions/revoke", h.mutating(h.sessionsRevoke))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		h.mux.ServeHTTP(w, r)
		return
	}
	if h.opts.Token == "" && !loopbackHost(r.Host) {
		// Without a token only loopback may reach the listener, so a
		// Host that is not loopback is a name rebound to it (DNS
		// rebinding) or a listener exposed by mistake.
		http.Error(w, "the admin listener has no admin_token_file: only a loopback Host is served", http.StatusMisdirectedRequest)
		return
	}
	setSecurityHeaders(w.Header())
	switch {
	case strings.HasPrefix(r.URL.Path, "/static/"), r.URL.Path == "/login":
	case !h.authorized(r):
		if r.Method == http.MethodGet && r.URL.Path == "/" {
			h.renderLogin(w, http.StatusUnauthorized, "")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="authgateway admin"`)
		http.Error(w, "admin token required", http.StatusUnauthorized)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// setSecurityHeaders: nothing on the page may load from or send to
// another origin, nor be framed.
func setSecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
}

// authorized checks the token (Bearer) or the session cookie, in constant
// time; without a token everything reaching the listener is.
func (h *Handler) authorized(r *http.Request) bool {
	if h.opts.Token == "" {
		return true
	}
	if tok, ok := bearer(r); ok {
		return equal(tok, h.opts.Token)
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return equal(c.Value, h.cookie)
	}
	return false
}

func bearer(r *http.Request) (string, bool) {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return a[7:], true
	}
	return "", false
}

// equal compares in constant time (the lengths may leak; the token's
// hash would not, but the token is long and random).
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// mutating guards a change: a Bearer request passes (no browser sends one
// on another site's behalf); otherwise the request must be same-origin
// and carry the page's CSRF token.
func (h *Handler) mutating(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := bearer(r); ok && h.opts.Token != "" {
			next(w, r)
			return
		}
		if err := h.origins.Check(r); err != nil {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		if !equal(r.PostFormValue("csrf"), h.csrf) {
			http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if h.opts.Token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	// Login CSRF: another site must not log a browser in.
	if err := h.origins.Check(r); err != nil {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	if !equal(r.PostFormValue("token"), h.opts.Token) {
		h.opts.Logger.Warn("admin login refused", "client_ip", clientIP(r))
		h.renderLogin(w, http.StatusUnauthorized, "Wrong token.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: h.cookie, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// loopbackHost reports whether a Host header names loopback: localhost,
// or a loopback IP literal.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func clientIP(r *http.Request) string {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}
