package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// apiKeyConfig is a gateway with the api_key strategy "apiKey" on /api and
// a public route. store is "redis" or the path of a keys file.
// onRedisError is the auth-failure limit's policy; the limit itself is high
// so that the many refused keys of these tests never trip it.
func apiKeyConfig(redisURL, upstream, store, onRedisError string) string {
	var b strings.Builder
	if redisURL != "" {
		fmt.Fprintf(&b, "redis:\n  url: %q\n", redisURL)
	}
	storeLines := "store: redis"
	if store != "redis" {
		storeLines = fmt.Sprintf("store: file\n    file: %q", store)
	}
	fmt.Fprintf(&b, `strategies:
  apiKey:
    type: api_key
    header: X-API-Key
    prefixes: [pk_live]
    %s
routes:
  - name: keyed
    path: /api
    upstream: %s
    strategies: [apiKey]
  - name: public
    path: /public
    upstream: %s
    public: true
rate_limits:
  auth_failures: {limit: 100000, period: 1m, on_redis_error: %s}
`, storeLines, upstream, upstream, onRedisError)
	return b.String()
}

type replicaGW struct {
	name string
	g    *Gateway
}

// wantIdentity checks one forwarded request against the key's identity
// headers (contract) and that the key itself was not forwarded.
func wantIdentity(t *testing.T, s Seen, subject, id, roles string) {
	t.Helper()
	want := map[string]string{
		"X-Auth-Subject":   subject,
		"X-Auth-Client-Id": id,
		"X-Auth-Strategy":  "apiKey",
	}
	if roles != "" {
		want["X-Auth-Roles"] = roles
	}
	got := authHeaders(s.Header)
	if len(got) != len(want) {
		t.Errorf("upstream X-Auth headers = %v, want exactly %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("upstream %s = %q, want %q", k, got[k], v)
		}
	}
	if v := s.Header.Get("X-API-Key"); v != "" {
		t.Errorf("upstream received the X-API-Key header")
	}
}

// wantRefused checks a 401 of the api_key strategy: JSON with a challenge.
func wantRefused(t *testing.T, what string, r *Response) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Errorf("%s: status = %d, want 401 (body %q)", what, r.Status, r.Body)
		return
	}
	r.ErrorMessage(t)
	if c := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(c, "ApiKey ") {
		t.Errorf("%s: WWW-Authenticate = %q, want an ApiKey challenge", what, c)
	}
}

// noSecrets fails if text holds any spelling of any key's secret, or,
// unless hashesAllowed, any key's hash.
func noSecrets(t *testing.T, where, text string, keys []apiKey, hashesAllowed bool) {
	t.Helper()
	for _, k := range keys {
		for _, f := range k.forms(t) {
			if strings.Contains(text, f) {
				t.Errorf("%s contains key %s (or its secret in some encoding)", where, k.ID)
			}
		}
		if !hashesAllowed && strings.Contains(text, k.Hash()) {
			t.Errorf("%s contains the hash of key %s", where, k.ID)
		}
	}
}

// measureRefusal polls every replica with raw until each answers 401, and
// returns how long each took (missing: never within limit). Any status
// other than 200 or 401 meanwhile is an error.
func measureRefusal(t *testing.T, reps []replicaGW, raw string, limit time.Duration) map[string]time.Duration {
	t.Helper()
	start := time.Now()
	took := map[string]time.Duration{}
	_, _ = poll.Wait(limit, func() error {
		for _, r := range reps {
			if _, done := took[r.name]; done {
				continue
			}
			switch code := statusOf(r.g.Addr, raw); code {
			case http.StatusUnauthorized:
				took[r.name] = time.Since(start)
			case http.StatusOK:
			default:
				t.Errorf("replica %s answered %d while the revocation spread, want 200 or 401", r.name, code)
			}
		}
		if len(took) < len(reps) {
			return errors.New("not refused everywhere yet")
		}
		return nil
	})
	return took
}

// TestAPIKeyReplicasOnRedis: two gateway processes share one redis-server
// as key store. A key made with the CLI works on both, its revocation
// reaches both within a second, expiry and rotation grace end keys on time,
// and neither `keys list` nor Redis ever holds a key.
func TestAPIKeyReplicasOnRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := newRedisClient(t, rs)
	up := newUpstream(t, 0)
	cfg := apiKeyConfig(rs.URL(), up.URL, "redis", "deny")
	a, b := startGateway(t, cfg, nil), startGateway(t, cfg, nil)
	reps := []replicaGW{{"A", a}, {"B", b}}
	cli := a.ConfigPath // same Redis as B's

	key := createKey(t, cli, nil, "-name", "billing-svc", "-roles", "reader,writer", "-prefix", "pk_live", "-expires", "90d")
	all := []apiKey{key}

	t.Run("works on both replicas", func(t *testing.T) {
		for _, r := range reps {
			up.Reset()
			if resp := r.g.Do(t, req("GET", "/api/orders", key.header())); resp.Status != http.StatusOK {
				t.Fatalf("replica %s: status = %d, want 200 (body %q)", r.name, resp.Status, resp.Body)
			}
			wantIdentity(t, up.One(t), "billing-svc", key.ID, "reader,writer")
		}
	})

	t.Run("revocation reaches both replicas within 1s", func(t *testing.T) {
		raw := req("GET", "/api/orders", key.header())
		for _, r := range reps { // both have the key in their local cache now
			if code := statusOf(r.g.Addr, raw); code != http.StatusOK {
				t.Fatalf("replica %s before revocation: status = %d, want 200", r.name, code)
			}
		}
		cliStart := time.Now()
		keysCLI(t, cli, nil, "revoke", key.ID)
		cliTook := time.Since(cliStart)
		took := measureRefusal(t, reps, raw, 3*time.Second)
		t.Logf("revocation propagated in %v (replica A %v, replica B %v) after `keys revoke` returned; the CLI itself ran %v",
			max(took["A"], took["B"]), took["A"], took["B"], cliTook)
		for _, r := range reps {
			d, ok := took[r.name]
			if !ok || d >= time.Second {
				t.Errorf("replica %s refused the revoked key after %v (refused: %v), want < 1s", r.name, d, ok)
			}
			wantRefused(t, "revoked key on replica "+r.name, r.g.Do(t, raw))
		}
	})

	t.Run("expiry and rotation grace", func(t *testing.T) {
		old := createKey(t, cli, nil, "-name", "rotating-svc", "-roles", "reader")
		for _, r := range reps {
			if code := statusOf(r.g.Addr, req("GET", "/api/x", old.header())); code != http.StatusOK {
				t.Fatalf("replica %s, key to rotate: status = %d, want 200", r.name, code)
			}
		}
		shortStart := time.Now()
		short := createKey(t, cli, nil, "-name", "short-lived", "-expires", "2s")
		for _, r := range reps {
			if code := statusOf(r.g.Addr, req("GET", "/api/x", short.header())); code != http.StatusOK {
				t.Fatalf("replica %s, key expiring in 2s, just made: status = %d, want 200", r.name, code)
			}
		}
		rotateStart := time.Now()
		rotated := rotateKey(t, cli, nil, old.ID, "2s")
		all = append(all, old, short, rotated)
		for _, r := range reps {
			if code := statusOf(r.g.Addr, req("GET", "/api/x", old.header())); code != http.StatusOK {
				t.Errorf("replica %s, rotated-out key within its grace: status = %d, want 200", r.name, code)
			}
			up.Reset()
			if code := statusOf(r.g.Addr, req("GET", "/api/x", rotated.header())); code != http.StatusOK {
				t.Fatalf("replica %s, rotated-in key: status = %d, want 200", r.name, code)
			}
			wantIdentity(t, up.One(t), "rotating-svc", rotated.ID, "reader")
		}

		// Each refusal is seen after the gateway decided, and the gateway
		// may decide no earlier than 2s after the CLI started.
		for _, r := range reps {
			for _, c := range []struct {
				what  string
				k     apiKey
				start time.Time
			}{{"expired key (-expires 2s)", short, shortStart}, {"rotated-out key (-grace 2s)", old, rotateStart}} {
				what := c.what + " on replica " + r.name
				waitStatus(t, what, r.g, req("GET", "/api/x", c.k.header()), http.StatusUnauthorized, 6*time.Second)
				after := time.Since(c.start)
				if after < 2*time.Second {
					t.Errorf("%s refused %v after the CLI started, before its 2s were over", what, after)
				}
				t.Logf("%s refused %v after the CLI started", what, after.Round(time.Millisecond))
				wantRefused(t, what, r.g.Do(t, req("GET", "/api/x", c.k.header())))
			}
		}
		for _, r := range reps {
			if code := statusOf(r.g.Addr, req("GET", "/api/x", rotated.header())); code != http.StatusOK {
				t.Errorf("replica %s, rotated-in key after the grace: status = %d, want 200", r.name, code)
			}
		}
	})

	t.Run("keys list shows no key and no hash", func(t *testing.T) {
		out := keysCLI(t, cli, nil, "list")
		noSecrets(t, "keys list output", out.Stdout+out.Stderr, all, false)
		status := map[string]string{key.ID: "revoked"}
		if len(all) == 4 {
			status[all[1].ID], status[all[2].ID], status[all[3].ID] = "expired", "expired", "active"
		}
		for id, want := range status {
			line := linesWith(strings.Split(out.Stdout, "\n"), id)
			if len(line) != 1 || !strings.Contains(line[0], " "+want+" ") {
				t.Errorf("keys list line of %s = %q, want one line saying %q", id, line, want)
			}
		}
	})

	t.Run("Redis holds no plaintext", func(t *testing.T) {
		dump := redisDump(t, rc)
		noSecrets(t, "Redis", dump, all, true)
		for _, k := range all {
			// The dump did read the store: each key is there by hash and id.
			for _, name := range []string{"authgw:{apikey:apiKey}:hash:" + k.Hash(), "authgw:{apikey:apiKey}:id:" + k.ID} {
				if !strings.Contains(dump, name+" ") {
					t.Errorf("Redis has no %s", name)
				}
			}
		}
		if t.Failed() {
			t.Logf("Redis dump:\n%s", dump)
		}
	})
}

// TestAPIKeyBadInput: malformed keys get a 401 JSON answer and never reach
// the store — checked with MONITOR on the real Redis; a well-formed unknown
// key is looked up (which shows the monitor sees lookups).
func TestAPIKeyBadInput(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := newRedisClient(t, rs)
	up := newUpstream(t, 0)
	g := startGateway(t, apiKeyConfig(rs.URL(), up.URL, "redis", "deny"), nil)
	good := createKey(t, g.ConfigPath, nil, "-name", "good-svc")

	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, good.Key[len(good.Key)-1])
	// 43 characters carry 258 bits for 32 bytes: a last character with a
	// low bit set decodes to the same bytes in lenient decoders.
	paddingBits := good.Key[:len(good.Key)-1] + string(alphabet[last|1])

	mon := startMonitor(t, rs)
	mon.Drain(t, rc) // forget the setup

	tests := []struct {
		name    string
		headers []string
	}{
		{"empty header", []string{"X-API-Key: "}},
		{"10 KB header", []string{"X-API-Key: pk_live_" + strings.Repeat("A", 10<<10)}},
		{"non-ASCII bytes (UTF-8)", []string{"X-API-Key: pk_live_" + strings.Repeat("é", 21) + "A"}},
		{"non-ASCII bytes (not UTF-8)", []string{"X-API-Key: pk_live_" + strings.Repeat("\xff", 43)}},
		{"right prefix, one character short", []string{"X-API-Key: " + good.Key[:len(good.Key)-1]}},
		{"right prefix, one character long", []string{"X-API-Key: " + good.Key + "A"}},
		{"prefix only", []string{"X-API-Key: pk_live_"}},
		{"unknown prefix", []string{"X-API-Key: " + randomKeyLike(t, "pk_test")}},
		{"prefix in upper case", []string{"X-API-Key: PK_LIVE" + good.Key[len("pk_live"):]}},
		{"standard base64 alphabet", []string{"X-API-Key: " + good.Key[:len(good.Key)-2] + "+/"}},
		{"non-zero padding bits", []string{"X-API-Key: " + paddingBits}},
		{"the valid key sent twice", []string{good.header(), good.header()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, tc.name, g.Do(t, req("GET", "/api/x", tc.headers...)))
		})
	}
	up.WantNothing(t)
	if seen := linesWith(mon.Drain(t, rc), "authgw:{apikey"); len(seen) > 0 {
		t.Errorf("malformed keys reached the key store; Redis executed:\n%s", strings.Join(seen, "\n"))
	}

	unknown := apiKey{ID: "unknown", Key: randomKeyLike(t, "pk_live")}
	wantRefused(t, "well-formed unknown key", g.Do(t, req("GET", "/api/x", unknown.header())))
	lookups := linesWith(mon.Drain(t, rc), "authgw:{apikey:apiKey}:hash:"+unknown.Hash())
	if len(lookups) == 0 {
		t.Errorf("a well-formed unknown key was not looked up in Redis (or MONITOR missed it)")
	}
	if resp := g.Do(t, req("GET", "/api/x", good.header())); resp.Status != http.StatusOK {
		t.Errorf("valid key after the bad ones: status = %d, want 200", resp.Status)
	}
}

// TestAPIKeyRevocationWhileCutOff: a revocation published while replica B
// cannot hear pub/sub still reaches B: B flushes its cache when its
// subscription comes back. B connects as its own Redis user so that its
// channel permission can be taken away while Redis stays up for A and the
// CLI.
func TestAPIKeyRevocationWhileCutOff(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := newRedisClient(t, rs)
	ctx := context.Background()
	pw := randomSecret(t)[:24]
	if err := rc.Do(ctx, "ACL", "SETUSER", "replica-b", "on", ">"+pw, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	up := newUpstream(t, 0)
	a := startGateway(t, apiKeyConfig(rs.URL(), up.URL, "redis", "deny"), nil)
	b := startGateway(t, apiKeyConfig("redis://replica-b:"+pw+"@"+rs.Addr()+"/0", up.URL, "redis", "deny"), nil)
	waitSubscribers(t, rc, 2)

	key := createKey(t, a.ConfigPath, nil, "-name", "cut-off-svc")
	raw := req("GET", "/api/x", key.header())
	for _, r := range []replicaGW{{"A", a}, {"B", b}} {
		if code := statusOf(r.g.Addr, raw); code != http.StatusOK {
			t.Fatalf("replica %s: status = %d, want 200", r.name, code)
		}
	}

	// Cut B off pub/sub: it may no longer subscribe, and its subscription
	// is dropped.
	if err := rc.Do(ctx, "ACL", "SETUSER", "replica-b", "resetchannels").Err(); err != nil {
		t.Fatalf("ACL SETUSER resetchannels: %v", err)
	}
	if err := rc.Do(ctx, "CLIENT", "KILL", "USER", "replica-b", "TYPE", "pubsub").Err(); err != nil {
		t.Fatalf("CLIENT KILL: %v", err)
	}
	waitSubscribers(t, rc, 1) // A only

	keysCLI(t, a.ConfigPath, nil, "revoke", key.ID)
	if d := waitStatus(t, "replica A", a, raw, http.StatusUnauthorized, 3*time.Second); d >= time.Second {
		t.Errorf("replica A refused the revoked key after %v, want < 1s", d)
	}
	t.Logf("replica B while cut off from pub/sub: status %d for the revoked key", statusOf(b.Addr, raw))

	if err := rc.Do(ctx, "ACL", "SETUSER", "replica-b", "allchannels").Err(); err != nil {
		t.Fatalf("ACL SETUSER allchannels: %v", err)
	}
	d := waitStatus(t, "replica B after its subscription came back", b, raw, http.StatusUnauthorized, 5*time.Second)
	t.Logf("replica B refused the key revoked while it was cut off %v after pub/sub was allowed again", d)
	waitSubscribers(t, rc, 2)
	wantRefused(t, "revoked key on replica B", b.Do(t, raw))
	wantAlive(t, "replica B", b)
}

// waitSubscribers waits until the invalidation channel has n subscribers.
func waitSubscribers(t *testing.T, rc *redis.Client, n int64) {
	t.Helper()
	const channel = "authgw:{apikey:apiKey}:events"
	poll.Until(t, 5*time.Second, channel+" subscribers", func() error {
		if got := rc.PubSubNumSub(context.Background(), channel).Val()[channel]; got != n {
			return fmt.Errorf("%d, want %d", got, n)
		}
		return nil
	})
}

// TestAPIKeyRedisOutage: while Redis is away, a key a replica has not
// cached is refused (never 200), malformed keys still get 401, nothing
// panics; when Redis is back (empty: no persistence) the replicas resubscribe,
// drop what they cached, and keys made afterwards work and revoke as usual.
func TestAPIKeyRedisOutage(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := newRedisClient(t, rs)
	up := newUpstream(t, 0)
	// on_redis_error: allow on the failure limit, so that the strategy's own
	// behaviour without Redis is what the requests see (with the default
	// deny they would all get 429 first; TestRedisRateLimitOutage checks that).
	cfg := apiKeyConfig(rs.URL(), up.URL, "redis", "allow")
	a, b := startGateway(t, cfg, nil), startGateway(t, cfg, nil)
	reps := []replicaGW{{"A", a}, {"B", b}}

	key := createKey(t, a.ConfigPath, nil, "-name", "outage-svc")
	raw := req("GET", "/api/x", key.header())
	if code := statusOf(a.Addr, raw); code != http.StatusOK { // cached on A only
		t.Fatalf("replica A: status = %d, want 200", code)
	}

	rs.Stop()
	up.Reset()
	failClosed := func(name string, g *Gateway, raw string) {
		t.Helper()
		codes := make([]int, 10)
		runConcurrently(len(codes), func(i int) { codes[i] = statusOf(g.Addr, raw) })
		for _, c := range codes {
			if c != http.StatusUnauthorized && c != http.StatusServiceUnavailable {
				t.Errorf("%s with Redis down: status %d, want 401 or 503 (all: %v)", name, c, codes)
				return
			}
		}
		t.Logf("%s with Redis down: %v", name, codes)
	}
	failClosed("key not cached on replica B", b, raw)
	failClosed("well-formed unknown key on replica A", a, req("GET", "/api/x", "X-API-Key: "+randomKeyLike(t, "pk_live")))
	wantRefused(t, "malformed key with Redis down", b.Do(t, req("GET", "/api/x", "X-API-Key: pk_live_short")))
	if r := b.Do(t, req("GET", "/public/x")); r.Status != http.StatusOK {
		t.Errorf("public route with Redis down: status = %d, want 200", r.Status)
	}
	for _, s := range up.Requests() {
		if s.RequestURI != "/public/x" {
			t.Errorf("upstream received %s %s from a refused key while Redis was down", s.Method, s.RequestURI)
		}
	}
	// Not asserted (the cache may serve an entry for up to its TTL, 30s),
	// but worth seeing: a cached key keeps working through the outage.
	t.Logf("replica A, key in its local cache, Redis down: status %d", statusOf(a.Addr, raw))
	for _, r := range reps {
		wantAlive(t, "replica "+r.name, r.g)
		if code := adminStatus(r.g, "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("replica %s /readyz with Redis down = %d, want 503", r.name, code)
		}
	}

	rs.Restart()
	for _, r := range reps {
		poll.True(t, 5*time.Second, "replica "+r.name+" ready after Redis came back", func() bool {
			return adminStatus(r.g, "/readyz") == http.StatusOK
		})
	}
	// The restarted Redis is empty: the key is gone, and A must not keep
	// serving it from the cache it flushes on resubscribing.
	waitStatus(t, "replica A, key lost with Redis's data", a, raw, http.StatusUnauthorized, 5*time.Second)
	waitSubscribers(t, rc, 2)

	fresh := createKey(t, a.ConfigPath, nil, "-name", "after-outage")
	freshRaw := req("GET", "/api/x", fresh.header())
	for _, r := range reps {
		waitStatus(t, "replica "+r.name+", key made after the outage", r.g, freshRaw, http.StatusOK, 3*time.Second)
	}
	keysCLI(t, a.ConfigPath, nil, "revoke", fresh.ID)
	took := measureRefusal(t, reps, freshRaw, 3*time.Second)
	t.Logf("revocation after the outage propagated in %v (replica A %v, replica B %v)", max(took["A"], took["B"]), took["A"], took["B"])
	for _, r := range reps {
		if d, ok := took[r.name]; !ok || d >= time.Second {
			t.Errorf("replica %s after the outage refused the revoked key after %v (refused: %v), want < 1s", r.name, d, ok)
		}
		wantAlive(t, "replica "+r.name, r.g)
	}
}

// TestAPIKeyFileStore: one gateway on the file store. A key made with the
// CLI while the gateway runs works without a restart, its revocation takes
// effect within a second, and neither the file nor `keys list` holds a key.
// The store creates the file, and its directory, on the first write: both
// a directory that exists when the gateway starts and one the CLI creates
// later must give the same behaviour.
func TestAPIKeyFileStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		dirExists bool
	}{
		{"keys directory exists at start", true},
		{"keys directory made by the first keys create", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, 0)
			file := filepath.Join(t.TempDir(), "keys", "api-keys.yaml") // no file yet
			if tc.dirExists {
				if err := os.Mkdir(filepath.Dir(file), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			g := startGateway(t, apiKeyConfig("", up.URL, file, "deny"), nil)

			key := createKey(t, g.ConfigPath, nil, "-name", "file-svc", "-roles", "reader", "-expires", "90d")
			raw := req("GET", "/api/x", key.header())
			d := waitStatus(t, "key made while the gateway runs", g, raw, http.StatusOK, 3*time.Second)
			t.Logf("file store: new key usable %v after `keys create` returned", d)
			up.Reset()
			if r := g.Do(t, raw); r.Status != http.StatusOK {
				t.Fatalf("status = %d, want 200", r.Status)
			}
			wantIdentity(t, up.One(t), "file-svc", key.ID, "reader")

			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			noSecrets(t, "the keys file", string(data), []apiKey{key}, true)
			if !strings.Contains(string(data), key.Hash()) || !strings.Contains(string(data), key.ID) {
				t.Errorf("the keys file holds neither the key's hash nor its id:\n%s", data)
			}

			// Four revocations 0.5s apart: a store that only noticed
			// changes on a 2s poll would miss the 1s bound on at least one
			// of them, whatever the poll's phase.
			more := []apiKey{key}
			for i := 2; i <= 4; i++ {
				more = append(more, createKey(t, g.ConfigPath, nil, "-name", fmt.Sprintf("file-svc-%d", i)))
			}
			for _, k := range more[1:] {
				waitStatus(t, "key made while the gateway runs", g, req("GET", "/api/x", k.header()), http.StatusOK, 3*time.Second)
			}
			took := make([]time.Duration, len(more))
			errs := make([]error, len(more))
			runConcurrently(len(more), func(i int) {
				time.Sleep(time.Duration(i) * 500 * time.Millisecond)
				took[i], errs[i] = revokeAndWait(g, more[i], 5*time.Second)
			})
			t.Logf("file store: revocations took effect %v after `keys revoke` returned", took)
			for i, err := range errs {
				if err != nil {
					t.Errorf("revoking %s: %v", more[i].ID, err)
				} else if took[i] >= time.Second {
					t.Errorf("revoked key %s refused after %v, want < 1s", more[i].ID, took[i])
				}
			}
			wantRefused(t, "revoked key", g.Do(t, raw))

			out := keysCLI(t, g.ConfigPath, nil, "list")
			noSecrets(t, "keys list output", out.Stdout+out.Stderr, more, false)
			if !strings.Contains(out.Stdout, key.ID) {
				t.Errorf("keys list does not list %s:\n%s", key.ID, out.Stdout)
			}
		})
	}
}

// TestAPIKeyClaimsInTemplatesAndPolicy: a key's metadata reaches header
// templates and allow_if as its claims (built on first use and kept with
// the cached record), the same on the first request as on later ones
// answered from the cache, and a key whose claims fail allow_if is refused
// both times.
func TestAPIKeyClaimsInTemplatesAndPolicy(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, 0)
	file := filepath.Join(t.TempDir(), "api-keys.yaml")
	cfg := strings.Replace(apiKeyConfig("", up.URL, file, "deny"), `    strategies: [apiKey]
`, `    strategies: [apiKey]
    request_headers:
      X-Key-Name: "{claims.name}"
      X-Key-Prefix: "{claims.prefix}"
      X-Key-Roles: "{claims.roles}"
    allow_if: 'identity.claims.name.startsWith("claims-") && "reader" in identity.claims.roles'
`, 1)
	g := startGateway(t, cfg, nil)
	ok := createKey(t, g.ConfigPath, nil, "-name", "claims-svc", "-roles", "reader,writer")
	other := createKey(t, g.ConfigPath, nil, "-name", "other-svc", "-roles", "reader")
	okReq, otherReq := req("GET", "/api/x", ok.header()), req("GET", "/api/x", other.header())
	waitStatus(t, "new key", g, okReq, http.StatusOK, 3*time.Second)
	for round := range 3 { // the first may be a lookup; the rest are cache hits
		up.Reset()
		if r := g.Do(t, okReq); r.Status != http.StatusOK {
			t.Fatalf("round %d: status %d; want 200", round, r.Status)
		}
		h := up.One(t).Header
		for k, want := range map[string]string{"X-Key-Name": "claims-svc", "X-Key-Prefix": "pk_live", "X-Key-Roles": "reader,writer"} {
			if got := h.Get(k); got != want {
				t.Errorf("round %d: upstream %s = %q; want %q", round, k, got, want)
			}
		}
		if r := g.Do(t, otherReq); r.Status != http.StatusForbidden {
			t.Fatalf("round %d: key failing allow_if: status %d; want 403", round, r.Status)
		}
	}
}
