package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/oauth2"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// scenarioCreds writes sc's config and mints its credentials, as setup does.
func scenarioCreds(t *testing.T, e *env, name string) (*config.Config, *creds) {
	t.Helper()
	sc := findScenario(name)
	if sc == nil {
		t.Fatalf("no scenario %q", name)
	}
	path, err := e.writeGatewayConfig(context.Background(), sc, "127.0.0.1:8080", t.TempDir())
	if err != nil {
		t.Fatalf("writing config: %v", err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	c, err := sc.creds(context.Background(), e, path)
	if err != nil {
		t.Fatalf("creds: %v", err)
	}
	return cfg, c
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), upstream: "http://127.0.0.1:9", keys: map[string]map[string]any{}}
	t.Cleanup(func() { e.op.stop() })
	return e
}

// checkKeys verifies every minted key against store with the gateway's own
// Verifier, and that keys it never issued are refused.
func checkKeys(t *testing.T, store apikey.Store, c *creds) {
	t.Helper()
	if got, want := c.header, "X-API-Key"; got != want {
		t.Errorf("header %q; want %q", got, want)
	}
	if got, want := len(c.values), benchKeyCount; got != want {
		t.Fatalf("got %d keys; want %d", got, want)
	}
	v, err := apikey.NewVerifier(store, apikey.VerifierOptions{Prefixes: []string{benchKeyPrefix}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	seen := map[string]bool{}
	for i, k := range c.values {
		if seen[k] {
			t.Fatalf("key %d is a duplicate", i)
		}
		seen[k] = true
		if i%97 != 0 {
			continue
		}
		rec, err := v.Verify(ctx, k)
		if err != nil {
			t.Fatalf("key %d: Verify: %v", i, err)
		}
		if !slices.Contains(rec.Roles, "service") {
			t.Errorf("key %d: roles %v; want service (the route requires it)", i, rec.Roles)
		}
	}
	k := []byte(c.values[0])
	k[len(k)-10] ^= 'a' ^ 'b' // one character of the secret changed
	for _, bad := range []string{
		string(k),
		"pk_test" + strings.TrimPrefix(c.values[0], benchKeyPrefix), // other prefix
		"",
	} {
		if rec, err := v.Verify(ctx, bad); err == nil {
			t.Errorf("Verify(forged key) = %s; want an error", rec.Name)
		}
	}
}

func TestAPIKeyFileCreds(t *testing.T) {
	e := newEnv(t)
	cfg, c := scenarioCreds(t, e, "gw-apikey-file")
	sc := cfg.Strategies["apiKey"]
	if sc.Store != "file" || sc.File == "" {
		t.Fatalf("store %q file %q; want a file store", sc.Store, sc.File)
	}
	fs, err := apikey.NewFileStore(sc.File)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, fs, c)
}

func TestAPIKeyRedisCreds(t *testing.T) {
	srv := redistest.Start(t)
	e := newEnv(t)
	e.redisSingle = &redisDeploy{url: srv.URL()}
	cfg, c := scenarioCreds(t, e, "gw-apikey-redis")
	if got := cfg.Redis.URL; got != srv.URL() {
		t.Fatalf("redis.url %q; want %q", got, srv.URL())
	}
	rc, err := redisconn.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	checkKeys(t, apikey.NewRedisStore(rc, benchKeyStrategy, slog.New(slog.DiscardHandler)), c)

	// Both api_key scenarios serve the same keys, and storing them twice
	// (a second scenario on the same redis) is not an error.
	_, c2 := scenarioCreds(t, e, "gw-apikey-redis")
	if !slices.Equal(c.values, c2.values) {
		t.Error("second run minted other keys; want the run's one key set")
	}
}

// TestOAuth2Creds checks the minted tokens with the gateway's own oauth2
// strategy, built from the generated config, against the real OP.
func TestOAuth2Creds(t *testing.T) {
	e := newEnv(t)
	cfg, c := scenarioCreds(t, e, "gw-oauth2-introspection")
	if got, want := len(c.values), benchServiceClients*benchTokensPerClient; got != want {
		t.Fatalf("got %d tokens; want %d", got, want)
	}
	if c.calls == nil {
		t.Fatal("no introspection counter")
	}
	ctx := context.Background()
	s, err := oauth2.New("oauth2", cfg.Strategies["oauth2"], strategies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.(strategies.Starter).Start(ctx); err != nil {
		t.Fatal(err)
	}
	before := c.calls.read()
	for _, i := range []int{0, 1, 511, len(c.values) - 1} {
		req := httptest.NewRequest(http.MethodGet, pathAPI, nil)
		req.Header.Set(c.header, c.values[i])
		id, err := s.Authenticate(ctx, req)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if want := serviceClientID(i % benchServiceClients); id.Subject != want {
			t.Errorf("token %d: subject %q; want %q", i, id.Subject, want)
		}
		if !slices.Contains(id.Roles, "service") {
			t.Errorf("token %d: roles %v; want service", i, id.Roles)
		}
	}
	if got := c.calls.read() - before; got != 4 {
		t.Errorf("introspection counter moved by %d; want 4", got)
	}
	req := httptest.NewRequest(http.MethodGet, pathAPI, nil)
	req.Header.Set(c.header, c.values[0]+"x")
	if id, err := s.Authenticate(ctx, req); err == nil {
		t.Errorf("forged token authenticated as %q", id.Subject)
	}
}

func TestSessionCookieCreds(t *testing.T) {
	e := newEnv(t)
	cfg, c := scenarioCreds(t, e, "gw-session-cookie")
	if got, want := cfg.Strategies["jwt"].Cookie, sessionCookie; got != want {
		t.Errorf("jwt strategy cookie %q; want %q (the default with keys: tokens)", got, want)
	}
	if c.header != "Cookie" || len(c.values) != 1000 {
		t.Fatalf("header %q, %d values; want Cookie, 1000", c.header, len(c.values))
	}
	for _, v := range c.values {
		name, tok, ok := strings.Cut(v, "=")
		if !ok || name != sessionCookie || strings.Count(tok, ".") != 2 {
			t.Fatalf("cookie %.40q…; want %s=<jwt>", v, sessionCookie)
		}
	}
}

func TestVerifyCreds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Key"), "good") {
			return
		}
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
	}))
	defer srv.Close()
	many := make([]string, 3000)
	for i := range many {
		many[i] = "good"
	}
	tests := []struct {
		name    string
		values  []string
		wantErr string
	}{
		{"all accepted", []string{"good1", "good2", "good3"}, ""},
		{"one refused", []string{"good1", "bad", "good3"}, "credential 2 of 3: status 401"},
		{"sampled", many, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyCreds(context.Background(), srv.URL, "X-Key", tt.values)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpTB(t *testing.T) {
	tb := &opTB{}
	var order []int
	tb.Cleanup(func() { order = append(order, 1) })
	tb.Cleanup(func() { order = append(order, 2) })
	if err := tb.run(func() { tb.Fatalf("boom %d", 7) }); err == nil || err.Error() != "boom 7" {
		t.Errorf("run(Fatalf) = %v; want boom 7", err)
	}
	if err := tb.run(func() {}); err != nil {
		t.Errorf("run(ok) = %v; want nil", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "other" {
				t.Errorf("recovered %v; want the foreign panic to pass through", r)
			}
		}()
		_ = tb.run(func() { panic("other") })
	}()
	tb.cleanup()
	tb.cleanup()
	if !slices.Equal(order, []int{2, 1}) {
		t.Errorf("cleanups ran %v; want [2 1], once", order)
	}
}

// TestRedisClusterDeploy: the harness's own Redis Cluster (redis-cli
// --cluster create over cluster-enabled redis-servers) starts, serves the
// api_key scenario's keys through its redis+cluster:// URL, and counts the
// commands of every node.
func TestRedisClusterDeploy(t *testing.T) {
	redistest.LookPath(t, "redis-server")
	redistest.LookPath(t, "redis-cli")
	e := newEnv(t)
	e.procs = &procs{}
	t.Cleanup(e.procs.stopAll)
	t.Cleanup(e.closeRedis)
	cfg, c := scenarioCreds(t, e, "gw-apikey-rediscluster")
	if !strings.HasPrefix(cfg.Redis.URL, "redis+cluster://") {
		t.Fatalf("redis.url %q; want a redis+cluster:// URL", cfg.Redis.URL)
	}
	rc, err := redisconn.New(cfg.Redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	checkKeys(t, apikey.NewRedisStore(rc, benchKeyStrategy, slog.New(slog.DiscardHandler)), c)
	before := c.calls.read()
	for i := range 100 {
		if err := rc.Get(context.Background(), strconv.Itoa(i)).Err(); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
	}
	// A few more: the client reloads its slot map now and then.
	if d := c.calls.read() - before; d < 100 || d > 103 {
		t.Errorf("the counter saw %d commands over the cluster's nodes, want the 100 sent", d)
	}
}
