package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// reloadHead is the fixed part of every config of
// the reload tests; the routes change from step to step.
const reloadHead = `server:
  listen: "LISTEN"
  admin_listen: "ADMIN"
` + userJWTConfig + `rate_limits:
  auth_failures:
    limit: 100000
    period: 1m
routes:
  # The route the hammering clients use: it exists in every version.
  - name: steady
    path: /api/steady
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [reader]
`

// The config versions the reload tests step through.
const (
	// reloadV0 is the config the gateway starts on.
	reloadV0 = reloadHead
	// reloadV1 adds a route.
	reloadV1 = reloadHead + `  - name: reports
    path: /reports
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [reader]
`
	// reloadV2 changes the new route's roles.
	reloadV2 = reloadHead + `  - name: reports
    path: /reports
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [auditor]
`
	// reloadBroken is reloadV2 with a YAML syntax error on the line marked
	// by brokenLine.
	reloadBroken = reloadHead + `  - name: reports
    path: /reports: [
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [auditor]
`
	brokenLine = "    path: /reports: ["
	// reloadFixed repairs it and also adds a public route, so that serving
	// "the fixed config" is visible and not just "the previous one".
	reloadFixed = reloadV2 + `  - name: status
    path: /status
    upstream: UPSTREAM
    public: true
`
)

// The steady route, and what the last reload steps make of it while it is
// hammered: a host, methods and a templated header; then a method split on
// the host with another header value, the host-less route kept for others.
const (
	reloadSplit = reloadFixed + `  - name: steady-host
    host: 127.0.0.1
    path: /api/steady
    methods: [GET]
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [reader]
    request_headers: {X-Steady: "{subject}"}
`
	reloadResplit = reloadFixed + `  - name: steady-host
    host: 127.0.0.1
    path: /api/steady
    methods: [GET, HEAD]
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [reader]
    request_headers: {X-Steady: "v2-{subject}"}
  - name: steady-write
    host: 127.0.0.1
    path: /api/steady
    methods: [POST]
    upstream: UPSTREAM
    strategies: [userJwt]
    roles: [editor]
`
)

// reloadVersion fills in a config version for gateway g and upstream up.
func reloadVersion(tmpl string, g *Gateway, up *Upstream) string {
	return strings.NewReplacer("LISTEN", g.Addr, "ADMIN", g.AdminAddr, "UPSTREAM", up.URL).Replace(tmpl)
}

// lineOf is the 1-based number of the line of text that equals line.
func lineOf(t *testing.T, text, line string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if l == line {
			return i + 1
		}
	}
	t.Fatalf("line %q not in config", line)
	return 0
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// writeAtomic replaces path the way most editors save: write a temporary
// file in the same directory, then rename it over the old one.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".gateway.yaml.tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// writeInPlace overwrites path in place (truncate and write), as
// `cat > file` or an editor with backupcopy=yes does.
func writeInPlace(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readyzState is the admin /readyz body.
type readyzState struct {
	Status          string   `json:"status"`
	ConfigHash      string   `json:"config_hash"`
	LastReloadError string   `json:"last_reload_error"`
	RestartRequired bool     `json:"restart_required"`
	RestartKeys     []string `json:"restart_keys"`
}

func getReadyz(t *testing.T, g *Gateway) readyzState {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + g.AdminAddr + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var st readyzState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding /readyz: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz status %d, want 200 (%+v)", resp.StatusCode, st)
	}
	return st
}

// pollUntil polls cond until it returns nil or 10s have passed (a reload
// takes the 250 ms debounce plus a build; the machine may be busy).
func pollUntil(t *testing.T, what string, cond func() error) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

// statusCond is a condition: a GET of target with the bearer token (none if
// empty) answers want.
func statusCond(g *Gateway, target, token string, want int) func() error {
	return func() error {
		var hdr []string
		if token != "" {
			hdr = append(hdr, bearer(token))
		}
		resp, err := doRaw(g.Addr, req("GET", target, hdr...))
		if err != nil {
			return err
		}
		if resp.Status != want {
			return fmt.Errorf("GET %s: status %d, want %d", target, resp.Status, want)
		}
		return nil
	}
}

// wantStatusNow asserts one request's status now.
func wantStatusNow(t *testing.T, g *Gateway, target, token string, want int) {
	t.Helper()
	if err := statusCond(g, target, token, want)(); err != nil {
		t.Error(err)
	}
}

// hammer is a set of clients requesting one URL in a loop over keep-alive
// connections, counting every answer that is not 200.
type hammer struct {
	total, failed atomic.Int64
	mu            sync.Mutex
	samples       []string // the first few failures
	cancel        context.CancelFunc
	wg            sync.WaitGroup
}

// startHammer starts n clients on url with the bearer token. They stop at
// stop(), at the latest after a minute or 500k requests (a bound, never hit).
func startHammer(n int, url, token string) *hammer {
	h := &hammer{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	h.cancel = cancel
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for i := 0; i < n; i++ {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for ctx.Err() == nil && h.total.Load() < 500_000 {
				h.once(ctx, client, url, token)
				// A short pause keeps the 2-core machine usable for the
				// gateway's own reload work while requests stay continuous.
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	return h
}

func (h *hammer) once(ctx context.Context, client *http.Client, url, token string) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		h.fail(err.Error())
		return
	}
	r.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(r)
	if ctx.Err() != nil {
		return // stopped mid-request: not an answer of the gateway
	}
	h.total.Add(1)
	if err != nil {
		h.fail(err.Error())
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.fail("status " + strconv.Itoa(resp.StatusCode))
	}
}

func (h *hammer) fail(msg string) {
	h.failed.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) < 5 {
		h.samples = append(h.samples, msg)
	}
}

// stop ends the clients and checks that not one request failed.
func (h *hammer) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	h.wg.Wait()
	total, failed := h.total.Load(), h.failed.Load()
	t.Logf("hammering clients: %d requests during the reloads, %d failed", total, failed)
	if total < 100 {
		t.Errorf("the hammering clients made only %d requests; the test did not exercise the swap", total)
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed during reloads, want 0; first: %q", failed, total, h.samples)
	}
}

// reloadCounts is the reload counters of one scrape.
type reloadCounts struct{ success, failure, lastOK float64 }

func scrapeReloads(t *testing.T, g *Gateway) reloadCounts {
	t.Helper()
	fams, _ := scrapeMetrics(t, g)
	return reloadCounts{
		success: fams.value("authgateway_config_reloads_total", promLabels("result", "success")),
		failure: fams.value("authgateway_config_reloads_total", promLabels("result", "failure")),
		lastOK:  fams.value("authgateway_config_last_reload_successful", nil),
	}
}

// TestLiveReload edits the config of a running gateway step by step while
// four clients hammer a route that exists throughout, and checks that each
// edit takes effect, that a broken edit keeps the old config serving and is
// reported, and that not one hammering request fails.
func TestLiveReload(t *testing.T) {
	up := newUpstream(t, 0)
	secret := randomSecret(t)
	g := startGateway(t, strings.ReplaceAll(reloadV0, "UPSTREAM", up.URL), map[string]string{"ACCESS_SECRET": secret})
	reader := g.Token(t, "-sub", "alice", "-roles", "reader")
	auditor := g.Token(t, "-sub", "carol", "-roles", "auditor")
	start := scrapeReloads(t, g)

	h := startHammer(4, "http://"+g.Addr+"/api/steady/ping", reader)
	defer h.cancel()

	t.Run("add a route (atomic rename)", func(t *testing.T) {
		wantStatusNow(t, g, "/reports/q1", reader, http.StatusNotFound)
		writeAtomic(t, g.ConfigPath, reloadVersion(reloadV1, g, up))
		pollUntil(t, "new route answers", statusCond(g, "/reports/q1", reader, http.StatusOK))
		if got, want := getReadyz(t, g).ConfigHash, sha256Hex(reloadVersion(reloadV1, g, up)); got != want {
			t.Errorf("/readyz config_hash = %s, want the SHA-256 of the new file %s", got, want)
		}
	})

	t.Run("change a route's roles (in-place write)", func(t *testing.T) {
		writeInPlace(t, g.ConfigPath, reloadVersion(reloadV2, g, up))
		pollUntil(t, "reader loses access", statusCond(g, "/reports/q1", reader, http.StatusForbidden))
		wantStatusNow(t, g, "/reports/q1", auditor, http.StatusOK)
		wantStatusNow(t, g, "/reports/q1", "", http.StatusUnauthorized)
	})

	t.Run("broken YAML keeps the old config serving", func(t *testing.T) {
		good := getReadyz(t, g)
		before := scrapeReloads(t, g)
		broken := reloadVersion(reloadBroken, g, up)
		writeAtomic(t, g.ConfigPath, broken)
		var st readyzState
		pollUntil(t, "/readyz reports the reload error", func() error {
			if st = getReadyz(t, g); st.LastReloadError == "" {
				return fmt.Errorf("last_reload_error empty")
			}
			return nil
		})
		wantLoc := fmt.Sprintf("%s:%d:", g.ConfigPath, lineOf(t, broken, brokenLine))
		if !strings.Contains(st.LastReloadError, wantLoc) {
			t.Errorf("last_reload_error = %q, want it to name %q", st.LastReloadError, wantLoc)
		}
		if st.ConfigHash != good.ConfigHash {
			t.Errorf("config_hash changed to %s on a failed reload; want %s (still serving the old one)", st.ConfigHash, good.ConfigHash)
		}
		after := scrapeReloads(t, g)
		if d := after.failure - before.failure; d != 1 {
			t.Errorf("config_reloads_total{result=failure} rose by %v, want 1", d)
		}
		if d := after.success - before.success; d != 0 {
			t.Errorf("config_reloads_total{result=success} rose by %v on a broken edit, want 0", d)
		}
		if after.lastOK != 0 {
			t.Errorf("config_last_reload_successful = %v after a broken edit, want 0", after.lastOK)
		}
		// The previous config (reloadV2) still decides.
		wantStatusNow(t, g, "/reports/q2", reader, http.StatusForbidden)
		wantStatusNow(t, g, "/reports/q2", auditor, http.StatusOK)
		// The log reaches the test through a pipe, a little after /readyz
		// reports the error.
		pollUntil(t, "the failed reload is logged", func() error {
			if !strings.Contains(g.Stdout(), "config reload failed") {
				return fmt.Errorf("no \"config reload failed\" in the log")
			}
			return nil
		})
	})

	t.Run("fixing it serves the fixed config", func(t *testing.T) {
		before := scrapeReloads(t, g)
		fixed := reloadVersion(reloadFixed, g, up)
		writeAtomic(t, g.ConfigPath, fixed)
		pollUntil(t, "the fixed config's new route answers", statusCond(g, "/status", "", http.StatusOK))
		st := getReadyz(t, g)
		if st.LastReloadError != "" {
			t.Errorf("last_reload_error = %q after a good reload, want it cleared", st.LastReloadError)
		}
		if want := sha256Hex(fixed); st.ConfigHash != want {
			t.Errorf("config_hash = %s, want %s", st.ConfigHash, want)
		}
		wantStatusNow(t, g, "/reports/q3", reader, http.StatusForbidden)
		wantStatusNow(t, g, "/reports/q3", auditor, http.StatusOK)
		after := scrapeReloads(t, g)
		if d := after.success - before.success; d != 1 {
			t.Errorf("config_reloads_total{result=success} rose by %v, want 1", d)
		}
		if after.lastOK != 1 {
			t.Errorf("config_last_reload_successful = %v, want 1", after.lastOK)
		}
		fams, _ := scrapeMetrics(t, g)
		hashes := fams.labelValues("authgateway_config_info", "hash")
		if len(hashes) != 1 || hashes[0] != st.ConfigHash {
			t.Errorf("config_info hashes = %q, want only the loaded config's %s", hashes, st.ConfigHash)
		}
	})

	t.Run("SIGHUP reloads", func(t *testing.T) {
		before := scrapeReloads(t, g)
		hash := getReadyz(t, g).ConfigHash
		g.Signal(t, syscall.SIGHUP)
		pollUntil(t, "SIGHUP reload counted", func() error {
			if d := scrapeReloads(t, g).success - before.success; d != 1 {
				return fmt.Errorf("config_reloads_total{result=success} rose by %v, want 1", d)
			}
			return nil
		})
		if got := getReadyz(t, g).ConfigHash; got != hash {
			t.Errorf("config_hash = %s after SIGHUP of an unchanged file, want %s", got, hash)
		}
		pollUntil(t, "the SIGHUP reload is logged", func() error {
			if !strings.Contains(g.Stdout(), "SIGHUP: reloading config") {
				return fmt.Errorf("no SIGHUP line in the log")
			}
			return nil
		})
		wantStatusNow(t, g, "/status", "", http.StatusOK)
	})

	t.Run("change the hammered route's host, methods and headers", func(t *testing.T) {
		// The hammer's GETs (Host 127.0.0.1:port) stay a reader's 200 in
		// every version; what each version says is seen on other requests.
		seen := func(id string) *Seen {
			for _, s := range up.Requests() {
				if s.Header.Get("X-Request-Id") == id {
					return &s
				}
			}
			return nil
		}
		steadyHeader := func(id, want string) func() error {
			return func() error {
				resp, err := doRaw(g.Addr, hostReq("GET", "/api/steady/x", "127.0.0.1", bearer(reader), "X-Request-Id: "+id, "x_steady: forged"))
				if err != nil {
					return err
				}
				s := seen(id)
				if resp.Status != http.StatusOK || s == nil {
					return fmt.Errorf("status %d, upstream saw it: %v", resp.Status, s != nil)
				}
				if got := s.Header.Values("X-Steady"); len(got) != 1 || got[0] != want || s.Header.Get("X_steady") != "" {
					return fmt.Errorf("upstream got X-Steady %q, want [%q]", got, want)
				}
				return nil
			}
		}
		for i, v := range []struct{ version, header string }{
			{reloadSplit, "alice"},
			{reloadResplit, "v2-alice"},
		} {
			writeAtomic(t, g.ConfigPath, reloadVersion(v.version, g, up))
			n := 0
			pollUntil(t, "the new headers are sent", func() error {
				n++
				return steadyHeader(fmt.Sprintf("steady-%d-%d", i, n), v.header)()
			})
		}
		// reloadResplit: POST is the editors' route on the host; the
		// host-less GET route still serves other hosts.
		if resp := g.Do(t, hostReq("POST", "/api/steady/x", "127.0.0.1", bearer(reader), "Content-Length: 0")); resp.Status != http.StatusForbidden {
			t.Errorf("reader's POST after the split: %d, want 403", resp.Status)
		}
		if resp := g.Do(t, hostReq("GET", "/api/steady/x", "other.test", bearer(reader))); resp.Status != http.StatusOK {
			t.Errorf("GET on another host: %d, want 200", resp.Status)
		}
	})

	h.stop(t)
	end := scrapeReloads(t, g)
	// Five good edits and one SIGHUP; one broken edit.
	if d := end.success - start.success; d != 6 {
		t.Errorf("config_reloads_total{result=success} rose by %v over the test, want 6", d)
	}
	if d := end.failure - start.failure; d != 1 {
		t.Errorf("config_reloads_total{result=failure} rose by %v over the test, want 1", d)
	}
}

// TestLiveReloadKubernetesSymlinks runs the gateway on a config mounted the
// way Kubernetes mounts a ConfigMap: gateway.yaml -> ..data/gateway.yaml,
// ..data -> ..2026_v1; an update writes a new timestamped directory, points
// a new symlink at it, renames that over ..data and deletes the old
// directory. Nothing touches gateway.yaml itself.
func TestLiveReloadKubernetesSymlinks(t *testing.T) {
	up := newUpstream(t, 0)
	secret := randomSecret(t)
	dir := t.TempDir()
	g := &Gateway{Addr: freePort(t), AdminAddr: freePort(t), Dir: dir,
		ConfigPath: filepath.Join(dir, "gateway.yaml"),
		env:        processEnv(map[string]string{"ACCESS_SECRET": secret})}

	generation := 0
	swap := func(content string) {
		t.Helper()
		generation++
		ts := fmt.Sprintf("..2026_v%d", generation)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, "gateway.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if generation > 1 {
			if err := os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..2026_v%d", generation-1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap(reloadVersion(reloadV0, g, up))
	if err := os.Symlink(filepath.Join("..data", "gateway.yaml"), g.ConfigPath); err != nil {
		t.Fatal(err)
	}
	launchGateway(t, g)
	reader := g.Token(t, "-sub", "alice", "-roles", "reader")
	auditor := g.Token(t, "-sub", "carol", "-roles", "auditor")

	h := startHammer(4, "http://"+g.Addr+"/api/steady/ping", reader)
	defer h.cancel()

	swap(reloadVersion(reloadV1, g, up))
	pollUntil(t, "route added by a symlink swap answers", statusCond(g, "/reports/a", reader, http.StatusOK))

	swap(reloadVersion(reloadV2, g, up))
	pollUntil(t, "roles changed by a symlink swap", statusCond(g, "/reports/a", reader, http.StatusForbidden))
	wantStatusNow(t, g, "/reports/a", auditor, http.StatusOK)

	broken := reloadVersion(reloadBroken, g, up)
	swap(broken)
	var st readyzState
	pollUntil(t, "/readyz reports the broken swap", func() error {
		if st = getReadyz(t, g); st.LastReloadError == "" {
			return fmt.Errorf("last_reload_error empty")
		}
		return nil
	})
	if wantLoc := fmt.Sprintf("%s:%d:", g.ConfigPath, lineOf(t, broken, brokenLine)); !strings.Contains(st.LastReloadError, wantLoc) {
		t.Errorf("last_reload_error = %q, want it to name %q", st.LastReloadError, wantLoc)
	}
	wantStatusNow(t, g, "/reports/a", reader, http.StatusForbidden)
	wantStatusNow(t, g, "/reports/a", auditor, http.StatusOK)

	fixed := reloadVersion(reloadFixed, g, up)
	swap(fixed)
	pollUntil(t, "fixed config served after a symlink swap", statusCond(g, "/status", "", http.StatusOK))
	if st := getReadyz(t, g); st.LastReloadError != "" || st.ConfigHash != sha256Hex(fixed) {
		t.Errorf("/readyz = %+v, want no error and the hash of the fixed config", st)
	}
	h.stop(t)
}

// launchGateway starts `authgateway serve` on g.ConfigPath as it already is
// on disk (startGateway writes a plain file; this one runs on whatever
// layout the test made) and waits for /healthz.
func launchGateway(t *testing.T, g *Gateway) {
	t.Helper()
	if err := g.launch(t); err != nil {
		t.Fatalf("starting gateway: %v", err)
	}
}
