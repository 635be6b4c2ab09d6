package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// writeLegacyKey stores a new key as versions before per-strategy
// namespaces did: in the one layout every api_key strategy shared. The
// layout is spelt out here, as those versions wrote it.
func writeLegacyKey(t *testing.T, rc *redis.Client, name string, revoked bool, lastUsed time.Time) apiKey {
	t.Helper()
	ctx := context.Background()
	k := apiKey{ID: "key_" + strings.ToLower(randomSecret(t)[:12]), Key: randomKeyLike(t, "pk_live")}
	for strings.ContainsAny(k.ID[4:], "-_") {
		k.ID = "key_" + strings.ToLower(randomSecret(t)[:12])
	}
	created := time.Now().Add(-24 * time.Hour).UTC()
	rec := map[string]any{"id": k.ID, "name": name, "prefix": "pk_live", "hash": k.Hash(), "roles": []string{"reader"}, "created_at": created}
	if revoked {
		rec["revoked_at"] = created.Add(time.Hour)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "authgw:{apikey}:id:"+k.ID, data, 0)
		p.Set(ctx, "authgw:{apikey}:hash:"+k.Hash(), k.ID, 0)
		p.SAdd(ctx, "authgw:{apikey}:ids", k.ID)
		if !lastUsed.IsZero() {
			p.HSet(ctx, "authgw:{apikey}:last_used", k.ID, strconv.FormatInt(lastUsed.UnixMilli(), 10))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writing a legacy key: %v", err)
	}
	return k
}

// legacyLeft is what Redis still holds of the shared layout.
func legacyLeft(t *testing.T, rc *redis.Client) []string {
	t.Helper()
	return linesWith(strings.Split(redisDump(t, rc), "\n"), "authgw:{apikey}:")
}

// wantLegacyWarning checks the gateway told the operator at start that
// keys wait in the shared layout, and which command moves them.
func wantLegacyWarning(t *testing.T, g *Gateway, strategy string, n int) {
	t.Helper()
	want := `"legacy_keys":` + strconv.Itoa(n)
	poll.Until(t, 5*time.Second, "start-up warning", func() error {
		for _, line := range strings.Split(g.Stdout(), "\n") {
			if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, want) &&
				strings.Contains(line, `"command":"authgateway keys migrate -strategy `+strategy+`"`) {
				return nil
			}
		}
		return fmt.Errorf("none about %d legacy keys for %s in the gateway log:\n%s", n, strategy, g.Stdout())
	})
}

// TestAPIKeyLegacyMigration: keys in the shared Redis layout of earlier
// versions, with one redis api_key strategy. The new gateway accepts none
// of them and says so in its log; `keys migrate` moves them into the
// strategy's namespace (the revoked one stays revoked, the last use is
// kept), while the running gateway keeps serving; afterwards they work
// without a restart, and a second migrate changes nothing.
func TestAPIKeyLegacyMigration(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := newRedisClient(t, rs)
	up := newUpstream(t, 0)
	lastUsed := time.Now().Add(-time.Hour).UTC().Truncate(time.Minute)
	active := writeLegacyKey(t, rc, "legacy-active", false, lastUsed)
	revoked := writeLegacyKey(t, rc, "legacy-revoked", true, time.Time{})
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	g := startGateway(t, apiKeyConfig(rs.URL(), up.URL, "redis", "deny")+fmt.Sprintf("audit:\n  output: %q\n", auditPath), nil)
	cfg := g.ConfigPath
	fresh := createKey(t, cfg, nil, "-name", "namespaced")

	wantLegacyWarning(t, g, "apiKey", 2)
	for _, k := range []apiKey{active, revoked} {
		wantRefused(t, "legacy key before the migration", g.Do(t, req("GET", "/api/x", k.header())))
	}
	up.WantNothing(t)
	if out := keysCLI(t, cfg, nil, "list"); !strings.Contains(out.Stderr, "2 keys are still in the shared redis layout") || strings.Contains(out.Stdout, active.ID) {
		t.Errorf("keys list before the migration: stdout %q, stderr %q; want the legacy keys only mentioned on stderr", out.Stdout, out.Stderr)
	}

	dry := keysCLI(t, cfg, nil, "migrate", "-strategy", "apiKey", "-dry-run")
	if !strings.Contains(dry.Stdout, "would move "+active.ID) || !strings.Contains(dry.Stdout, "would move "+revoked.ID) || len(legacyLeft(t, rc)) == 0 {
		t.Fatalf("migrate -dry-run: %q; want both keys listed and nothing moved", dry.Stdout)
	}

	// The gateway serves a key of its own all through the migration. The
	// migration starts once the first request is answered: on a loaded
	// machine it could otherwise be over before the loop ever ran.
	var served, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	first := make(chan struct{})
	go func() {
		defer close(done)
		raw := req("GET", "/api/x", fresh.header())
		for n := 0; ; n++ {
			if n > 0 {
				select {
				case <-stop:
					return
				default:
				}
			}
			if statusOf(g.Addr, raw) == http.StatusOK {
				served.Add(1)
			} else {
				failed.Add(1)
			}
			if n == 0 {
				close(first)
			}
		}
	}()
	<-first
	res := keysCLI(t, cfg, nil, "migrate", "-strategy", "apiKey")
	close(stop)
	<-done
	t.Logf("during the migration the gateway answered %d requests with 200, %d otherwise", served.Load(), failed.Load())
	if failed.Load() > 0 || served.Load() == 0 {
		t.Errorf("the gateway's own key during the migration: %d refused, %d served; want none refused", failed.Load(), served.Load())
	}
	for _, want := range []string{
		"moved " + active.ID + " (name legacy-active, prefix pk_live, active) into strategy apiKey",
		"moved " + revoked.ID + " (name legacy-revoked, prefix pk_live, revoked) into strategy apiKey",
		"moved 2, skipped 0; 0 keys left in the shared layout",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("keys migrate output lacks %q:\n%s", want, res.Stdout)
		}
	}
	noSecrets(t, "keys migrate output", res.Stdout+res.Stderr, []apiKey{active, revoked}, false)
	audit, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []apiKey{active, revoked} {
		if !strings.Contains(string(audit), `"event":"key.migrated"`) || len(linesWith(strings.Split(string(audit), "\n"), `"key_id":"`+k.ID+`"`)) != 1 {
			t.Errorf("audit log lacks one key.migrated event for %s:\n%s", k.ID, audit)
		}
	}
	noSecrets(t, "audit log", string(audit), []apiKey{active, revoked}, false)
	if left := legacyLeft(t, rc); len(left) > 0 {
		t.Errorf("Redis still holds the shared layout:\n%s", strings.Join(left, "\n"))
	}

	// No restart: the gateway accepts the moved key at once.
	up.Reset()
	waitStatus(t, "moved key", g, req("GET", "/api/x", active.header()), http.StatusOK, time.Second)
	wantIdentity(t, up.One(t), "legacy-active", active.ID, "reader")
	wantRefused(t, "moved revoked key", g.Do(t, req("GET", "/api/x", revoked.header())))
	list := keysCLI(t, cfg, nil, "list")
	for id, status := range map[string]string{active.ID: "active", revoked.ID: "revoked", fresh.ID: "active"} {
		line := linesWith(strings.Split(list.Stdout, "\n"), id)
		if len(line) != 1 || !strings.Contains(line[0], " "+status+" ") {
			t.Errorf("keys list line of %s = %q, want one line saying %q", id, line, status)
		}
	}
	if line := linesWith(strings.Split(list.Stdout, "\n"), active.ID); len(line) == 1 && !strings.Contains(line[0], lastUsed.Format("2006-01-02 15:04Z")) {
		t.Errorf("moved key lost its last use %s: %q", lastUsed.Format("2006-01-02 15:04Z"), line[0])
	}
	if strings.Contains(list.Stderr, "shared redis layout") {
		t.Errorf("keys list after the migration still mentions legacy keys: %q", list.Stderr)
	}

	before := redisDump(t, rc)
	again := keysCLI(t, cfg, nil, "migrate", "-strategy", "apiKey")
	if !strings.Contains(again.Stdout, "moved 0, skipped 0; 0 keys left in the shared layout") {
		t.Errorf("second migrate: %q; want nothing moved", again.Stdout)
	}
	if after := redisDump(t, rc); after != before {
		t.Errorf("a second migrate changed Redis:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	wantAlive(t, "gateway", g)
}

// TestAPIKeyLegacyMigrationAmbiguous: with two redis strategies on one
// prefix, a key of the shared layout could be either's. No strategy accepts
// it, `keys migrate` without ids leaves it alone, and naming it moves it to
// that strategy only.
func TestAPIKeyLegacyMigrationAmbiguous(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := newRedisClient(t, rs)
	up := newUpstream(t, 0)
	legacy := writeLegacyKey(t, rc, "legacy-partner", false, time.Time{})
	g := startGateway(t, twoKeyStrategiesConfig(rs.URL(), up.URL, "redis", "redis"), nil)
	cfg := g.ConfigPath
	wantLegacyWarning(t, g, "partnerKeys", 1)
	wantLegacyWarning(t, g, "internalKeys", 1)
	for _, path := range []string{"/partner/x", "/internal/x"} {
		wantRefused(t, "legacy key on "+path, g.Do(t, req("GET", path, legacy.header())))
	}

	res := keysCLI(t, cfg, nil, "migrate", "-strategy", "partnerKeys")
	if !strings.Contains(res.Stdout, "skipped "+legacy.ID+" (name legacy-partner): strategy internalKeys also accepts prefix pk_live") ||
		!strings.Contains(res.Stdout, "moved 0, skipped 1; 1 keys left in the shared layout") {
		t.Errorf("migrate without ids: %q; want the ambiguous key skipped", res.Stdout)
	}
	wantRefused(t, "ambiguous legacy key after migrate without ids", g.Do(t, req("GET", "/partner/x", legacy.header())))

	res = keysCLI(t, cfg, nil, "migrate", "-strategy", "partnerKeys", legacy.ID)
	if !strings.Contains(res.Stdout, "moved "+legacy.ID+" (name legacy-partner, prefix pk_live, active) into strategy partnerKeys") {
		t.Errorf("migrate %s: %q", legacy.ID, res.Stdout)
	}
	up.Reset()
	waitStatus(t, "named legacy key on its strategy's route", g, req("GET", "/partner/x", legacy.header()), http.StatusOK, time.Second)
	if got := up.One(t).Header.Get("X-Auth-Strategy"); got != "partnerKeys" {
		t.Errorf("upstream X-Auth-Strategy = %q, want partnerKeys", got)
	}
	up.Reset()
	wantRefused(t, "moved key on the other strategy's route", g.Do(t, req("GET", "/internal/x", legacy.header())))
	up.WantNothing(t)
	if out := keysCLI(t, cfg, nil, "list", "-strategy", "internalKeys").Stdout; strings.Contains(out, legacy.ID) {
		t.Errorf("keys list -strategy internalKeys shows the key moved to partnerKeys:\n%s", out)
	}
	if res := runCLI(t, g.Dir, nil, "keys", "migrate", "-strategy", "internalKeys", legacy.ID, "-config", cfg); res.Code != 1 || !strings.Contains(res.Stderr, "no such key") {
		t.Errorf("migrating the moved key again into internalKeys: exit %d, stderr %q; want 1, no such key", res.Code, res.Stderr)
	}
}
