package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// Login sessions: users of the harness's OP sign in at the gateway through
// the real browser flow (/auth/login, the OP's password form,
// /auth/callback), and the load generator keeps each session's cookies as a
// browser does (credBrowser), so transparent refreshes rotate them for real.
const (
	benchLoginUsers = 1000
	refreshCookie   = "__Host-authgw_refresh"
	loginCookie     = "__Host-authgw_login"
	// The refresh scenario: access tokens live 5 s and are renewed in their
	// last second, so a session in use refreshes every ~4 s: 200 sessions
	// make ~50 refreshes/s, about 1% of requests at the gateway's peak.
	refreshSessions      = 200
	refreshAccessTTL     = "5s"
	refreshRefreshBefore = "1s"
)

// sessionLoginControl is gw-session-login-refresh without refreshes (tokens
// outlive the run): the same sessions, cookies and generator, so the two
// side by side tell what the refreshes cost.
func sessionLoginControl() *scenario {
	return loginScenario("gw-session-login", refreshSessions, "", "", false)
}

func loginUser(i int) oidctest.User {
	id := "u-" + strconv.Itoa(i)
	return oidctest.User{ID: id, Username: id, Password: id + "-password", Email: id + "@example.com", Roles: []string{"user"}}
}

// loginScenario protects /api with the gateway's own session (jwt strategy,
// keys: tokens, reading the session cookie) behind a login at the OP;
// sessions logins of benchLoginUsers users (several sessions per user when
// more) rotate, each a browser keeping its cookies. accessTTL ""
// means tokens that outlive the run (no refresh). onRedis keeps the
// sessions in the harness's redis-server instead of the gateway's memory.
func loginScenario(name string, sessions int, accessTTL, refreshBefore string, onRedis bool) *scenario {
	store := "in-memory session store"
	if onRedis {
		store = "session store on the local redis-server (redis.url set, as for several replicas)"
	}
	desc := fmt.Sprintf("gateway, login sessions (oauth2 login: true at the harness's OP, jwt strategy reading the session cookie, %s): %d sessions from the real login flow, cookies rotated in order and kept as a browser keeps them", store, sessions)
	var every time.Duration // how often a session in use renews; 0: never
	if accessTTL != "" {
		ttl, err1 := time.ParseDuration(accessTTL)
		before, err2 := time.ParseDuration(refreshBefore)
		if err1 != nil || err2 != nil || before >= ttl {
			panic("loginScenario: bad access_ttl / refresh_before") // a programming error in scenarios()
		}
		every = ttl - before
		desc += fmt.Sprintf("; tokens.access_ttl %s, sessions.refresh_before %s: a session in use renews transparently every ~%s, so %d sessions make ~%.0f refreshes/s whatever the load (under 1%% of requests at the closed loop's rate; more in the half-load phases)",
			accessTTL, refreshBefore, every, sessions, float64(sessions)/every.Seconds())
	}
	desc += "; driven by benchtool closedloop (Go, same connections and pinning as wrk), as wrk cannot keep cookies per session"
	return &scenario{
		name: name, target: targetGateway, path: pathAPI, desc: desc, credMode: credBrowser, refreshEvery: every,
		// The session cookies (two tokens) are about as long as a bearer JWT,
		// and the baseline is driven by the same Go generator.
		baseline: "bare-proxy-bearer-go", goal: goalAuth, goLoad: true,
		gateway: func(ctx context.Context, e *env, c *gwConfig) error {
			if err := protectWithJWT(e, c, "HS256"); err != nil {
				return err
			}
			if onRedis {
				url, err := e.redisFor(ctx, false)
				if err != nil {
					return err
				}
				c.Redis = map[string]any{"url": url}
			}
			if accessTTL != "" {
				c.Tokens["access_ttl"] = accessTTL
				c.Sessions = map[string]any{"refresh_before": refreshBefore}
			}
			op, err := e.authServer()
			if err != nil {
				return err
			}
			c.Strategies["sso"] = map[string]any{
				"type": "oauth2", "issuer_url": op.issuer, "login": true,
				"client_id": oidctest.GatewayClientID, "client_secret": oidctest.GatewayClientSecret,
				"redirect_url": "http://" + c.Server["listen"].(string) + "/auth/callback",
			}
			// The gateway's own metrics count the refreshes.
			port, err := freePort()
			if err != nil {
				return err
			}
			c.Server["admin_listen"] = "127.0.0.1:" + strconv.Itoa(port)
			return nil
		},
		login: func(ctx context.Context, e *env, gw, cfgPath string) (*creds, error) {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return nil, fmt.Errorf("loading %s: %w", cfgPath, err)
			}
			op, err := e.authServer()
			if err != nil {
				return nil, err
			}
			values, err := op.loginSessions(ctx, gw, cfg.Strategies["sso"].RedirectURL, sessions)
			if err != nil {
				return nil, err
			}
			metrics := "http://" + cfg.Server.AdminListen + "/metrics"
			return &creds{header: "Cookie", values: values, calls: &counter{
				what: "transparent refreshes (the gateway's authgateway_session_events_total, refresh + grace)",
				read: func() int64 { return sessionRefreshes(metrics) }}}, nil
		},
	}
}

// loginSessions signs in n sessions at the gateway gw and returns each one's
// Cookie header.
func (a *authServer) loginSessions(ctx context.Context, gw, callback string, n int) ([]string, error) {
	a.allowRedirect(callback)
	values := make([]string, n)
	g, ctx := errgroup.WithContext(ctx)
	const workers = 8
	for w := range workers {
		g.Go(func() error {
			client := &http.Client{Timeout: 10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			defer client.CloseIdleConnections()
			for i := w; i < n; i += workers {
				if err := ctx.Err(); err != nil {
					return err
				}
				v, err := a.login(ctx, client, gw, callback, loginUser(i%benchLoginUsers))
				if err != nil {
					return fmt.Errorf("session %d: %w", i, err)
				}
				values[i] = v
			}
			return nil
		})
	}
	return values, g.Wait()
}

// login runs the browser login of u at gw: /auth/login (state cookie and the
// redirect to the OP), the OP's password form, /auth/callback with the state
// cookie. It answers the session's Cookie header.
func (a *authServer) login(ctx context.Context, client *http.Client, gw, callback string, u oidctest.User) (string, error) {
	get := func(target string, cookie string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/html")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	start, err := get(gw+"/auth/login?rd=/api/items", "")
	if err != nil {
		return "", err
	}
	state := cookieOf(start, loginCookie)
	if start.StatusCode != http.StatusFound || state == "" {
		return "", fmt.Errorf("/auth/login: status %d, state cookie set %t; want 302 and the cookie", start.StatusCode, state != "")
	}
	var cb string
	if err := a.tb.run(func() { cb = a.p.Authorize(a.tb, start.Header.Get("Location"), callback, u.Username, u.Password) }); err != nil {
		return "", err
	}
	cbURL, err := url.Parse(cb)
	if err != nil || !strings.HasPrefix(cb, callback+"?") {
		return "", fmt.Errorf("the OP sent the browser to %q, want the callback", cb)
	}
	done, err := get(gw+cbURL.RequestURI(), loginCookie+"="+state)
	if err != nil {
		return "", err
	}
	access, refresh := cookieOf(done, sessionCookie), cookieOf(done, refreshCookie)
	if done.StatusCode != http.StatusOK || access == "" || refresh == "" {
		return "", fmt.Errorf("/auth/callback: status %d, session cookies set %t %t; want 200 and both", done.StatusCode, access != "", refresh != "")
	}
	return mergeCookies("", done.Cookies()), nil
}

func cookieOf(resp *http.Response, name string) string {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// allowRedirect registers callback as a redirect URI of the gateway client
// (one per login gateway of the run), keeping it an introspection client.
func (a *authServer) allowRedirect(callback string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.redirects = append(a.redirects, callback)
	a.p.AddClient(oidctest.Client{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret,
		Introspect: true, RedirectURIs: append([]string(nil), a.redirects...)})
}

var sessionEventRE = regexp.MustCompile(`(?m)^authgateway_session_events_total\{event="(refresh|grace)"\} (\d+)`)

// sessionRefreshes reads the gateway's refresh and grace session events
// (0 when unreadable: the count is a report column, not a check).
func sessionRefreshes(metrics string) int64 {
	resp, err := http.Get(metrics)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n int64
	for _, m := range sessionEventRE.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		n += v
	}
	return n
}
