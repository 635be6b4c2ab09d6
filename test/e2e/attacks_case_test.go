package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/testutil/caseapp"
)

// caseExtraRoutes are added to the routes of configs/gateway.yaml (before
// its catch-all "site") for the rows that need them: a route whose path
// holds a 'k' and an 's' (the Kelvin sign and the long s fold to them), and a
// public area with a protected sub-area.
const caseExtraRoutes = `  - name: keys
    path: /api/keys
    upstream: UPSTREAM
    strategies: [jwt]
    roles: [admin]
  - name: docs
    path: /docs
    upstream: UPSTREAM
    public: true
  - name: drafts
    path: /docs/drafts
    upstream: UPSTREAM
    strategies: [jwt]
    roles: [editor]
`

// caseApp is the upstream of these rows: a recording upstream that stands
// for an application whose framework matches paths to its handlers
// case-insensitively (caseapp), with one handler per route of the gateway.
type caseApp struct {
	*Upstream
	mounts []string
}

func newCaseApp(t *testing.T) *caseApp {
	return &caseApp{Upstream: newUpstream(t, 0),
		mounts: []string{"/api/admin", "/api/data", "/api/keys", "/api", "/docs", "/docs/drafts", "/"}}
}

// served says which handler the application served for a request it got.
func (a *caseApp) served(t *testing.T, s Seen) string {
	t.Helper()
	p, _, _ := strings.Cut(s.RequestURI, "?")
	decoded, err := url.PathUnescape(p)
	if err != nil {
		t.Fatalf("upstream got %q: %v", s.RequestURI, err)
	}
	m, ok := caseapp.Serve(a.mounts, decoded)
	if !ok {
		return "(none)"
	}
	return m
}

// startCaseGateway runs configs/gateway.yaml with caseExtraRoutes in front
// of app, adding serverLines under server:.
func startCaseGateway(t *testing.T, app *caseApp, serverLines string) *Gateway {
	t.Helper()
	extra := strings.ReplaceAll(caseExtraRoutes, "UPSTREAM", app.URL)
	return startShippedGateway(t, app.URL,
		[2]string{"  - name: site\n", extra + "  - name: site\n"},
		[2]string{"server:\n", "server:\n" + serverLines})
}

// TestCaseAttacks: routes are case-sensitive, but the upstream behind them
// may not be (Express, ASP.NET, IIS, Spring). A path whose case-insensitive
// match is another route than its exact match is refused with 400, so a
// case-changed spelling can never carry a request past its route's
// authentication, roles or methods to a handler the upstream matches
// without regard to case. Each attack row asserts that the case-insensitive
// application saw nothing; each control, exactly the request and handler.
func TestCaseAttacks(t *testing.T) {
	t.Parallel()
	app := newCaseApp(t)
	g := startCaseGateway(t, app, "")
	tokens := map[string]string{
		"reader": g.Token(t, "-sub", "rita", "-roles", "reader"),
		"admin":  g.Token(t, "-sub", "root", "-roles", "admin"),
		"editor": g.Token(t, "-sub", "eddy", "-roles", "editor"),
	}
	const refused = "path matches another route when case is ignored"

	tests := []struct {
		name           string
		method, target string // target is written to the wire as is
		as             string // token of "reader", "admin", "editor"; "" none
		status         int
		// served is the handler the application must have served (with
		// the request-target uri); "" = the application saw nothing.
		served, uri string
	}{
		// The attacks of the issue, on the routes of configs/gateway.yaml.
		{"no credentials, /API/ADMIN/USERS through the public catch-all", "GET", "/API/ADMIN/USERS", "", 400, "", ""},
		{"reader, /api/Admin/users through the /api route", "GET", "/api/Admin/users", "reader", 400, "", ""},
		{"reader, DELETE /API/DATA/records past the route's methods", "DELETE", "/API/DATA/records", "reader", 400, "", ""},
		{"reader, DELETE /api/Data/records through the /api route", "DELETE", "/api/Data/records", "reader", 400, "", ""},
		{"no credentials, escaped capital /api/%41DMIN", "GET", "/%41PI/%41DMIN/users", "", 400, "", ""},
		{"absolute-form /API/ADMIN", "GET", "http://gateway.test/API/ADMIN/users", "", 400, "", ""},
		// Unicode: the decoded path is folded, not only ASCII.
		{"reader, Kelvin sign K (U+212A) for the k of /api/keys", "GET", "/api/%E2%84%AAeys", "reader", 400, "", ""},
		{"reader, Kelvin sign lower-case escapes", "GET", "/api/%e2%84%aaeys/1", "reader", 400, "", ""},
		{"reader, long s (U+017F) for the s of /api/keys", "GET", "/api/key%C5%BF", "reader", 400, "", ""},
		{"no credentials, KEYS in capitals with a Kelvin sign", "GET", "/API/%E2%84%AAEYS", "", 400, "", ""},
		{"reader, dotless i (U+0131) for the i of /api/admin (ASP.NET, Java)", "GET", "/api/adm%C4%B1n/users", "reader", 400, "", ""},
		{"reader, dotted capital I (U+0130) for the i of /api/admin (Java)", "GET", "/api/adm%C4%B0n/users", "reader", 400, "", ""},
		// A public area with a protected sub-area: /PUBLIC/x style.
		{"no credentials, /docs/DRAFTS as the public /docs", "GET", "/docs/DRAFTS/plan", "", 400, "", ""},
		{"no credentials, /DOCS/drafts as the public catch-all", "GET", "/DOCS/drafts/plan", "", 400, "", ""},
		{"reader, /Docs/Drafts with a token", "GET", "/Docs/Drafts/plan", "reader", 400, "", ""},

		// Controls: the exact spelling, and case changes that cannot reach
		// another route, are served as before.
		{"control: admin, exact spelling", "GET", "/api/admin/users", "admin", 200, "/api/admin", "/api/admin/users"},
		{"control: reader, exact spelling of admin is 403", "GET", "/api/admin/users", "reader", 403, "", ""},
		{"control: admin, mixed case below the admin route", "GET", "/api/admin/Users/ID7", "admin", 200, "/api/admin", "/api/admin/Users/ID7"},
		{"control: reader, mixed case below the data route", "GET", "/api/data/Records?Sort=Desc", "reader", 200, "/api/data", "/api/data/Records?Sort=Desc"},
		{"control: reader, DataSets is not data (whole segments)", "GET", "/api/DataSets", "reader", 200, "/api", "/api/DataSets"},
		{"control: reader, non-ASCII under /api", "GET", "/api/%C3%89t%C3%A9", "reader", 200, "/api", "/api/%C3%89t%C3%A9"},
		{"control: no credentials, mixed case under the catch-all", "GET", "/Favicon.ICO", "", 200, "/", "/Favicon.ICO"},
		{"control: editor, exact drafts", "GET", "/docs/drafts/plan", "editor", 200, "/docs/drafts", "/docs/drafts/plan"},
		{"control: no credentials, exact drafts is 401", "GET", "/docs/drafts/plan", "", 401, "", ""},
		{"control: admin, Kelvin sign below the keys route", "GET", "/api/keys/%E2%84%AA", "admin", 200, "/api/keys", "/api/keys/%E2%84%AA"},
		{"control: reader, DELETE on data is still 405", "DELETE", "/api/data/records", "reader", 405, "", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app.Reset()
			id := fmt.Sprintf("case-row-%d", i)
			hdrs := []string{"X-Request-Id: " + id}
			if tc.as != "" {
				hdrs = append(hdrs, bearer(tokens[tc.as]))
			}
			raw := req(tc.method, tc.target, hdrs...)
			ex := g.explain(t, raw, "127.0.0.1")
			resp := g.Do(t, raw)
			got := app.Requests()
			if resp.Status != tc.status {
				t.Errorf("%s %s as %q: status %d, want %d (body %q)", tc.method, tc.target, tc.as, resp.Status, tc.status, resp.Body)
			}
			// The same decision on every door: explain says what the
			// gateway did (forward-auth is covered in internal/proxy).
			explainAgrees(t, g, ex, id, resp)
			if tc.served == "" {
				for _, s := range got {
					t.Errorf("the case-insensitive application served its %s handler for %s %s (X-Auth-Roles %q), want nothing",
						app.served(t, s), s.Method, s.RequestURI, s.Header.Get("X-Auth-Roles"))
				}
				if resp.Status >= 400 {
					if msg := resp.ErrorMessage(t); tc.status == 400 && msg != refused {
						t.Errorf("error %q, want %q", msg, refused)
					}
				}
				if tc.status == 400 {
					if ev := g.Event(t, id); ev["reason"] != "path_case_mismatch" || ev["outcome"] != "bad_request" {
						t.Errorf("auth event reason %v, outcome %v; want path_case_mismatch, bad_request", ev["reason"], ev["outcome"])
					}
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("the application got %d requests, want 1", len(got))
			}
			s := got[0]
			if s.Method != tc.method || s.RequestURI != tc.uri || app.served(t, s) != tc.served {
				t.Errorf("the application served %s %s with its %s handler, want %s %s with %s",
					s.Method, s.RequestURI, app.served(t, s), tc.method, tc.uri, tc.served)
			}
		})
	}
}

// TestCaseSensitiveUpstreamsOptOut: with server.case_sensitive_upstreams:
// true the gateway routes by exact spelling alone and forwards case-changed
// paths — which is only safe when every upstream also matches paths
// case-sensitively. In front of a case-insensitive application the attack
// of the first row of TestCaseAttacks then works again: that is what the
// setting says.
func TestCaseSensitiveUpstreamsOptOut(t *testing.T) {
	t.Parallel()
	app := newCaseApp(t)
	g := startCaseGateway(t, app, "  case_sensitive_upstreams: true\n")
	resp := g.Do(t, req("GET", "/API/ADMIN/USERS"))
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d, want 200 (routed to the public catch-all by its exact spelling); body %q", resp.Status, resp.Body)
	}
	s := app.One(t)
	if s.RequestURI != "/API/ADMIN/USERS" || app.served(t, s) != "/api/admin" || s.Header.Get("X-Auth-Subject") != "" {
		t.Errorf("upstream got %s (handler %s, X-Auth-Subject %q), want /API/ADMIN/USERS served by /api/admin without identity",
			s.RequestURI, app.served(t, s), s.Header.Get("X-Auth-Subject"))
	}
}

// TestCaseDuplicateRoutePaths: two route paths that differ only in case are
// a config error with file and line, unless upstreams are case-sensitive.
func TestCaseDuplicateRoutePaths(t *testing.T) {
	t.Parallel()
	const cfg = `server:
SERVER
routes:
  - name: lower
    path: /api/keys
    upstream: http://127.0.0.1:1
    public: true
  - name: kelvin
    path: /API/%E2%84%AAEYS
    upstream: http://127.0.0.1:1
    public: true
`
	for _, tc := range []struct {
		name, server string
		code         int
		out          string
	}{
		{"default: refused", "  listen: 127.0.0.1:0", 1, "gateway.yaml:9: routes[1].path: "},
		{"case_sensitive_upstreams: accepted", "  case_sensitive_upstreams: true", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "gateway.yaml")
			if err := os.WriteFile(p, []byte(strings.Replace(cfg, "SERVER", tc.server, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			res := runCLI(t, dir, nil, "validate", "-config", p)
			out := res.Stdout + res.Stderr
			if res.Code != tc.code || !strings.Contains(out, tc.out) {
				t.Errorf("validate exit %d, want %d with %q; output:\n%s", res.Code, tc.code, tc.out, out)
			}
			if tc.code == 1 && !strings.Contains(out, "/api/keys") {
				t.Errorf("the error does not name the other route's path /api/keys:\n%s", out)
			}
		})
	}
}
