// Package e2e drives the real authgateway binary over real HTTP: it builds
// the binary once, starts it on a temporary config per test, puts a
// recording upstream behind it and talks to it with raw request lines where
// Go's client would clean the path.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/authgateway/authgateway/internal/testutil/gwbin"
	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// binPath is the authgateway binary built by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// E2E_RACE=1 builds the gateway with the race detector, so that races
	// in the serving path show up under real traffic.
	bin, cleanup, err := gwbin.Build(os.Getenv("E2E_RACE") == "1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer cleanup()
	binPath = bin
	return m.Run()
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer = gwbin.SyncBuffer

// Gateway is one running authgateway process.
type Gateway struct {
	Addr       string // main listener, host:port
	AdminAddr  string
	ConfigPath string
	Dir        string // working directory of the process

	env    []string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // cmd.Wait's result, valid after done is closed
}

// Stdout is what the gateway logged so far (its structured log).
func (g *Gateway) Stdout() string { return g.stdout.String() }

// Stderr is what the gateway printed on stderr so far.
func (g *Gateway) Stderr() string { return g.stderr.String() }

// Signal sends sig to the gateway process.
func (g *Gateway) Signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling gateway: %v", err)
	}
}

// Wait waits up to d for the process to exit and returns its exit code.
func (g *Gateway) Wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-g.done:
	case <-time.After(d):
		t.Fatalf("gateway did not exit within %s\nstdout:\n%s\nstderr:\n%s", d, g.Stdout(), g.Stderr())
	}
	var ee *exec.ExitError
	if errors.As(g.err, &ee) {
		return ee.ExitCode()
	}
	if g.err != nil {
		t.Fatalf("waiting for gateway: %v", g.err)
	}
	return 0
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// withListeners sets server.listen and server.admin_listen in a YAML config,
// keeping everything else as written.
func withListeners(cfg, listen, admin string) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		return "", fmt.Errorf("parsing test config: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return "", errors.New("test config is not a mapping")
	}
	root := doc.Content[0]
	var server *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "server" {
			server = root.Content[i+1]
		}
	}
	if server == nil {
		server = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		root.Content = append([]*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "server"}, server}, root.Content...)
	}
	set := func(key, val string) {
		for i := 0; i+1 < len(server.Content); i += 2 {
			if server.Content[i].Value == key {
				server.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
				return
			}
		}
		server.Content = append(server.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val})
	}
	set("listen", listen)
	set("admin_listen", admin)
	out, err := yaml.Marshal(&doc)
	return string(out), err
}

// processEnv is the environment of a child process: the test's own, minus
// anything that could configure the gateway behind the test's back, plus env.
func processEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AUTHGATEWAY_") || name == "REDIS_URL" || strings.HasSuffix(name, "_SECRET") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// startGateway writes cfg (with free loopback ports filled in) to a temp
// file, starts `authgateway serve` on it and waits for /healthz. The process
// is killed when the test ends; its logs are printed if the test failed.
func startGateway(t *testing.T, cfg string, env map[string]string) *Gateway {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		g, err := tryStart(t, cfg, env)
		if err == nil {
			return g
		}
		lastErr = err
		// Another process may have taken a port between freePort and the
		// gateway's listen: try again with new ports.
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("starting gateway: %v", lastErr)
	return nil
}

func tryStart(t *testing.T, cfg string, env map[string]string) (*Gateway, error) {
	dir := t.TempDir()
	g := &Gateway{Addr: freePort(t), AdminAddr: freePort(t), Dir: dir, env: processEnv(env)}
	full, err := withListeners(cfg, g.Addr, g.AdminAddr)
	if err != nil {
		return nil, err
	}
	g.ConfigPath = filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(g.ConfigPath, []byte(full), 0o600); err != nil {
		return nil, err
	}
	if err := g.launch(t); err != nil {
		return nil, err
	}
	return g, nil
}

// launch starts `authgateway serve` on g.ConfigPath as it is on disk, kills
// it when the test ends (printing its logs if the test failed) and waits
// for /healthz.
func (g *Gateway) launch(t *testing.T) error {
	g.stdout, g.stderr, g.done = &syncBuffer{}, &syncBuffer{}, make(chan struct{})
	g.cmd = exec.Command(binPath, "serve", "-config", g.ConfigPath)
	g.cmd.Dir, g.cmd.Env = g.Dir, g.env
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	if err := g.cmd.Start(); err != nil {
		return err
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			_ = g.cmd.Process.Kill()
			<-g.done
		}
		// With E2E_RACE=1 the race detector reports on stderr.
		if strings.Contains(g.Stderr(), "WARNING: DATA RACE") {
			t.Errorf("the gateway reported a data race")
		}
		if t.Failed() {
			t.Logf("gateway stdout:\n%s\ngateway stderr:\n%s", g.Stdout(), g.Stderr())
		}
	})
	client := &http.Client{Timeout: time.Second}
	exited := false
	_, err := poll.Wait(15*time.Second, func() error {
		select {
		case <-g.done:
			exited = true
			return nil
		default:
		}
		resp, err := client.Get("http://" + g.AdminAddr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz answered %d", resp.StatusCode)
		}
		return nil
	})
	switch {
	case exited:
		return fmt.Errorf("gateway exited during startup (%v)\nstdout:\n%s\nstderr:\n%s", g.err, g.Stdout(), g.Stderr())
	case err != nil:
		return fmt.Errorf("gateway not healthy: %w\nstdout:\n%s\nstderr:\n%s", err, g.Stdout(), g.Stderr())
	}
	return nil
}

// cliResult is the outcome of one CLI invocation.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// runCLI runs the authgateway binary with args in dir and env.
func runCLI(t *testing.T, dir string, env map[string]string, args ...string) cliResult {
	t.Helper()
	return runCLIEnv(t, dir, processEnv(env), args...)
}

// CLI runs the authgateway binary with args as the gateway runs: in its
// directory and environment.
func (g *Gateway) CLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLIEnv(t, g.Dir, g.env, args...)
}

// runCLIEnv runs the authgateway binary with args in dir and exactly the
// environment env.
func runCLIEnv(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running authgateway %v: %v", args, err)
	}
	return res
}

// Token mints an access token with the real CLI on the gateway's config,
// e.g. g.Token(t, "-sub", "alice", "-roles", "reader").
func (g *Gateway) Token(t *testing.T, args ...string) string {
	t.Helper()
	res := g.CLI(t, append([]string{"token", "-config", g.ConfigPath}, args...)...)
	if res.Code != 0 {
		t.Fatalf("authgateway token %v: exit %d\n%s", args, res.Code, res.Stderr)
	}
	tok := strings.TrimSpace(res.Stdout)
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("authgateway token printed %q, want a JWT", tok)
	}
	return tok
}

// Seen is one request as the upstream received it.
type Seen struct {
	Method     string
	RequestURI string // exactly as received on the wire
	Host       string
	Header     http.Header
	Trailer    http.Header
	Body       string
}

// Upstream is a recording httptest server standing in for a service.
type Upstream struct {
	*httptest.Server
	Delay time.Duration // how long each request takes to answer

	mu      sync.Mutex
	seen    []Seen
	arrived chan struct{}
}

// newUpstream starts a recording upstream whose answers take delay.
func newUpstream(t *testing.T, delay time.Duration) *Upstream {
	t.Helper()
	u := &Upstream{Delay: delay, arrived: make(chan struct{}, 64)}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Server.Close)
	return u
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // reading to EOF also fills r.Trailer
	u.mu.Lock()
	u.seen = append(u.seen, Seen{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host,
		Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), Body: string(body)})
	u.mu.Unlock()
	select {
	case u.arrived <- struct{}{}:
	default:
	}
	if u.Delay > 0 {
		select {
		case <-time.After(u.Delay):
		case <-r.Context().Done(): // the gateway gave up
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Upstream", "recorder")
	io.WriteString(w, "upstream ok\n")
}

// Requests returns what the upstream has received so far.
func (u *Upstream) Requests() []Seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Seen(nil), u.seen...)
}

// Reset forgets the recorded requests.
func (u *Upstream) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen = nil
}

// WantNothing fails the test if the upstream received any request.
func (u *Upstream) WantNothing(t *testing.T) {
	t.Helper()
	if got := u.Requests(); len(got) > 0 {
		t.Errorf("upstream received %d request(s), want none; first: %s %s", len(got), got[0].Method, got[0].RequestURI)
	}
}

// One returns the single request the upstream received, failing otherwise.
func (u *Upstream) One(t *testing.T) Seen {
	t.Helper()
	got := u.Requests()
	if len(got) != 1 {
		var uris []string
		for _, s := range got {
			uris = append(uris, s.Method+" "+s.RequestURI)
		}
		t.Fatalf("upstream received %d request(s) %q, want exactly one", len(got), uris)
	}
	return got[0]
}

// Response is a response read off a raw connection.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrorMessage decodes the gateway's JSON error body, failing the test if the
// response is not one.
func (r *Response) ErrorMessage(t *testing.T) string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json (body %q)", ct, r.Body)
	}
	var body struct {
		Error string `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error == "" {
		t.Errorf("body %q is not {\"error\": \"...\"}: %v", r.Body, err)
	}
	return body.Error
}

// rawRequest writes raw to a new connection to addr byte for byte and reads
// one response. Nothing cleans or re-encodes the request-target.
func rawRequest(t *testing.T, addr, raw string) *Response {
	t.Helper()
	resp, err := doRaw(addr, raw)
	if err != nil {
		t.Fatalf("%q: %v", firstLine(raw), err)
	}
	return resp
}

// doRaw is rawRequest for goroutines other than the test's: it returns the
// error instead of failing the test.
func doRaw(addr, raw string) (*Response, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	defer conn.Close()
	return exchange(conn, raw)
}

func firstLine(raw string) string {
	line, _, _ := strings.Cut(raw, "\r\n")
	return line
}

// req builds a raw HTTP/1.1 request with a Host header, Connection: close
// and the given extra header lines ("Name: value").
func req(method, target string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// bearer is an Authorization header line.
func bearer(tok string) string { return "Authorization: Bearer " + tok }

// Do sends a raw request to the gateway's main listener.
func (g *Gateway) Do(t *testing.T, raw string) *Response {
	t.Helper()
	return rawRequest(t, g.Addr, raw)
}

// authEvents parses the gateway's JSON log and returns its auth events.
func (g *Gateway) authEvents(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(g.Stdout(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if ev["msg"] == "auth" {
			out = append(out, ev)
		}
	}
	return out
}

// Event waits for the one auth event of the request with X-Request-Id id.
// The event is logged after the response is written, so it may lag a little.
func (g *Gateway) Event(t *testing.T, id string) map[string]any {
	t.Helper()
	var found []map[string]any
	poll.Until(t, 5*time.Second, "auth event for request "+id, func() error {
		found = nil
		for _, ev := range g.authEvents(t) {
			if ev["request_id"] == id {
				found = append(found, ev)
			}
		}
		if len(found) == 0 {
			return errors.New("none in the log")
		}
		return nil
	})
	if len(found) > 1 {
		t.Fatalf("%d auth events for request %s, want one: %v", len(found), id, found)
	}
	return found[0]
}

// randomSecret returns a fresh 64-character HMAC secret: the tests generate
// every secret and key they use, nothing is committed.
func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// identityHeaderName reports whether a header name is one of the gateway's
// own (X-Auth-*, in any case, also spelt with underscores).
func identityHeaderName(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	return strings.HasPrefix(n, "x-auth-")
}

// authHeaders returns the X-Auth-* headers of h, name -> joined values.
func authHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for name, vals := range h {
		if identityHeaderName(name) {
			out[name] = strings.Join(vals, " | ")
		}
	}
	return out
}
