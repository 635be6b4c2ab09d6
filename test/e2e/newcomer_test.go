package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// What a new user runs into: the shipped config used from another
// directory, a listener change that only a restart applies, and what
// `version` says.

// shippedLayout copies configs/gateway.yaml into a fresh repository-like
// tree (root/configs/gateway.yaml, root/.dev/access-secret) with free ports
// and upstream as its only edits, and returns the root.
func shippedLayout(t *testing.T, upstreamURL string) (root string, g *Gateway) {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "configs", "gateway.yaml"))
	if err != nil {
		t.Fatalf("reading shipped config: %v", err)
	}
	root = t.TempDir()
	g = &Gateway{Addr: freePort(t), AdminAddr: freePort(t), env: processEnv(nil)}
	full, err := withListeners(strings.ReplaceAll(string(cfg), "http://127.0.0.1:9000", upstreamURL), g.Addr, g.AdminAddr)
	if err != nil {
		t.Fatal(err)
	}
	g.ConfigPath = filepath.Join(root, "configs", "gateway.yaml")
	for _, d := range []string{filepath.Dir(g.ConfigPath), filepath.Join(root, ".dev")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(g.ConfigPath, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".dev", "access-secret"), []byte(randomSecret(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return root, g
}

// TestShippedConfigFromAnotherDirectory runs validate, serve, token and
// keys on the shipped config from directories other than the repository
// root, as a unit file or a script would: the secret and the API key file
// are found next to the config, not in the working directory.
func TestShippedConfigFromAnotherDirectory(t *testing.T) {
	up := newUpstream(t, 0)
	root, g := shippedLayout(t, up.URL)
	elsewhere := t.TempDir()

	for _, args := range [][]string{
		{"validate", "-config", g.ConfigPath},
		// A relative -config from a subdirectory of the tree.
		{"validate", "-config", filepath.Join("..", "configs", "gateway.yaml")},
	} {
		dir := elsewhere
		if !filepath.IsAbs(args[2]) {
			dir = filepath.Join(root, "sub")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		res := runCLI(t, dir, nil, args...)
		if res.Code != 0 || !strings.Contains(res.Stdout, ": ok (") {
			t.Fatalf("authgateway %s in %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), dir, res.Code, res.Stdout, res.Stderr)
		}
	}

	g.Dir = elsewhere
	launchGateway(t, g)
	token := g.Token(t, "-sub", "alice", "-roles", "reader")
	if resp := g.Do(t, req("GET", "/api/orders", bearer(token))); resp.Status != http.StatusOK {
		t.Fatalf("token minted from another directory: status %d, want 200 (both read the secret next to the config)", resp.Status)
	}
	up.Reset()

	res := runCLI(t, t.TempDir(), nil, "keys", "create", "-config", g.ConfigPath, "-name", "billing")
	if res.Code != 0 {
		t.Fatalf("keys create: exit %d: %s", res.Code, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(root, ".dev", "api-keys.yaml")); err != nil {
		t.Fatalf("keys create did not write the key file beside the config's tree: %v", err)
	}
	key := strings.TrimSpace(res.Stdout[strings.LastIndex(strings.TrimSpace(res.Stdout), "\n")+1:])
	pollUntil(t, "the new key is accepted", statusCond2(g, "/api/data/x", "X-API-Key: "+key, http.StatusOK))
	if s := up.Requests(); len(s) == 0 || s[len(s)-1].Header.Get("X-Auth-Subject") != "billing" {
		t.Errorf("upstream did not see X-Auth-Subject: billing")
	}
}

// statusCond2 is statusCond with any one request header.
func statusCond2(g *Gateway, target, header string, want int) func() error {
	return func() error {
		resp, err := doRaw(g.Addr, req("GET", target, header))
		if err != nil {
			return err
		}
		if resp.Status != want {
			return fmt.Errorf("GET %s: status %d, want %d", target, resp.Status, want)
		}
		return nil
	}
}

// TestRestartRequired changes server.listen (and a route) in a running
// gateway's file: the route changes at once, the listener cannot, and
// /readyz, the metrics and the log say exactly which key waits for a
// restart. Undoing the listener change clears it.
func TestRestartRequired(t *testing.T) {
	up := newUpstream(t, 0)
	g := startGateway(t, strings.ReplaceAll(reloadV0, "UPSTREAM", up.URL), map[string]string{"ACCESS_SECRET": randomSecret(t)})
	reader := g.Token(t, "-sub", "alice", "-roles", "reader")
	if st := getReadyz(t, g); st.RestartRequired || len(st.RestartKeys) > 0 {
		t.Fatalf("fresh gateway: /readyz says restart_required %v %q", st.RestartRequired, st.RestartKeys)
	}

	moved := strings.Replace(reloadVersion(reloadV1, g, up), `listen: "`+g.Addr+`"`, `listen: "`+freePort(t)+`"`, 1)
	writeAtomic(t, g.ConfigPath, moved)
	pollUntil(t, "the new route answers on the old listener", statusCond(g, "/reports/q1", reader, http.StatusOK))
	st := getReadyz(t, g)
	if st.ConfigHash != sha256Hex(moved) || !st.RestartRequired || !slices.Equal(st.RestartKeys, []string{"server.listen"}) {
		t.Errorf("/readyz = %+v, want config_hash of the new file, restart_required true, restart_keys [server.listen]", st)
	}
	fams, _ := scrapeMetrics(t, g)
	if v := fams.value("authgateway_config_restart_required", nil); v != 1 {
		t.Errorf("authgateway_config_restart_required = %v, want 1", v)
	}
	if v := fams.value("authgateway_config_restart_pending", promLabels("key", "server.listen")); v != 1 {
		t.Errorf(`authgateway_config_restart_pending{key="server.listen"} = %v, want 1`, v)
	}
	// The log is buffered: its line may come a moment later.
	pollUntil(t, "the log names the key", func() error {
		if !regexp.MustCompile(`"msg":"config change needs a restart[^"]*","key":"server.listen"`).MatchString(g.Stdout()) {
			return fmt.Errorf("no warning with key server.listen in the log")
		}
		return nil
	})

	// SIGHUP after an unrelated edit must not forget the pending change.
	writeAtomic(t, g.ConfigPath, moved+"# edited\n")
	g.Signal(t, syscall.SIGHUP)
	pollUntil(t, "the edited file is loaded", func() error {
		if h := getReadyz(t, g).ConfigHash; h != sha256Hex(moved+"# edited\n") {
			return fmt.Errorf("config_hash %s", h)
		}
		return nil
	})
	if st := getReadyz(t, g); !slices.Equal(st.RestartKeys, []string{"server.listen"}) {
		t.Errorf("after a second edit: restart_keys %q, want [server.listen]", st.RestartKeys)
	}

	back := reloadVersion(reloadV1, g, up)
	writeAtomic(t, g.ConfigPath, back)
	pollUntil(t, "restart_required clears", func() error {
		if st := getReadyz(t, g); st.ConfigHash != sha256Hex(back) || st.RestartRequired || len(st.RestartKeys) > 0 {
			return fmt.Errorf("/readyz %+v", st)
		}
		return nil
	})
	fams, _ = scrapeMetrics(t, g)
	if v := fams.value("authgateway_config_restart_required", nil); v != 0 {
		t.Errorf("authgateway_config_restart_required = %v after the revert, want 0", v)
	}
	if keys := fams.labelValues("authgateway_config_restart_pending", "key"); len(keys) > 0 {
		t.Errorf("authgateway_config_restart_pending still has %q after the revert", keys)
	}
}

// TestVersion builds the gateway with a version passed by -ldflags, as
// `make build` and the Dockerfile do, and checks what `version` prints;
// the test binary (built without) says "dev" and the Go version, plus the
// commit when the checkout lets Go stamp it.
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "authgateway")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, "./cmd/authgateway")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if want := "authgateway v9.8.7-test ("; !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), runtime.Version()) {
		t.Errorf("version with -ldflags printed %q, want %q... with %s", out, want, runtime.Version())
	}

	res := runCLI(t, t.TempDir(), nil, "version")
	if !regexp.MustCompile(`^authgateway (dev|v\S+) \((commit [0-9a-f]{40} \S+( \(modified\))?, )?go\S+\)\n$`).MatchString(res.Stdout) {
		t.Errorf("version without -ldflags printed %q", res.Stdout)
	}

	// In a clone (not a git worktree, whose .git is a file Go does not
	// read), Go stamps the commit: it must be HEAD's.
	if fi, err := os.Stat(filepath.Join(repoRoot, ".git")); err != nil || !fi.IsDir() {
		t.Log("not a plain git clone: the commit stamp is not checked here")
		return
	}
	build = exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/authgateway")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	head, err := exec.Command("git", "-C", repoRoot, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	out, err = exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if want := "commit " + strings.TrimSpace(string(head)) + " "; !strings.Contains(string(out), want) {
		t.Errorf("version of a stamped build printed %q, want it to contain %q", out, want)
	}
}

// TestMakeDevSecret runs the Makefile's recipe for the development signing
// secret: 96 hex digits; an empty file left by an older recipe is made
// again rather than "up to date"; and when generating fails (here a `head`
// that prints nothing, as a broken tool would), make fails and leaves no
// file behind.
func TestMakeDevSecret(t *testing.T) {
	makefile, err := filepath.Abs(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, ".dev", "access-secret")
	mk := func(env ...string) ([]byte, error) {
		cmd := exec.Command("make", "-s", "-f", makefile, "-C", dir, ".dev/access-secret")
		cmd.Env = append(os.Environ(), env...)
		return cmd.CombinedOutput()
	}
	hex96 := regexp.MustCompile(`^[0-9a-f]{96}$`)

	if out, err := mk(); err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	first, _ := os.ReadFile(secret)
	if !hex96.Match(first) {
		t.Fatalf("secret is %q, want 96 hex digits", first)
	}
	if out, err := mk(); err != nil || len(out) > 0 {
		t.Errorf("second make: %v %q; want nothing to do", err, out)
	}
	if err := os.WriteFile(secret, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := mk(); err != nil {
		t.Fatalf("make over an empty secret: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(secret); !hex96.Match(again) || string(again) == string(first) {
		t.Errorf("after make over an empty file the secret is %q, want 96 new hex digits", again)
	}

	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "head"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(secret); err != nil {
		t.Fatal(err)
	}
	if out, err := mk("PATH=" + broken + ":" + os.Getenv("PATH")); err == nil {
		t.Errorf("make with a head that prints nothing succeeded:\n%s", out)
	}
	if _, err := os.Stat(secret); !os.IsNotExist(err) {
		t.Errorf("a failed make left %s behind (%v)", secret, err)
	}
	if _, err := os.Stat(secret + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("a failed make left its temporary file behind (%v)", err)
	}
}
