package builtin

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	keys "github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/apikey"
	"github.com/authgateway/authgateway/internal/strategies/jwt"
	"github.com/authgateway/authgateway/internal/strategies/oauth2"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/tokens"
)

const testConfig = `
tokens:
  issuer: gw.test
  audience: app.test
  signing_keys: [{kid: k1, algorithm: HS256, secret: 0123456789abcdef0123456789abcdef}]
strategies:
  userJwt: {type: jwt, issuer: gw.test, audience: app.test, algorithms: [HS256], keys: tokens}
  idpJwt: {type: jwt, issuer: ISSUER, audience: gateway, algorithms: [RS256], jwks_url: JWKS}
  machineKey: {type: api_key, header: X-API-Key, prefixes: [pk_test], store: file, file: KEYS_FILE}
  sso: {type: oauth2, issuer_url: ISSUER, client_id: gateway, client_secret: secret}
routes:
  - {name: api, path: /api, upstream: "http://127.0.0.1:1", strategies: [userJwt, idpJwt, machineKey, sso]}
`

func loadConfig(t *testing.T, p *oidctest.Provider, keyFile string) *config.Config {
	t.Helper()
	y := strings.NewReplacer("ISSUER", p.Issuer, "JWKS", p.JWKSURL, "KEYS_FILE", keyFile).Replace(testConfig)
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "gateway.yaml"), []byte(y), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestBuild(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	keyFile := filepath.Join(t.TempDir(), "keys.yaml")
	cfg := loadConfig(t, p, keyFile)
	iss, err := tokens.NewIssuer(cfg.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	deps := strategies.Deps{Tokens: &strategies.GatewayTokens{Keys: iss.Keys, Issuer: iss.Issuer, AccessTTL: iss.AccessTTL}}
	set, err := Build(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	_, userJwt := set["userJwt"].(*jwt.Verifier)
	_, idpJwt := set["idpJwt"].(*jwt.Verifier)
	_, machineKey := set["machineKey"].(*apikey.Strategy)
	_, sso := set["sso"].(*oauth2.Strategy)
	if !userJwt || !idpJwt || !machineKey || !sso || len(set) != 4 {
		t.Fatalf("Build = %#v; want the jwt, api_key and oauth2 strategies by name", set)
	}
	// The proxy names each one's challenge in a 401 and removes its
	// credential before forwarding.
	for name, s := range set {
		_, challenges := s.(proxy.Challenger)
		_, carries := s.(proxy.CredentialCarrier)
		if !challenges || !carries {
			t.Errorf("%s: proxy.Challenger %v, proxy.CredentialCarrier %v; want both", name, challenges, carries)
		}
	}
	if err := set.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}

	// Started: the api_key strategy sees a key revoked in its file, and the
	// oauth2 one has discovered its provider.
	m := keys.NewManager(must(keys.NewFileStore(keyFile)), keys.ManagerOptions{Prefixes: []string{"pk_test"}})
	key, rec, err := m.Create(context.Background(), keys.CreateParams{Name: "ci", Prefix: "pk_test"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api", nil)
	r.Header.Set("X-API-Key", key)
	poll.Until(t, 10*time.Second, "new key accepted", func() error { _, err := set["machineKey"].Authenticate(context.Background(), r); return err })
	if err := m.Revoke(context.Background(), rec.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "revoked key refused", func() error {
		_, err := set["machineKey"].Authenticate(context.Background(), r)
		if ie := (*strategies.InvalidError)(nil); errors.As(err, &ie) && ie.Reason == strategies.ReasonRevoked {
			return nil
		}
		return fmt.Errorf("Authenticate: %v", err)
	})
	tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	r = httptest.NewRequest("GET", "/api", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	p.Stop() // discovered at Start: an opaque token now needs the provider (503), not discovery
	if _, err := set["sso"].Authenticate(context.Background(), r); err == nil || !strings.Contains(err.Error(), "introspecting") {
		t.Fatalf("Authenticate = %v; want the introspection to fail, discovery done", err)
	}
}

func TestBuildErrorsNameTheStrategy(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	cfg := loadConfig(t, p, filepath.Join(t.TempDir(), "keys.yaml"))
	// keys: tokens without the gateway's tokens.
	_, err := Build(cfg, strategies.Deps{})
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Path != "strategies.userJwt" || errs[0].Line == 0 {
		t.Fatalf("Build = %v; want one problem at strategies.userJwt with its line", err)
	}
	if _, err := New("x", &config.Strategy{Type: "basic"}, strategies.Deps{}); err == nil {
		t.Fatal("New built an unknown type")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
