package login_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/login"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/jwt"
	"github.com/authgateway/authgateway/internal/testutil/clocktest"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
	"github.com/authgateway/authgateway/internal/tokens"
)

// benchGateway is the pipeline (jwt strategy on the session cookie, login
// endpoints, transparent refresh) in front of a real upstream, served
// in-process; its sessions on Redis when rc is given.
func benchGateway(b *testing.B, rc redis.UniversalClient, clk *clocktest.Fake, renew bool) (http.Handler, *session.Manager) {
	b.Helper()
	iss, err := tokens.NewIssuer(config.Tokens{
		Issuer: "gw.test", Audience: "app.test",
		AccessTTL: config.Duration(15 * time.Minute), RefreshTTL: config.Duration(24 * time.Hour),
		SigningKeys: []config.SigningKey{{Kid: "k1", Algorithm: "HS256", Secret: signingSecret}},
	})
	if err != nil {
		b.Fatal(err)
	}
	iss.Now = clk.Now
	mgr, err := session.New(session.Options{Issuer: iss, Redis: rc, Now: clk.Now, ReuseGrace: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(mgr.Close)
	h, err := login.New(login.Options{
		Name: "sso", IssuerURL: "https://idp.invalid", ClientID: "gateway", ClientSecret: "secret",
		RedirectURL: "https://gw.test/auth/callback", Issuer: iss, Sessions: mgr, StateSecret: []byte(signingSecret),
		Now: clk.Now, TransparentRefresh: true, RefreshBefore: time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	jwtStrategy, err := jwt.New("jwt", &config.Strategy{
		Type: "jwt", Keys: "tokens", Algorithms: []string{"HS256"}, Issuer: "gw.test", Audience: "app.test",
		Leeway: config.Duration(30 * time.Second), Cookie: login.DefaultAccessCookie,
	}, strategies.Deps{
		Tokens:      &strategies.GatewayTokens{Keys: iss.Keys, Issuer: "gw.test", AccessTTL: 15 * time.Minute},
		Revocations: mgr, Now: clk.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	b.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	table, err := proxy.NewTable([]*proxy.Route{{
		Name: "app", Prefix: "/app", Upstream: upURL,
		Chain: []strategies.Named{{Name: "jwt", Strategy: jwtStrategy}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	opts := proxy.Options{Endpoints: h.Endpoints()}
	if renew {
		opts.Sessions = h
	}
	return proxy.New(table, opts), mgr
}

// serveCookies sends GET /app/x with cookies and answers the refresh
// token the response sets ("" for none); anything but 200 fails.
func serveCookies(b *testing.B, gw http.Handler, cookies ...*http.Cookie) string {
	return serveForCookies(b, gw, cookies...)[login.DefaultRefreshCookie]
}

// serveForCookies serves one request with cookies and answers the cookies
// set in the response, by name.
func serveForCookies(b *testing.B, gw http.Handler, cookies ...*http.Cookie) map[string]string {
	r := httptest.NewRequest(http.MethodGet, "/app/x", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	set := map[string]string{}
	for _, c := range w.Result().Cookies() {
		set[c.Name] = c.Value
	}
	return set
}

// BenchmarkSessionRequest: one request through the gateway with a fresh
// access cookie (off: a gateway without transparent refresh, the baseline;
// fresh: with it, nothing to renew), with only a refresh cookie (rotate:
// the session rotates inside the request), with both and the access token
// about to expire (due: renewed inside the request), and with a refresh token that
// rotated a moment ago (grace: its successor is given again), on memory
// and on Redis.
func BenchmarkSessionRequest(b *testing.B) {
	for _, store := range []string{"memory", "redis"} {
		newGW := func(b *testing.B, renew bool) (http.Handler, *session.Manager, *clocktest.Fake) {
			var rc redis.UniversalClient
			if store == "redis" {
				srv := redistest.Start(b)
				opt, _ := redis.ParseURL(srv.URL())
				c := redis.NewClient(opt)
				b.Cleanup(func() { _ = c.Close() })
				rc = c
			}
			clk := clocktest.NewFake(time.Now().Truncate(time.Second))
			gw, mgr := benchGateway(b, rc, clk, renew)
			return gw, mgr, clk
		}
		// off: the same request to a gateway without transparent refresh.
		for _, renew := range []bool{false, true} {
			name := map[bool]string{false: "off/", true: "fresh/"}[renew]
			b.Run(name+store, func(b *testing.B) {
				gw, mgr, _ := newGW(b, renew)
				t, err := mgr.Start(context.Background(), session.Identity{Subject: "alice"})
				if err != nil {
					b.Fatal(err)
				}
				access := &http.Cookie{Name: login.DefaultAccessCookie, Value: t.Access}
				refresh := &http.Cookie{Name: login.DefaultRefreshCookie, Value: t.Refresh}
				b.ReportAllocs()
				for b.Loop() {
					if serveCookies(b, gw, access, refresh) != "" {
						b.Fatal("a fresh session rotated")
					}
				}
			})
		}
		b.Run("rotate/"+store, func(b *testing.B) {
			gw, mgr, clk := newGW(b, true)
			t, err := mgr.Start(context.Background(), session.Identity{Subject: "alice"})
			if err != nil {
				b.Fatal(err)
			}
			refresh := t.Refresh
			b.ReportAllocs()
			for b.Loop() {
				clk.Advance(time.Minute) // as a browser would: earlier access tokens expire
				if refresh = serveCookies(b, gw, &http.Cookie{Name: login.DefaultRefreshCookie, Value: refresh}); refresh == "" {
					b.Fatal("no rotation")
				}
			}
		})
		// due: a session in use over one access token's life, two requests
		// with both cookies: one while the token is fresh, one within
		// refresh_before of its expiry, renewed inside the request.
		// In memory only: the fake clock's 14.5-minute steps would outrun
		// the Redis denylist's grace before its first subscription (the
		// store's round trip is rotate/redis's).
		b.Run("due/"+store, func(b *testing.B) {
			if store != "memory" {
				b.Skip("memory only")
			}
			gw, mgr, clk := newGW(b, true)
			t, err := mgr.Start(context.Background(), session.Identity{Subject: "alice"})
			if err != nil {
				b.Fatal(err)
			}
			access, refresh := t.Access, t.Refresh
			b.ReportAllocs()
			for b.Loop() {
				clk.Advance(10 * time.Minute)
				if serveCookies(b, gw, &http.Cookie{Name: login.DefaultAccessCookie, Value: access},
					&http.Cookie{Name: login.DefaultRefreshCookie, Value: refresh}) != "" {
					b.Fatal("a fresh session rotated")
				}
				clk.Advance(4*time.Minute + 30*time.Second) // 30 s left of 15 min
				got := serveForCookies(b, gw, &http.Cookie{Name: login.DefaultAccessCookie, Value: access},
					&http.Cookie{Name: login.DefaultRefreshCookie, Value: refresh})
				if access, refresh = got[login.DefaultAccessCookie], got[login.DefaultRefreshCookie]; access == "" || refresh == "" {
					b.Fatal("no rotation")
				}
			}
		})
		b.Run("grace/"+store, func(b *testing.B) {
			gw, mgr, _ := newGW(b, true)
			t, err := mgr.Start(context.Background(), session.Identity{Subject: "alice"})
			if err != nil {
				b.Fatal(err)
			}
			old := &http.Cookie{Name: login.DefaultRefreshCookie, Value: t.Refresh}
			next := serveCookies(b, gw, old)
			b.ReportAllocs()
			for b.Loop() {
				if serveCookies(b, gw, old) != next {
					b.Fatal("the grace gave another successor")
				}
			}
		})
	}
}
