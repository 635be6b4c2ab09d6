package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"github.com/authgateway/authgateway/internal/ratelimit"
	"github.com/authgateway/authgateway/internal/strategies"
)

// TestCaseMismatchEveryDoor: the proxy, forward-auth (/auth/verify) and
// explain take the same decision on a path whose case-insensitive match is
// another route than its exact spelling (Table.Match): 400, reason
// path_case_mismatch, nothing forwarded; and serve the controls as before.
func TestCaseMismatchEveryDoor(t *testing.T) {
	var events []Event
	g, up := newTestGateway(t, nil)
	g = New(g.Table(), Options{
		IPResolver: ratelimit.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}),
		Observer:   func(ev *Event) { events = append(events, *ev) },
	})
	tests := []struct {
		name, method, path, auth string
		status                   int
	}{
		{"admin through the public catch-all", "GET", "/API/ADMIN/x", "", 400},
		{"admin through the api route", "GET", "/api/Admin/x", "Token bob:reader", 400},
		{"api's methods through the catch-all", "DELETE", "/Api/x", "", 400},
		{"control: Kelvin sign where no route has a k", "GET", "/%E2%84%AAey", "", 200},
		{"control: mixed case below admin", "GET", "/api/admin/X", "Token ann:admin", 200},
		{"control: mixed case under the catch-all", "GET", "/Hello", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := up.count()
			events = events[:0]
			hdr := map[string]string{}
			if tt.auth != "" {
				hdr["Authorization"] = tt.auth
			}
			w := serve(g, tt.method, tt.path, hdr)
			if w.Code != tt.status {
				t.Errorf("proxy: status %d, want %d (%s)", w.Code, tt.status, w.Body)
			}

			vh := map[string]string{"X-Original-URI": tt.path, "X-Original-Method": tt.method}
			for k, v := range hdr {
				vh[k] = v
			}
			vr := httptest.NewRequest("GET", VerifyPath, nil)
			vr.RequestURI, vr.RemoteAddr = VerifyPath, "192.0.2.1:1234"
			for k, v := range vh {
				vr.Header.Set(k, v)
			}
			vw := httptest.NewRecorder()
			g.ServeHTTP(vw, vr)
			if vw.Code != tt.status {
				t.Errorf("forward-auth: status %d, want %d (%s)", vw.Code, tt.status, vw.Body)
			}

			er := httptest.NewRequest(tt.method, tt.path, nil)
			er.RequestURI = tt.path
			for k, v := range hdr {
				er.Header.Set(k, v)
			}
			ex := g.Explain(er)
			if ex.Status != tt.status {
				t.Errorf("explain: status %d, want %d (%s)", ex.Status, tt.status, ex.Decision)
			}

			if tt.status != 400 {
				if up.count() != n+1 {
					t.Errorf("the upstream got %d requests, want 1 (from the proxy)", up.count()-n)
				}
				return
			}
			if up.count() != n {
				t.Errorf("the upstream got %d requests, want none", up.count()-n)
			}
			var body struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "path matches another route when case is ignored" {
				t.Errorf("proxy body %q", w.Body)
			}
			if ex.Reason != "path_case_mismatch" || ex.Route != "" {
				t.Errorf("explain: reason %q, route %q; want path_case_mismatch and no route", ex.Reason, ex.Route)
			}
			if len(events) != 2 {
				t.Fatalf("%d events, want 2 (proxy, forward-auth)", len(events))
			}
			for _, ev := range events {
				if ev.Status != 400 || ev.Outcome != OutcomeBadRequest || ev.Reason != "path_case_mismatch" {
					t.Errorf("event %d %s %s, want 400 bad_request path_case_mismatch", ev.Status, ev.Outcome, ev.Reason)
				}
			}
		})
	}
}

// TestCaseSensitiveUpstreamsTable: with CaseSensitiveUpstreams the table
// routes on the exact spelling alone and takes route paths that differ only
// in case; by default it refuses them.
func TestCaseSensitiveUpstreamsTable(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	routes := func() []*Route {
		return []*Route{
			{Name: "lower", Prefix: "/api", Upstream: u, Chain: []strategies.Named{{Name: "tok", Strategy: headerToken{}}}},
			{Name: "upper", Prefix: "/API", Upstream: u, Public: true},
		}
	}
	if _, err := NewTable(routes()); err == nil {
		t.Error("default table took /api and /API; want an error")
	}
	table, err := TableOptions{CaseSensitiveUpstreams: true}.NewTable(routes())
	if err != nil {
		t.Fatal(err)
	}
	g := New(table, Options{})
	for path, want := range map[string]int{"/API/x": http.StatusBadGateway, "/api/x": http.StatusUnauthorized, "/Api/x": http.StatusNotFound} {
		if w := serve(g, "GET", path, nil); w.Code != want {
			t.Errorf("GET %s: status %d, want %d", path, w.Code, want)
		}
	}
}
