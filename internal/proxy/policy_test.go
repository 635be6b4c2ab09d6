package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/policy"
	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
)

// claimsToken is headerToken whose identities carry claims: "Token
// sub:role:tenant" has the claim tenant, "Token sub:role" has none.
type claimsToken struct{ headerToken }

func (s claimsToken) Authenticate(_ context.Context, r *http.Request) (*strategies.Identity, error) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
	if !ok {
		return nil, strategies.ErrNoCredentials
	}
	sub, rest, _ := strings.Cut(v, ":")
	role, tenant, hasTenant := strings.Cut(rest, ":")
	id := &strategies.Identity{Subject: sub, Roles: []string{role}, Email: sub + "@example.com", Claims: map[string]any{"sub": sub}}
	if hasTenant {
		id.Claims["tenant"] = tenant
	}
	return id, nil
}

func compilePolicy(t testing.TB, src string) *policy.Program {
	t.Helper()
	env, err := policy.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	p, err := env.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newPolicyGateway(t testing.TB, opts Options) (*Gateway, *seen) {
	t.Helper()
	g, up := newTestGateway(t, nil)
	u := g.Table().Routes()[0].Upstream
	chain := []strategies.Named{{Name: "tok", Strategy: claimsToken{}}}
	table, err := NewTable([]*Route{
		{Name: "tenant", Prefix: "/tenant", Upstream: u, Chain: chain, Roles: []string{"staff", "ops"},
			Policy: compilePolicy(t, `identity.claims.tenant == "a"`)},
		{Name: "office", Prefix: "/office", Upstream: u, Chain: chain,
			Policy: compilePolicy(t, `ip_in(request.client_ip, "10.0.0.0/8") && request.headers["x-app"] == "web" && request.query.v == "1"`)},
		{Name: "typical", Prefix: "/typical", Upstream: u, Chain: chain,
			Policy: compilePolicy(t, `identity.email.endsWith("@example.com") || "ops" in identity.roles`)},
		{Name: "headers_claims", Prefix: "/headers_claims", Upstream: u, Chain: chain,
			Policy: compilePolicy(t, `identity.claims.tenant == "a" && request.headers["user-agent"] == "bench"`)},
		{Name: "none", Prefix: "/none", Upstream: u, Chain: chain},
	})
	if err != nil {
		t.Fatal(err)
	}
	return New(table, opts), up
}

// allow_if through the one decision: every door (the gateway, forward
// auth, explain) gives the same answer, a denial is a 403 with the reason
// policy_denied, counted as a forbidden request, and a missing claim
// denies.
func TestPolicy(t *testing.T) {
	trusted := ratelimit.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	var last Event
	g, up := newPolicyGateway(t, Options{IPResolver: trusted, Observer: func(ev *Event) { last = *ev }})
	tests := []struct {
		name, target, remote string
		hdr                  map[string]string
		status               int
		result               string // explain's policy result
	}{
		{"claim matches", "/tenant/x", "", map[string]string{"Authorization": "Token ann:staff:a"}, 200, "true"},
		{"claim differs", "/tenant/x", "", map[string]string{"Authorization": "Token ann:staff:b"}, 403, "false"},
		{"claim missing: an error, denied", "/tenant/x", "", map[string]string{"Authorization": "Token ann:staff"}, 403, "error"},
		{"roles are checked first", "/tenant/x", "", map[string]string{"Authorization": "Token ann:guest:a"}, 403, "not evaluated"},
		{"no credentials: 401 before the policy", "/tenant/x", "", nil, 401, "not evaluated"},
		{"office: all conditions", "/office/x?v=1", "192.0.2.1", map[string]string{"Authorization": "Token ann:x", "X-App": "web", "X-Forwarded-For": "10.1.2.3"}, 200, "true"},
		{"office: an untrusted peer's X-Forwarded-For is not the client IP", "/office/x?v=1", "203.0.113.9", map[string]string{"Authorization": "Token ann:x", "X-App": "web", "X-Forwarded-For": "10.1.2.3"}, 403, "false"},
		{"office: header missing", "/office/x?v=1", "192.0.2.1", map[string]string{"Authorization": "Token ann:x", "X-Forwarded-For": "10.1.2.3"}, 403, "error"},
		{"office: query differs", "/office/x?v=2", "192.0.2.1", map[string]string{"Authorization": "Token ann:x", "X-App": "web", "X-Forwarded-For": "10.1.2.3"}, 403, "false"},
		{"typical: email", "/typical", "", map[string]string{"Authorization": "Token ann:x"}, 200, "true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := func(target string) *http.Request {
				r := httptest.NewRequest("GET", target, nil)
				r.RequestURI = target
				if tc.remote != "" {
					r.RemoteAddr = tc.remote + ":1234"
				}
				for k, v := range tc.hdr {
					r.Header.Set(k, v)
				}
				return r
			}
			n := up.count()
			w := httptest.NewRecorder()
			g.ServeHTTP(w, req(tc.target))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			forwarded := up.count() != n
			if forwarded != (tc.status == 200) {
				t.Errorf("forwarded = %v with status %d", forwarded, w.Code)
			}
			if tc.result == "false" || tc.result == "error" {
				if last.Reason != ReasonPolicyDenied || last.Outcome != OutcomeForbidden || !last.Outcome.IsAuthFailure() {
					t.Errorf("event %s %s, want forbidden policy_denied", last.Outcome, last.Reason)
				}
				if got := w.Body.String(); got != `{"error":"forbidden by policy"}`+"\n" {
					t.Errorf("body %q", got)
				}
			}
			ex := g.Explain(req(tc.target))
			if ex.Status != w.Code || ex.Reason != last.Reason {
				t.Errorf("explain %d %s; gateway %d %s", ex.Status, ex.Reason, w.Code, last.Reason)
			}
			if ex.Policy == nil || ex.Policy.Result != tc.result || ex.Policy.AllowIf == "" {
				t.Errorf("explain's policy %+v, want result %q", ex.Policy, tc.result)
			} else if (tc.result == "error") != (ex.Policy.Error != "") {
				t.Errorf("explain's policy error %q", ex.Policy.Error)
			}
			if tc.remote == "" {
				return
			}
			// Forward auth: the trusted proxy describes the same request.
			v := req(VerifyPath)
			v.Header.Set("X-Original-URI", tc.target)
			v.Header.Set("X-Original-Method", "GET")
			v.RemoteAddr = "192.0.2.1:1234"
			if tc.remote != "192.0.2.1" {
				v.Header.Del("X-Forwarded-For")
			}
			vw := httptest.NewRecorder()
			g.ServeHTTP(vw, v)
			if tc.remote == "192.0.2.1" && vw.Code != tc.status {
				t.Errorf("verify %d, gateway %d", vw.Code, tc.status)
			}
		})
	}
}

// BenchmarkDecisionPolicy is BenchmarkDecision's work (decide and the
// identity headers) on a route without allow_if ("none", the baseline),
// with the typical expression over the identity, and with one reading a
// claim and a header.
func BenchmarkDecisionPolicy(b *testing.B) {
	g, _ := newPolicyGateway(b, Options{})
	for _, name := range []string{"none", "typical", "headers_claims"} {
		b.Run(name, func(b *testing.B) {
			target := "/" + name + "/x?page=2"
			r := httptest.NewRequest("GET", target, nil)
			r.RequestURI = target
			r.Header.Set("Authorization", "Token ann:staff:a")
			r.Header.Set("User-Agent", "bench")
			r.Header.Set("Accept", "*/*")
			r.Header.Set("Accept-Language", "en")
			b.ReportAllocs()
			for b.Loop() {
				st := &reqState{}
				if d := g.decide(r, st, r.RequestURI, httptest.NewRecorder().Header(), doorClient); d.Outcome != OutcomeAllowed {
					b.Fatal("denied: ", d.Reason)
				}
				h := http.Header{}
				setIdentityOn(h, st.identity)
			}
		})
	}
}
