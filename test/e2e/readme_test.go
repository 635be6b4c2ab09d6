package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README's shell examples are run here as printed, on the shipped
// configs/gateway.yaml, with only the addresses and the binary's path
// substituted, so a reader copying them gets what the comments promise.

// readmeBlock returns the first ```sh block of the README section titled
// heading that contains marker.
func readmeBlock(t *testing.T, heading, marker string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatalf("reading README: %v", err)
	}
	_, section, ok := strings.Cut(string(data), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README has no section %q", heading)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "```sh\n")
		if !ok {
			break
		}
		block, tail, ok := strings.Cut(after, "```")
		if !ok {
			break
		}
		if strings.Contains(block, marker) {
			return block
		}
		rest = tail
	}
	t.Fatalf("README section %q has no sh block containing %q", heading, marker)
	return ""
}

// startShippedGateway runs the gateway on configs/gateway.yaml as shipped,
// but with free ports and the given upstream, in a fresh working directory
// (so .dev/ is the test's own) with a random signing secret. Each edit
// replaces the one occurrence of its first string with its second.
func startShippedGateway(t *testing.T, upstreamURL string, edits ...[2]string) *Gateway {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "configs", "gateway.yaml"))
	if err != nil {
		t.Fatalf("reading shipped config: %v", err)
	}
	if !bytes.Contains(cfg, []byte("http://127.0.0.1:9000")) {
		t.Fatal("configs/gateway.yaml no longer points at the demo upstream on 127.0.0.1:9000")
	}
	cfg = bytes.ReplaceAll(cfg, []byte("http://127.0.0.1:9000"), []byte(upstreamURL))
	for _, e := range edits {
		if n := bytes.Count(cfg, []byte(e[0])); n != 1 {
			t.Fatalf("configs/gateway.yaml holds %q %d times, want once", e[0], n)
		}
		cfg = bytes.Replace(cfg, []byte(e[0]), []byte(e[1]), 1)
	}
	secret := filepath.Join(t.TempDir(), "access-secret")
	if err := os.WriteFile(secret, []byte(randomSecret(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, string(cfg), map[string]string{"ACCESS_SECRET_FILE": secret})
}

// runReadmeScript runs a README block with bash in the gateway's working
// directory: localhost:8080 and :9090 become the gateway's addresses and
// ./bin/authgateway the test's binary, on the gateway's config.
func runReadmeScript(t *testing.T, g *Gateway, block string) string {
	t.Helper()
	script := strings.NewReplacer(
		"localhost:8080", g.Addr,
		"localhost:9090", g.AdminAddr,
		"./bin/authgateway", `"$AUTHGATEWAY_BIN"`,
	).Replace(block)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = g.Dir
	cmd.Env = append(g.env, "AUTHGATEWAY_BIN="+binPath, "AUTHGATEWAY_CONFIG="+g.ConfigPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("README script failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", err, script, stdout.String(), stderr.String())
	}
	return stdout.String()
}

var statusLine = regexp.MustCompile(`(?m)^HTTP/1\.1 (\d{3}) `)

func TestReadmeQuickStart(t *testing.T) {
	up := newUpstream(t, 0)
	g := startShippedGateway(t, up.URL)
	out := runReadmeScript(t, g, readmeBlock(t, "Quick start", "curl"))

	// The -si calls, in order: no token, alice on admin, the two path tricks.
	var got []string
	for _, m := range statusLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1])
	}
	if want := []string{"401", "403", "400", "403"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("status lines %q, want %q\noutput:\n%s", got, want, out)
	}
	if !strings.Contains(strings.ToLower(out), "www-authenticate: bearer") {
		t.Errorf("the 401 has no WWW-Authenticate: Bearer challenge\noutput:\n%s", out)
	}
	if !strings.Contains(out, `{"status":"ok"}`) || !strings.Contains(out, `{"status":"ready"`) {
		t.Errorf("healthz/readyz output missing\noutput:\n%s", out)
	}

	// Exactly three requests reach the upstream: the public route, alice on
	// /api/orders and root on the admin route.
	seen := up.Requests()
	if len(seen) != 3 {
		t.Fatalf("upstream saw %d requests, want 3 (public, alice, admin)\noutput:\n%s", len(seen), out)
	}
	if s := seen[0]; s.RequestURI != "/hello" || s.Header.Get("X-Auth-Roles") != "" || s.Header.Get("X-Auth-Subject") != "" {
		t.Errorf("public route: upstream saw %s with X-Auth-Roles %q, X-Auth-Subject %q; want /hello with no identity headers",
			s.RequestURI, s.Header.Get("X-Auth-Roles"), s.Header.Get("X-Auth-Subject"))
	}
	if s := seen[1]; s.RequestURI != "/api/orders" || s.Header.Get("X-Auth-Subject") != "alice" ||
		s.Header.Get("X-Auth-Email") != "alice@example.com" || s.Header.Get("X-Auth-Roles") != "reader" || s.Header.Get("Authorization") != "" {
		t.Errorf("alice: upstream saw %s with headers %v", s.RequestURI, s.Header)
	}
	if s := seen[2]; s.RequestURI != "/api/admin/users" || s.Header.Get("X-Auth-Subject") != "root" || s.Header.Get("X-Auth-Roles") != "admin" {
		t.Errorf("admin: upstream saw %s with headers %v", s.RequestURI, s.Header)
	}
}

// TestReadmeAPIKeys runs the API-key walkthrough twice on one keys file, as
// a reader trying it again would: the second run must revoke its own key,
// not an older one with the same name.
func TestReadmeAPIKeys(t *testing.T) {
	up := newUpstream(t, 0)
	g := startShippedGateway(t, up.URL)
	block := readmeBlock(t, "API keys", "keys create")
	for run := 1; run <= 2; run++ {
		up.Reset()
		out := runReadmeScript(t, g, block)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if last := lines[len(lines)-1]; last != "401" {
			t.Errorf("run %d: the request after the revocation got %s, want 401\noutput:\n%s", run, last, out)
		}
		s := up.One(t)
		if s.RequestURI != "/api/data/invoices" || s.Header.Get("X-Auth-Subject") != "billing" || s.Header.Get("X-Api-Key") != "" {
			t.Errorf("run %d: upstream saw %s with X-Auth-Subject %q and X-API-Key %q; want billing and no key",
				run, s.RequestURI, s.Header.Get("X-Auth-Subject"), s.Header.Get("X-Api-Key"))
		}
		if !strings.Contains(out, "revoked key ") {
			t.Errorf("run %d: no revocation in the output\n%s", run, out)
		}
	}
	// Every key the two runs created by name: two issued, two from rotation;
	// the two issued ones are revoked, the rotated-in ones are active.
	list := runReadmeScript(t, g, "./bin/authgateway keys list\n")
	var revoked, active int
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[1] == "billing" {
			switch f[5] {
			case "revoked":
				revoked++
			case "active":
				active++
			}
		}
	}
	if revoked != 2 || active != 2 {
		t.Errorf("after two runs: %d revoked and %d active billing keys, want 2 and 2\n%s", revoked, active, list)
	}
}
