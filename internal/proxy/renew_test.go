package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/strategies"
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
}

func (f *fakeRenewer) AccessCookie() string { return "acc" }

func (f *fakeRenewer) Fresh(exp time.Time) bool { return exp.Sub(f.now()) > time.Minute }

func (f *fakeRenewer) Renew(r *http.Request, h http.Header, due bool) bool {
	f.asked++
	f.due = due
	ref, err := r.Cookie("ref")
	if err != nil {
		return false
	}
	f.renewed++
	v := ref.Value + "-renewed/" + strconv.FormatInt(f.now().Add(10*time.Minute).Unix(), 10)
	r.Header.Set("Cookie", "acc="+v+"; ref="+ref.Value)
	h.Add("Set-Cookie", "acc="+v)
	return true
}

// TestRenewAfterTheStrategies: a session whose access token the route's
// strategy verified and that is not yet due is never handed to the
// renewer (one verification per request, not two); one that is due,
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
		{"due within refresh_before: renewed, told it is due", "GET", map[string]string{"Cookie": acc("alice", 30*time.Second) + "; ref=alice"}, 200, true, true, true, "alice-renewed"},
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
