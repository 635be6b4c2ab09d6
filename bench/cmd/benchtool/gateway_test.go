package main

import (
	"context"

	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/server"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// recordingUpstream answers 200 and remembers each request's Host (as the
// client sent it: X-Forwarded-Host behind the gateway) and URI.
type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]int
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{seen: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		host := r.Host
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
			host = fh
		}
		u.seen[host+" "+r.URL.RequestURI()]++
		u.mu.Unlock()
	}))
	t.Cleanup(u.Close)
	return u
}

// startGateway writes sc's config (listening on a free port) and serves it
// with the gateway's own server.Build, in process: the code the binary
// runs, so the scenario's credentials are checked against the real thing.
func startGateway(t *testing.T, e *env, sc *scenario) (url, cfgPath string) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	cfgPath, err = e.writeGatewayConfig(context.Background(), sc, listen, t.TempDir())
	if err != nil {
		t.Fatalf("writing config: %v", err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := server.Build(ctx, cfg, slog.New(slog.DiscardHandler), server.WithEventLog(discard{}))
	if err != nil {
		cancel()
		t.Fatalf("server.Build: %v", err)
	}
	if err := app.Start(ctx); err != nil {
		cancel()
		app.Close()
		t.Fatalf("Start: %v", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		cancel()
		app.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		cancel()
		app.Close()
	})
	return "http://" + listen, cfgPath
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestLoginSessionsRefresh logs sessions in through the real flow at the
// in-process gateway and the real OP, checks each one is served, then lets
// their access tokens come within refresh_before of expiry: the browser
// generator is served, gets rotated cookies and keeps them, and the kept
// session goes on working while the rotated-away access token is replaced.
func TestLoginSessionsRefresh(t *testing.T) {
	for _, onRedis := range []bool{false, true} {
		t.Run("redis="+strconv.FormatBool(onRedis), func(t *testing.T) { loginSessionsRefresh(t, onRedis) })
	}
}

func loginSessionsRefresh(t *testing.T, onRedis bool) {
	e := newEnv(t)
	if onRedis {
		e.redisSingle = &redisDeploy{url: redistest.Start(t).URL()}
	}
	up := newRecordingUpstream(t)
	e.upstream = up.URL
	// The bench scenario with tokens that need renewing 100 ms after login.
	sc := loginScenario("t", 5, "2s", "1900ms", onRedis)
	gw, cfgPath := startGateway(t, e, sc)
	c, err := sc.login(context.Background(), e, gw, cfgPath)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if c.header != "Cookie" || len(c.values) != 5 {
		t.Fatalf("header %q, %d sessions; want Cookie, 5", c.header, len(c.values))
	}
	for i, v := range c.values {
		if !strings.Contains(v, sessionCookie+"=") || !strings.Contains(v, refreshCookie+"=") {
			t.Fatalf("session %d: cookie header lacks the access or refresh cookie", i)
		}
	}
	g := &generator{url: gw + pathAPI, header: c.header, values: slices.Clone(c.values), mode: credBrowser,
		file: filepath.Join(t.TempDir(), "jar"), client: newLoadClient(2)}
	time.Sleep(200 * time.Millisecond)
	if err := checkCreds(context.Background(), g, 0); err != nil {
		t.Fatalf("sessions near expiry: %v", err)
	}
	for i := range c.values {
		if g.values[i] == c.values[i] {
			t.Errorf("session %d: cookies unchanged; want the rotated session kept", i)
		}
	}
	// The kept (rotated) sessions are served again, and saved for the next run.
	if err := checkCreds(context.Background(), g, 0); err != nil {
		t.Fatalf("rotated sessions: %v", err)
	}
	if err := g.save(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(g.file)
	if err != nil || strings.Count(string(b), "\n") != len(c.values) {
		t.Fatalf("saved jar: %d lines, %v; want %d", strings.Count(string(b), "\n"), err, len(c.values))
	}
	// A session that is not one: refused, so the harness's check would fail.
	forged := &generator{url: gw + pathAPI, header: "Cookie", values: []string{sessionCookie + "=x.y.z"}, client: newLoadClient(1)}
	if err := checkCreds(context.Background(), forged, 0); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("forged session: %v; want status 401", err)
	}
	if err := forged.prime(context.Background(), 0, 1); err == nil || !strings.Contains(err.Error(), "1 answered other than 2xx") {
		t.Fatalf("prime of a forged session: %v; want its refusal reported", err)
	}
	if err := forged.prime(context.Background(), time.Second, 1); err == nil {
		t.Fatal("prime spread over credentials that are not browser sessions: no error")
	}
}

// TestPrimeRenewsSessions: prime renews every session once, spread over
// its duration, even sessions whose access tokens outlive the run (each
// request carried only the refresh cookie): each holds a fresh pair of
// cookies after, and is served.
func TestPrimeRenewsSessions(t *testing.T) {
	e := newEnv(t)
	e.upstream = newRecordingUpstream(t).URL
	sc := loginScenario("t", 5, "", "", false)
	gw, cfgPath := startGateway(t, e, sc)
	c, err := sc.login(context.Background(), e, gw, cfgPath)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	g := &generator{url: gw + pathAPI, header: c.header, values: slices.Clone(c.values), mode: credBrowser, client: newLoadClient(2)}
	start := time.Now()
	if err := g.prime(context.Background(), 400*time.Millisecond, 2); err != nil {
		t.Fatalf("prime: %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("prime over 400ms of 5 sessions took %v; want the last one sent at 4/5 of it", took)
	}
	for i := range c.values {
		if g.values[i] == c.values[i] || !strings.Contains(g.values[i], sessionCookie+"=") || !strings.Contains(g.values[i], refreshCookie+"=") {
			t.Errorf("session %d after prime: not rotated into a new access and refresh cookie", i)
		}
	}
	if err := checkCreds(context.Background(), g, 0); err != nil {
		t.Fatalf("primed sessions: %v", err)
	}
	// all: each sent once as it is; nothing to renew.
	renewed := slices.Clone(g.values)
	if err := g.prime(context.Background(), 0, 2); err != nil {
		t.Fatalf("prime all: %v", err)
	}
	if !slices.Equal(g.values, renewed) {
		t.Error("prime all renewed sessions whose access tokens are fresh")
	}
}

func TestSessionRefreshesCounter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# HELP x\nauthgateway_session_events_total{event=\"grace\"} 3\n" +
			"authgateway_session_events_total{event=\"refresh\"} 40\nauthgateway_session_events_total{event=\"reuse\"} 7\n"))
	}))
	defer srv.Close()
	if got := sessionRefreshes(srv.URL); got != 43 {
		t.Fatalf("refreshes = %d; want 43 (refresh + grace, not reuse)", got)
	}
}

func TestOnlyCookie(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a=1; " + refreshCookie + "=r; c=3", refreshCookie + "=r"},
		{refreshCookie + "=r", refreshCookie + "=r"},
		{"a=1; b=2", "a=1; b=2"}, // no refresh cookie: left as it is
	} {
		if got := onlyCookie(c.in, refreshCookie); got != c.want {
			t.Errorf("onlyCookie(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestPrimeFlags(t *testing.T) {
	var p primeFlags
	for _, v := range []string{"a=all", "b=4s"} {
		if err := p.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if p["a"] != 0 || p["b"] != 4*time.Second || len(p) != 2 {
		t.Fatalf("prime flags = %v", p)
	}
	for _, bad := range []string{"a", "=all", "a=", "a=-1s", "a=some"} {
		if err := p.Set(bad); err == nil {
			t.Errorf("-prime %q accepted", bad)
		}
	}
}

func TestMergeCookies(t *testing.T) {
	got := mergeCookies("a=1; b=2; c=3", []*http.Cookie{{Name: "b", Value: "20"}, {Name: "c", Value: "", MaxAge: -1}})
	if want := "a=1; b=20"; got != want {
		t.Fatalf("mergeCookies = %q; want %q", got, want)
	}
}

// TestScaleRoutes serves the 10,000-route config with the real gateway and
// sends a sample of the rotating Host + path pairs through the generator's
// paths mode: each reaches the upstream as sent; a host without routes
// gets no route.
func TestScaleRoutes(t *testing.T) {
	e := newEnv(t)
	up := newRecordingUpstream(t)
	e.upstream = up.URL
	sc := findScenario("gw-scale-routes")
	gw, cfgPath := startGateway(t, e, sc)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(cfg.Routes), 1+scaleHosts*scaleRoutesPerHost; got != want {
		t.Fatalf("%d routes; want %d (public + the scale routes)", got, want)
	}
	c, err := sc.creds(context.Background(), e, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	g := &generator{url: gw + sc.path, header: c.header, values: c.values, mode: sc.credMode, client: newLoadClient(4)}
	if err := checkCreds(context.Background(), g, 500); err != nil {
		t.Fatal(err)
	}
	up.mu.Lock()
	n := len(up.seen)
	_, ok := up.seen[scaleHost(0)+" /svc-a/items?page=2"]
	up.mu.Unlock()
	if n < 500 || !ok {
		t.Fatalf("upstream saw %d distinct host+path (first one seen: %t); want ≥ 500 and the first", n, ok)
	}
	g.values = []string{"/svc-a/items h-99999.bench.test"}
	if err := checkCreds(context.Background(), g, 0); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Fatalf("unrouted host: %v; want status 404", err)
	}
}

// TestScaleAPIKeys seeds the 100,000 keys into a real redis-server and
// checks a sample of the rotating ones with the gateway's own Verifier.
func TestScaleAPIKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 keys")
	}
	srv := redistest.Start(t)
	e := newEnv(t)
	e.redisSingle = &redisDeploy{url: srv.URL()}
	_, c := scenarioCreds(t, e, "gw-scale-apikeys-redis")
	if got, want := len(c.values), scaleKeysRotating; got != want {
		t.Fatalf("%d rotating keys; want %d", got, want)
	}
	rc, err := redisconn.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	store := apikey.NewRedisStore(rc, scaleKeyStrategy, slog.New(slog.DiscardHandler))
	all, err := store.List(context.Background())
	if err != nil || len(all) != scaleKeys {
		t.Fatalf("redis holds %d keys (%v); want %d", len(all), err, scaleKeys)
	}
	v, err := apikey.NewVerifier(store, apikey.VerifierOptions{Prefixes: []string{benchKeyPrefix}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(c.values); i += 997 {
		if _, err := v.Verify(context.Background(), c.values[i]); err != nil {
			t.Fatalf("rotating key %d: %v", i, err)
		}
	}
}

// TestRotateLuaPaths runs wrk with rotate.lua in paths mode: Host and path
// both rotate through the lines.
func TestRotateLuaPaths(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk not installed")
	}
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	script, creds := filepath.Join(dir, "rotate.lua"), filepath.Join(dir, "creds")
	lines := "/x/1 h-1.test\n/y/2 h-2.test\n/z/3?q=1 h-3.test\n"
	for _, f := range []struct{ path, body string }{{script, string(rotateLua)}, {creds, lines}} {
		if err := os.WriteFile(f.path, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := runWrk(context.Background(), wrkArgs{url: up.URL, path: "/unused", header: "Host", credsFile: creds,
		mode: credPaths, conns: 1, duration: time.Second, script: script})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.errors() != 0 {
		t.Fatalf("wrk: %d requests, %d errors", r.Requests, r.errors())
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, want := range []string{"h-1.test /x/1", "h-2.test /y/2", "h-3.test /z/3?q=1"} {
		if up.seen[want] == 0 {
			t.Errorf("upstream never saw %q (saw %v)", want, keys(up.seen))
		}
	}
	if len(up.seen) != 3 {
		t.Errorf("upstream saw %v; want the three lines only", keys(up.seen))
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestTogetherGroups: each group carries only the baselines its gateway
// scenarios name, scenarios of one baseline share groups, none is left out.
func TestTogetherGroups(t *testing.T) {
	mk := func(name, kind, baseline string) *target {
		return &target{sc: &scenario{name: name, target: kind, baseline: baseline}}
	}
	ts := []*target{mk("bare-proxy", targetBare, ""), mk("bare-proxy-bearer", targetBare, ""),
		mk("a", targetGateway, "bare-proxy-bearer"), mk("b", targetGateway, ""), mk("c", targetGateway, "bare-proxy-bearer"),
		mk("d", targetGateway, "bare-proxy-bearer"), mk("e", targetGateway, "bare-proxy-bearer")}
	var got []string
	for _, g := range togetherGroups(ts) {
		var names []string
		for _, t := range g {
			names = append(names, t.sc.name)
		}
		got = append(got, strings.Join(names, " "))
	}
	want := []string{"bare-proxy b", "bare-proxy-bearer a c d", "bare-proxy-bearer e"}
	if !slices.Equal(got, want) {
		t.Fatalf("groups %q; want %q", got, want)
	}
	if togetherGroups(ts[:1]) != nil {
		t.Error("one bare target alone: want no group")
	}
}
