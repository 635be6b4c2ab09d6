package oauth2

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// testAPIKey is an api_key-like strategy: X-API-Key "pk_test_good" is the
// key "ci-bot", any other value is invalid, no header is not its credential.
type testAPIKey struct{}

func (testAPIKey) Authenticate(_ context.Context, r *http.Request) (*strategies.Identity, error) {
	k := r.Header.Get("X-API-Key")
	switch k {
	case "":
		return nil, strategies.ErrNoCredentials
	case "pk_test_good":
		return &strategies.Identity{Subject: "ci-bot", ClientID: "key-1", Scopes: []string{"data:read"}}, nil
	}
	return nil, strategies.Invalid("unknown_key", nil)
}

func (testAPIKey) CredentialHeaders() []string { return []string{"X-API-Key"} }
func (testAPIKey) CredentialCookie() string    { return "" }

// upstream records the headers of the requests it gets.
type upstream struct {
	mu   sync.Mutex
	last http.Header
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.last = r.Header.Clone()
	u.mu.Unlock()
	_, _ = io.WriteString(w, "upstream")
}

func (u *upstream) take() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := u.last
	u.last = nil
	return h
}

func TestGateway(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	s := newStrategy(t, gatewayConfig(p, time.Minute), strategies.Deps{})
	up := &upstream{}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	upURL, _ := url.Parse(upSrv.URL)

	oauth := []strategies.Named{{Name: "oauth2", Strategy: s}}
	layered := []strategies.Named{{Name: "apiKey", Strategy: testAPIKey{}}, {Name: "oauth2", Strategy: s}}
	table, err := proxy.NewTable([]*proxy.Route{
		{Name: "data", Prefix: "/api/v1/data", Upstream: upURL, Chain: layered, Scopes: []string{"data:read"}},
		{Name: "write", Prefix: "/api/v1/write", Upstream: upURL, Chain: oauth, Scopes: []string{"data:write"}},
		{Name: "any", Prefix: "/api/v1/any", Upstream: upURL, Chain: oauth},
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(proxy.New(table, proxy.Options{}))
	t.Cleanup(gw.Close)

	opaque := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read")
	jwtTok := p.ClientCredentialsToken(t, oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret, "data:read")
	both := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read", "data:write")

	tests := []struct {
		name       string
		path       string
		headers    map[string]string
		wantStatus int
		wantAuth   string            // WWW-Authenticate must contain it ("" = not checked)
		wantUp     map[string]string // identity headers the upstream must see
	}{
		{"opaque token with the scope", "/api/v1/data/x", map[string]string{"Authorization": "Bearer " + opaque}, 200, "",
			map[string]string{"X-Auth-Subject": "svc", "X-Auth-Client-Id": "svc", "X-Auth-Scopes": "data:read",
				"X-Auth-Strategy": "oauth2", "X-Auth-Roles": oidctest.ServiceRole}},
		{"jwt token with the scope", "/api/v1/data", map[string]string{"Authorization": "Bearer " + jwtTok}, 200, "",
			map[string]string{"X-Auth-Subject": "svc-jwt", "X-Auth-Client-Id": "svc-jwt", "X-Auth-Scopes": "data:read",
				"X-Auth-Strategy": "oauth2"}},
		{"scopes are space-separated", "/api/v1/write", map[string]string{"Authorization": "Bearer " + both}, 200, "",
			map[string]string{"X-Auth-Scopes": "data:read data:write", "X-Auth-Strategy": "oauth2"}},
		{"forged identity headers are replaced", "/api/v1/data",
			map[string]string{"Authorization": "Bearer " + opaque, "X-Auth-Subject": "admin", "X-Auth-Client-Id": "root"}, 200, "",
			map[string]string{"X-Auth-Subject": "svc", "X-Auth-Client-Id": "svc"}},
		{"api key in the layered chain", "/api/v1/data", map[string]string{"X-API-Key": "pk_test_good"}, 200, "",
			map[string]string{"X-Auth-Subject": "ci-bot", "X-Auth-Client-Id": "key-1", "X-Auth-Strategy": "apiKey"}},
		{"api key first when both are sent", "/api/v1/data",
			map[string]string{"X-API-Key": "pk_test_good", "Authorization": "Bearer " + opaque}, 200, "",
			map[string]string{"X-Auth-Strategy": "apiKey"}},
		{"bad api key, good token", "/api/v1/data",
			map[string]string{"X-API-Key": "pk_test_bad", "Authorization": "Bearer " + opaque}, 200, "",
			map[string]string{"X-Auth-Strategy": "oauth2"}},
		{"missing scope", "/api/v1/write", map[string]string{"Authorization": "Bearer " + opaque}, 403,
			`Bearer error="insufficient_scope", scope="data:write"`, nil},
		{"missing scope, jwt", "/api/v1/write", map[string]string{"Authorization": "Bearer " + jwtTok}, 403,
			`error="insufficient_scope"`, nil},
		{"invalid token", "/api/v1/any", map[string]string{"Authorization": "Bearer not-a-token"}, 401,
			`error="invalid_token"`, nil},
		{"token of another audience", "/api/v1/any", map[string]string{"Authorization": "Bearer " +
			p.ClientCredentialsToken(t, oidctest.OtherClientID, oidctest.OtherClientSecret, "data:read")}, 401,
			`error="invalid_token"`, nil},
		{"no credentials", "/api/v1/any", nil, 401, `Bearer realm="authgateway"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, gw.URL+tt.path, nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d; want %d (%s)", resp.StatusCode, tt.wantStatus, body)
			}
			got := up.take()
			if tt.wantStatus != 200 {
				if got != nil {
					t.Fatalf("upstream was reached on a %d", tt.wantStatus)
				}
				if www := strings.Join(resp.Header.Values("WWW-Authenticate"), "\n"); !strings.Contains(www, tt.wantAuth) {
					t.Fatalf("WWW-Authenticate = %q; want it to contain %q", www, tt.wantAuth)
				}
				var e struct{ Error string }
				if json.Unmarshal(body, &e) != nil || e.Error == "" {
					t.Fatalf("body = %q; want a JSON error", body)
				}
				return
			}
			if got == nil {
				t.Fatal("upstream saw no request")
			}
			for k, v := range tt.wantUp {
				if g := got.Get(k); g != v {
					t.Errorf("upstream %s = %q; want %q", k, g, v)
				}
			}
			if got.Get("Authorization") != "" || got.Get("X-API-Key") != "" {
				t.Errorf("upstream saw the credential: Authorization %q, X-API-Key %q", got.Get("Authorization"), got.Get("X-API-Key"))
			}
		})
	}

	t.Run("provider down: 503 for an unseen token, never a pass", func(t *testing.T) {
		fresh := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read")
		p.Stop()
		t.Cleanup(p.Restart)
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/api/v1/data", nil)
		req.Header.Set("Authorization", "Bearer "+fresh)
		resp, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || up.take() != nil {
			t.Fatalf("status = %d; want 503 and no upstream request", resp.StatusCode)
		}
	})
}
