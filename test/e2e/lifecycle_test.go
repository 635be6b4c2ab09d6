package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// The gateway's lifecycle (issue 15): a reload replaces one generation
// whole, the login included; validate and explain are dry runs.

const lifecycleLoginConfig = `
tokens:
  issuer: e2e.issuer
  audience: e2e.audience
  signing_keys:
    - kid: hs-1
      algorithm: HS256
      secret: ${ACCESS_SECRET}
strategies:
  session: {type: jwt, issuer: e2e.issuer, audience: e2e.audience, algorithms: [HS256], keys: tokens}
  sso:
    type: oauth2
    issuer_url: SSO_ISSUER
    client_id: gateway
    client_secret_file: SECRET_FILE
    audience: gateway
    redirect_url: http://gateway.test/auth/callback
    login: true
routes:
  - {name: sso, path: /sso, upstream: UPSTREAM, strategies: [session, sso]}
`

// TestLoginUsesRotatedClientSecret: the provider rotates the gateway's
// client secret and the operator writes the new one to client_secret_file;
// after the reload the next login exchanges its code with the new secret.
// Before, the login endpoints were built once: the reload "succeeded" and
// every login failed at the provider until a restart.
func TestLoginUsesRotatedClientSecret(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, 0)
	op := oidctest.Start(t, oidctest.Options{})
	client := oidctest.Client{ID: oidctest.GatewayClientID, Secret: randomSecret(t), Introspect: true, RedirectURIs: []string{ssoCallback}}
	op.AddClient(client)
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	writeAtomic(t, secretFile, client.Secret+"\n")
	cfg := strings.NewReplacer("SSO_ISSUER", op.Issuer, "SECRET_FILE", secretFile, "UPSTREAM", up.URL).Replace(lifecycleLoginConfig)
	g := &ssoGateway{Gateway: startGateway(t, cfg, map[string]string{"ACCESS_SECRET": randomSecret(t)}), op: op}

	if resp := g.login(t, oidctest.UserName, oidctest.UserPassword); resp.Status != http.StatusOK || len(sessionCookies(resp)) != 2 {
		t.Fatalf("login before the rotation: status %d, cookies %v (body %q)", resp.Status, sessionCookies(resp), truncate(resp.Body))
	}

	// The provider now knows only the new secret.
	client.Secret = randomSecret(t)
	op.AddClient(client)
	fams, _ := scrapeMetrics(t, g.Gateway)
	reloads := fams.value("authgateway_config_reloads_total", map[string]string{"result": "success"})
	writeAtomic(t, secretFile, client.Secret+"\n")
	g.Signal(t, syscall.SIGHUP)
	pollUntil(t, "the reload after the rotation", func() error {
		fams, _ := scrapeMetrics(t, g.Gateway)
		if got := fams.value("authgateway_config_reloads_total", map[string]string{"result": "success"}); got <= reloads {
			return fmt.Errorf("config reloads %v, want more than %v", got, reloads)
		}
		return nil
	})
	if resp := g.login(t, oidctest.UserName, oidctest.UserPassword); resp.Status != http.StatusOK || len(sessionCookies(resp)) != 2 {
		t.Fatalf("login after the rotation and reload: status %d, cookies %v (body %q); want 200 and a session", resp.Status, sessionCookies(resp), truncate(resp.Body))
	}
}

const lifecycleDryConfig = `
redis: {url: REDIS_URL}
strategies:
  fileKey: {type: api_key, prefixes: [pk_live], store: file, file: KEYS_FILE}
  redisKey: {type: api_key, prefixes: [pk_live], store: redis}
routes:
  - {name: files, path: /files, upstream: "http://127.0.0.1:1", strategies: [fileKey]}
  - {name: quota, path: /quota, upstream: "http://127.0.0.1:1", strategies: [redisKey], rate_limit: {limit: 5, period: 1m}}
`

// TestDryRunsWriteNothing: validate and explain build the gateway without
// dialling, subscribing or writing. validate sends Redis nothing at all;
// explain may read what its answer depends on (an API key in a Redis
// store, a quota's count, the failure count) but sends no command that
// writes, no script that could (they run as EVALSHA_RO), no PUBLISH or
// SUBSCRIBE — checked with MONITOR on the real Redis against Redis's own
// command flags — and leaves the key file's bytes and mtime as they were.
// Before, both built the whole gateway: explain subscribed to the key
// stores' revocation channels, ran the quota scripts read-write, and
// validate dialled Redis.
func TestDryRunsWriteNothing(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := newRedisClient(t, rs)
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "api-keys.yaml")
	cfgPath := filepath.Join(dir, "gateway.yaml")
	cfg := strings.NewReplacer("REDIS_URL", rs.URL(), "KEYS_FILE", keysFile).Replace(lifecycleDryConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	fileKey := createKey(t, cfgPath, nil, "-name", "file-bot", "-strategy", "fileKey")
	redisKey := createKey(t, cfgPath, nil, "-name", "redis-bot", "-strategy", "redisKey")
	before, mtimeBefore := fileState(t, keysFile)
	mon := startMonitor(t, rs)
	mon.Drain(t, rc)

	if res := runCLI(t, dir, nil, "validate", "-config", cfgPath); res.Code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if cmds := mon.Drain(t, rc); len(cmds) > 0 {
		t.Errorf("validate sent Redis %d commands, want none:\n%s", len(cmds), strings.Join(cmds, "\n"))
	}

	g := &Gateway{ConfigPath: cfgPath, Dir: dir, env: processEnv(nil)}
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"an API key in a file store", req("GET", "/files/x", fileKey.header()), http.StatusOK},
		{"an API key in a Redis store, on a Redis quota route", req("GET", "/quota/x", redisKey.header()), http.StatusOK},
		{"an unknown key in the Redis store", req("GET", "/quota/x", "X-API-Key: "+randomKeyLike(t, "pk_live")), http.StatusUnauthorized},
	} {
		if ex := g.explain(t, c.raw, "127.0.0.1"); ex.Status != c.status {
			t.Errorf("explain %s: %d (%s), want %d", c.name, ex.Status, ex.Decision, c.status)
		}
	}
	cmds := mon.Drain(t, rc)
	if len(linesWith(cmds, redisKey.Hash())) == 0 || len(linesWith(cmds, `"evalsha_ro"`)) == 0 {
		t.Errorf("explain neither looked the Redis key up nor peeked at the quota (or MONITOR missed it):\n%s", strings.Join(cmds, "\n"))
	}
	for _, line := range cmds {
		name := monitoredCommand(line)
		if writes, why := commandWrites(t, rc, name); writes {
			t.Errorf("explain sent %s (%s): %s", name, why, line)
		}
	}

	if after, mtimeAfter := fileState(t, keysFile); after != before || !mtimeAfter.Equal(mtimeBefore) {
		t.Errorf("explain changed the key file (mtime %v -> %v):\n--- before\n%s--- after\n%s", mtimeBefore, mtimeAfter, before, after)
	}
}

// fileState is a file's content and modification time.
func fileState(t *testing.T, path string) (string, time.Time) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), info.ModTime()
}

// monitoredCommand is the command name of a MONITOR line
// (`1700000000.123 [0 127.0.0.1:5555] "GET" "key"`), lower case.
func monitoredCommand(line string) string {
	_, rest, _ := strings.Cut(line, "] \"")
	name, _, _ := strings.Cut(rest, "\"")
	return strings.ToLower(name)
}

// commandWrites asks Redis whether the command may change data: its flags
// say write, or it publishes, subscribes or runs a script that may write.
func commandWrites(t *testing.T, rc *redis.Client, name string) (bool, string) {
	t.Helper()
	switch name {
	case "publish", "spublish", "subscribe", "psubscribe", "ssubscribe":
		return true, "pub/sub"
	case "eval", "evalsha", "fcall":
		return true, "a script that may write"
	}
	info, err := rc.Do(context.Background(), "COMMAND", "INFO", name).Slice()
	if err != nil || len(info) == 0 || info[0] == nil {
		t.Fatalf("COMMAND INFO %s: %v %v", name, info, err)
	}
	doc, _ := info[0].([]any)
	if len(doc) < 3 {
		t.Fatalf("COMMAND INFO %s: %v", name, info)
	}
	flags, _ := doc[2].([]any)
	for _, f := range flags {
		if f == "write" {
			return true, "flagged write"
		}
	}
	return false, ""
}
