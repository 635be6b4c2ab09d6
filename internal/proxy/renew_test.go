package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/deadaddr"
)

// accessCookie is a test strategy for the session's access cookie
// "acc=<subject>/<unix exp>": valid until exp, read from the cookie.
type accessCookie struct{ now func() time.Time }

func (a accessCookie) Authenticate(_ context.Context, r *http.Request) (*strategies.Identity, error) {
	c, err := r.Cookie("acc")
	if err != nil {
		return nil, strategies.ErrNoCredentials
	}
	sub, exp, _ := strings.Cut(c.Value, "/")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !a.now().Before(time.Unix(sec, 0)) {
		return nil, strategies.Invalid(strategies.ReasonExpired, nil)
	}
	return &strategies.Identity{Subject: sub, ExpiresAt: time.Unix(sec, 0), FromCookie: true}, nil
}

func (accessCookie) CredentialHeaders() []string { return nil }
func (accessCookie) CredentialCookie() string    { return "acc" }

// fakeRenewer stands for login.Handler: with a "ref" cookie it rotates
// the access cookie to "<subject>-renewed", valid ten minutes more.
type fakeRenewer struct {
	now     func() time.Time
	renewed int
	asked   int
	due     bool // the last call's
	// hook, when set, runs first in Renew.
	hook func()
}

func (f *fakeRenewer) AccessCookie() string { return "acc" }

func (f *fakeRenewer) Fresh(exp time.Time) bool { return exp.Sub(f.now()) > time.Minute }

func (f *fakeRenewer) Renew(r *http.Request, h http.Header, due bool) bool {
	f.asked++
	f.due = due
	if f.hook != nil {
		f.hook()
	}
	ref, err := r.Cookie("ref")
	if err != nil {
		return false
	}
	if ref.Value == "reused" { // refused: the renewer clears the session's cookies
		h.Add("Set-Cookie", "acc=; Max-Age=0")
		h.Set("Cache-Control", "no-store")
		return false
	}
	f.renewed++
	v := ref.Value + "-renewed/" + strconv.FormatInt(f.now().Add(10*time.Minute).Unix(), 10)
	r.Header.Set("Cookie", "acc="+v+"; ref="+ref.Value)
	h.Add("Set-Cookie", "acc="+v)
	h.Set("Cache-Control", "no-store")
	return true
}

// TestDueRenewalOverlapsTheUpstream: a session whose token is due but
// valid is rotated while the upstream works on the request (the renewer
// here waits for the upstream to be called, and the upstream for the
// renewer: in sequence neither would answer), and every way the response
// can end carries the new cookies: the upstream's answer (beside its own
// cookie, with no-store in place of its Cache-Control), one streamed
// (head flushed before the body), a refusal after the strategies, an
// upstream that is down; a refused rotation clears the cookies and leaves
// the request, authorized by its valid token, as it was.
func TestDueRenewalOverlapsTheUpstream(t *testing.T) {
	called, renewing := make(chan struct{}, 16), make(chan struct{}, 16)
	within := func(ch chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}
	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- struct{}{}
		if !within(renewing) {
			w.WriteHeader(599) // the renewal did not start while the upstream worked
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "app", Value: "1"})
		w.Header().Set("Cache-Control", "public, max-age=60")
		if strings.HasSuffix(r.URL.Path, "/stream") {
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
		}
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Auth-Subject"))
	}))
	t.Cleanup(upSrv.Close)
	u, _ := url.Parse(upSrv.URL)
	dead, _ := url.Parse("http://" + deadaddr.New(t))
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	chain := []strategies.Named{{Name: "session", Strategy: accessCookie{now: now}}}
	table, err := NewTable([]*Route{
		{Name: "app", Prefix: "/app", Upstream: u, Chain: chain},
		{Name: "admin", Prefix: "/admin", Upstream: u, Chain: chain, Roles: []string{"admin"}},
		{Name: "dead", Prefix: "/dead", Upstream: dead, Chain: chain},
	})
	if err != nil {
		t.Fatal(err)
	}
	ren := &fakeRenewer{now: now}
	g := New(table, Options{Sessions: ren})
	due := "acc=alice/" + strconv.FormatInt(clock.Add(30*time.Second).Unix(), 10)

	tests := []struct {
		name, path, ref string
		upstream        bool // the renewer waits for the upstream to be called
		status          int
		body            string
		cookies         []string // Set-Cookie names and values, in order
	}{
		{"upstream answers", "/app/x", "alice", true, 200, "hello alice", []string{"app=1", "acc=alice-renewed"}},
		{"upstream streams", "/app/stream", "alice", true, 200, "hello alice", []string{"app=1", "acc=alice-renewed"}},
		{"refused after the strategies", "/admin/x", "alice", false, 403, "", []string{"acc=alice-renewed"}},
		{"upstream down", "/dead/x", "alice", false, 502, "", []string{"acc=alice-renewed"}},
		{"rotation refused (reused)", "/app/x", "reused", true, 200, "hello alice", []string{"app=1", "acc="}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ren.hook = func() {
				if tc.upstream {
					renewing <- struct{}{}
					if !within(called) {
						t.Error("the renewer ran, but the upstream was not called meanwhile")
					}
				}
			}
			w := serve(g, "GET", tc.path, map[string]string{"Cookie": due + "; ref=" + tc.ref})
			res := w.Result() // the head as written: headers added after it do not count
			if res.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (body %q)", res.StatusCode, tc.status, w.Body)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q; want %q", w.Body, tc.body)
			}
			var got []string
			for _, c := range res.Header["Set-Cookie"] {
				nv, _, _ := strings.Cut(c, ";")
				if n, v, _ := strings.Cut(nv, "="); n == "acc" {
					v, _, _ = strings.Cut(v, "/")
					nv = n + "=" + v
				}
				got = append(got, nv)
			}
			if !slices.Equal(got, tc.cookies) {
				t.Errorf("Set-Cookie %q; want %q", res.Header["Set-Cookie"], tc.cookies)
			}
			if cc := res.Header["Cache-Control"]; !slices.Equal(cc, []string{"no-store"}) {
				t.Errorf("Cache-Control %q; want only no-store", cc)
			}
		})
	}
}

// TestRenewAfterTheStrategies: a session whose access token the route's
// strategy verified and that is not yet due is never handed to the
// renewer (one verification per request, not two); one that is due is
// renewed beside the request, which goes on with its valid token; one
// expired or missing is renewed inside the request and the strategies run
// again on the new cookie; a cookie another strategy read does not count
// as the session's; a cross-origin unsafe request is never renewed.
func TestRenewAfterTheStrategies(t *testing.T) {
	up, u := newSeenUpstream(t)
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	chain := []strategies.Named{{Name: "session", Strategy: accessCookie{now: now}}, {Name: "other", Strategy: sessionCookie{}}}
	table, err := NewTable([]*Route{{Name: "app", Prefix: "/app", Upstream: u, Chain: chain}})
	if err != nil {
		t.Fatal(err)
	}
	ren := &fakeRenewer{now: now}
	g := New(table, Options{Sessions: ren})
	acc := func(sub string, in time.Duration) string {
		return "acc=" + sub + "/" + strconv.FormatInt(clock.Add(in).Unix(), 10)
	}

	tests := []struct {
		name, method       string
		hdr                map[string]string
		want               int
		asked, due, rotate bool
		subject            string
	}{
		{"fresh: the renewer is not asked", "GET", map[string]string{"Cookie": acc("alice", 10*time.Minute) + "; ref=alice"}, 200, false, false, false, "alice"},
		// Overlapped (TestDueRenewalOverlapsTheUpstream): the request goes on with its still-valid token.
		{"due within refresh_before: renewed, told it is due", "GET", map[string]string{"Cookie": acc("alice", 30*time.Second) + "; ref=alice"}, 200, true, true, true, "alice"},
		{"expired: renewed, left to check", "GET", map[string]string{"Cookie": acc("alice", -time.Minute) + "; ref=alice"}, 200, true, false, true, "alice-renewed"},
		{"no access cookie: renewed", "GET", map[string]string{"Cookie": "ref=alice"}, 200, true, false, true, "alice-renewed"},
		{"expired, no refresh cookie: asked, refused", "GET", map[string]string{"Cookie": acc("alice", -time.Minute)}, 401, true, false, false, ""},
		{"another strategy's cookie is not the session's", "GET", map[string]string{"Cookie": "session=bob; ref=alice"}, 200, true, false, true, "alice-renewed"},
		{"cross-origin POST with an expired session: never renewed", "POST", map[string]string{"Cookie": acc("alice", -time.Minute) + "; ref=alice", "Origin": "https://evil.example.com"}, 401, false, false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			asked, renewed, n := ren.asked, ren.renewed, up.count()
			w := serve(g, tc.method, "/app/x", tc.hdr)
			if w.Code != tc.want {
				t.Fatalf("status %d; want %d (body %q)", w.Code, tc.want, w.Body)
			}
			if got := ren.asked > asked; got != tc.asked {
				t.Errorf("renewer asked = %v; want %v", got, tc.asked)
			} else if got && ren.due != tc.due {
				t.Errorf("renewer told due = %v; want %v (only for a verified session token)", ren.due, tc.due)
			}
			if got := ren.renewed > renewed; got != tc.rotate {
				t.Errorf("rotated = %v; want %v", got, tc.rotate)
			}
			if got := w.Header().Get("Set-Cookie") != ""; got != tc.rotate {
				t.Errorf("Set-Cookie sent = %v; want %v", got, tc.rotate)
			}
			if tc.want != 200 {
				if up.count() != n {
					t.Error("a refused request reached the upstream")
				}
				return
			}
			if got := up.last(t).Header.Get("X-Auth-Subject"); got != tc.subject {
				t.Errorf("upstream saw subject %q; want %q", got, tc.subject)
			}
		})
	}
}

// TestDueRenewalCookiesOnUpgrade: an upgraded connection (101, written
// after the proxy hijacks the client's connection) carries the new cookies
// too.
func TestDueRenewalCookiesOnUpgrade(t *testing.T) {
	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		_ = brw.Flush()
	}))
	t.Cleanup(upSrv.Close)
	u, _ := url.Parse(upSrv.URL)
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	table, err := NewTable([]*Route{{Name: "app", Prefix: "/app", Upstream: u,
		Chain: []strategies.Named{{Name: "session", Strategy: accessCookie{now: now}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ren := &fakeRenewer{now: now}
	gw := httptest.NewServer(New(table, Options{Sessions: ren}))
	t.Cleanup(gw.Close)

	conn, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	due := "acc=alice/" + strconv.FormatInt(clock.Add(30*time.Second).Unix(), 10)
	if _, err := io.WriteString(conn, "GET /app/ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: test\r\nCookie: "+due+"; ref=alice\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d; want 101", res.StatusCode)
	}
	if got := res.Header.Get("Set-Cookie"); !strings.HasPrefix(got, "acc=alice-renewed/") {
		t.Errorf("Set-Cookie %q on the upgrade; want the renewed access cookie", got)
	}
}
