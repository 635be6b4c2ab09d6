package e2e

// Helpers for the tests that run several gateways on one real redis-server
// (API keys and rate limits): the keys CLI, polling, and reading Redis
// directly — a dump of everything stored and a MONITOR of every command.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// apiKey is a key printed by `keys create` or `keys rotate`.
type apiKey struct {
	ID  string // key_xxxxxxxxxxxx
	Key string // the plaintext, shown once
}

// Hash is the hex SHA-256 of the whole key: the only form a store may hold.
func (k apiKey) Hash() string {
	sum := sha256.Sum256([]byte(k.Key))
	return hex.EncodeToString(sum[:])
}

// forms are the spellings of the key's secret that must never be stored or
// printed: the key, its secret part, and the secret's bytes re-encoded.
func (k apiKey) forms(t *testing.T) []string {
	t.Helper()
	// The secret is the last 43 characters (it may itself contain '_').
	secret := k.Key[len(k.Key)-43:]
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil {
		t.Fatalf("key %s: secret part is not base64url: %v", k.ID, err)
	}
	return []string{k.Key, secret, base64.StdEncoding.EncodeToString(raw), hex.EncodeToString(raw)}
}

// header is the X-API-Key request header line carrying the key.
func (k apiKey) header() string { return "X-API-Key: " + k.Key }

var (
	createdLine = regexp.MustCompile(`(?m)^created key (key_[a-z0-9]{12}) `)
	rotatedLine = regexp.MustCompile(`(?m)^rotated key (key_[a-z0-9]{12}) -> (key_[a-z0-9]{12}) `)
	keyFormat   = regexp.MustCompile(`^pk_live_[A-Za-z0-9_-]{43}$`)
)

// keysCLI runs `authgateway keys ARGS -config cfg` and fails the test unless
// it exits 0. No key is ever allowed on stderr.
func keysCLI(t *testing.T, cfg string, env map[string]string, args ...string) cliResult {
	t.Helper()
	res := runCLI(t, filepath.Dir(cfg), env, append(append([]string{"keys"}, args...), "-config", cfg)...)
	if res.Code != 0 {
		t.Fatalf("authgateway keys %v: exit %d\nstdout: %s\nstderr: %s", args, res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// printedKey is the key a create or rotate printed: the last line of
// stdout, and the only place it appears.
func printedKey(t *testing.T, res cliResult) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n")
	key := lines[len(lines)-1]
	if !keyFormat.MatchString(key) {
		t.Fatalf("last line of stdout = %q, want a pk_live_ key", key)
	}
	// Shown once: on the last line and nowhere else.
	if n := strings.Count(res.Stdout, key); n != 1 {
		t.Errorf("the key appears %d times on stdout, want once", n)
	}
	if strings.Contains(res.Stderr, key) {
		t.Errorf("the key appears on stderr")
	}
	return key
}

// createKey runs `keys create` with args (-name, -roles, -expires...).
func createKey(t *testing.T, cfg string, env map[string]string, args ...string) apiKey {
	t.Helper()
	res := keysCLI(t, cfg, env, append([]string{"create"}, args...)...)
	m := createdLine.FindStringSubmatch(res.Stdout)
	if m == nil {
		t.Fatalf("keys create printed no key id:\n%s", res.Stdout)
	}
	return apiKey{ID: m[1], Key: printedKey(t, res)}
}

// rotateKey runs `keys rotate ID -grace grace` and returns the new key.
func rotateKey(t *testing.T, cfg string, env map[string]string, id, grace string) apiKey {
	t.Helper()
	res := keysCLI(t, cfg, env, "rotate", id, "-grace", grace)
	m := rotatedLine.FindStringSubmatch(res.Stdout)
	if m == nil || m[1] != id {
		t.Fatalf("keys rotate %s printed no new id:\n%s", id, res.Stdout)
	}
	return apiKey{ID: m[2], Key: printedKey(t, res)}
}

// revokeAndWait runs `keys revoke` for k on g's config, then polls g until
// k is refused, and returns how long that took after the CLI returned. It
// does not touch t, so goroutines may call it.
func revokeAndWait(g *Gateway, k apiKey, within time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "keys", "revoke", k.ID, "-config", g.ConfigPath)
	cmd.Dir, cmd.Env = g.Dir, processEnv(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("keys revoke: %v: %s", err, out)
	}
	raw := req("GET", "/api/x", k.header())
	d, err := poll.Wait(within, func() error { return wantStatus(g, raw, http.StatusUnauthorized) })
	if err != nil {
		return 0, fmt.Errorf("after keys revoke: %w", err)
	}
	return d, nil
}

// wantStatus sends raw to g and answers an error unless it gets want.
func wantStatus(g *Gateway, raw string, want int) error {
	if got := statusOf(g.Addr, raw); got != want {
		return fmt.Errorf("status %d, want %d", got, want)
	}
	return nil
}

// statusOf sends raw to addr and returns the status, 0 if the exchange failed.
func statusOf(addr, raw string) int {
	r, err := doRaw(addr, raw)
	if err != nil {
		return 0
	}
	return r.Status
}

// waitStatus polls g until raw gets want, and returns how long that took;
// it fails the test after within.
func waitStatus(t *testing.T, name string, g *Gateway, raw string, want int, within time.Duration) time.Duration {
	t.Helper()
	return poll.Until(t, within, name, func() error { return wantStatus(g, raw, want) })
}

// wantAlive fails the test if g's process has exited, or /healthz is not 200.
func wantAlive(t *testing.T, name string, g *Gateway) {
	t.Helper()
	select {
	case <-g.done:
		t.Fatalf("%s exited: %v\nstderr:\n%s", name, g.err, g.Stderr())
	default:
	}
	if code := adminStatus(g, "/healthz"); code != http.StatusOK {
		t.Errorf("%s /healthz = %d, want 200", name, code)
	}
	if strings.Contains(g.Stderr(), "panic") {
		t.Errorf("%s printed a panic:\n%s", name, g.Stderr())
	}
}

// adminStatus GETs path on the admin listener; 0 if that failed.
func adminStatus(g *Gateway, path string) int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + g.AdminAddr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// randomKeyLike returns a well-formed key with prefix that no store holds.
func randomKeyLike(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(b)
}

// newRedisClient is a plain client on the test's redis-server, for reading
// what the gateways stored and for administrative commands.
func newRedisClient(t *testing.T, s *redistest.Server) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// redisDump reads every key in Redis with its type and full value, one
// line per key, sorted.
func redisDump(t *testing.T, rc *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	iter := rc.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		typ, err := rc.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		var val any
		switch typ {
		case "string":
			val, err = rc.Get(ctx, k).Result()
		case "hash":
			val, err = rc.HGetAll(ctx, k).Result()
		case "set":
			val, err = rc.SMembers(ctx, k).Result()
		case "list":
			val, err = rc.LRange(ctx, k, 0, -1).Result()
		case "zset":
			val, err = rc.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "none":
			continue // expired between SCAN and TYPE
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		if err != nil && err != redis.Nil {
			t.Fatalf("reading %s: %v", k, err)
		}
		fmt.Fprintf(&b, "%s (%s) = %v\n", k, typ, val)
	}
	return b.String()
}

// redisMonitor records every command Redis executes (MONITOR), on its own
// connection.
type redisMonitor struct {
	conn net.Conn
	mu   sync.Mutex
	seen []string
	done chan struct{}
}

func startMonitor(t *testing.T, s *redistest.Server) *redisMonitor {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second)
	if err != nil {
		t.Fatalf("dialing redis for MONITOR: %v", err)
	}
	br := bufio.NewReader(conn)
	if _, err := fmt.Fprint(conn, "MONITOR\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("MONITOR answered %q, %v", line, err)
	}
	m := &redisMonitor{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			m.mu.Lock()
			m.seen = append(m.seen, strings.TrimRight(line, "\r\n"))
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-m.done })
	return m
}

// Drain returns the commands executed since the last Drain. A marker
// command sent on another connection and waited for makes sure everything
// executed before the call has been read.
func (m *redisMonitor) Drain(t *testing.T, rc *redis.Client) []string {
	t.Helper()
	marker := "e2e-marker-" + randomSecret(t)[:16]
	if err := rc.Echo(context.Background(), marker).Err(); err != nil {
		t.Fatalf("ECHO: %v", err)
	}
	var out []string
	poll.True(t, 5*time.Second, "MONITOR showing the marker command", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, line := range m.seen {
			if strings.Contains(line, marker) {
				out = m.seen[:i]
				m.seen = append([]string(nil), m.seen[i+1:]...)
				return true
			}
		}
		return false
	})
	return out
}

// linesWith returns the lines that contain s.
func linesWith(lines []string, s string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// runConcurrently runs n calls of fn at once and waits for all of them.
func runConcurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}
