package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// htpasswdLine makes an htpasswd line with the real `authgateway htpasswd`,
// the password on stdin.
func htpasswdLine(t *testing.T, user, pass string, extra ...string) string {
	t.Helper()
	res := runHtpasswd(t, pass+"\n", append([]string{"-user", user}, extra...)...)
	if res.Code != 0 {
		t.Fatalf("authgateway htpasswd -user %s: exit %d: %s", user, res.Code, res.Stderr)
	}
	return strings.TrimSpace(res.Stdout)
}

func runHtpasswd(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append([]string{"htpasswd"}, args...)...)
	cmd.Env = processEnv(nil)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{Stdout: out.String(), Stderr: errb.String()}
	if ee := (*exec.ExitError)(nil); err != nil {
		var ok bool
		if ee, ok = err.(*exec.ExitError); !ok {
			t.Fatalf("running authgateway htpasswd: %v", err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

func basicAuth(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// writeFileAtomic replaces path by rename, as editors and config
// management do.
func writeFileAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// basicConfig is a gateway with the basic strategy "scripts" on /api, and
// [scripts, jwt] on /mixed.
func basicConfig(t *testing.T, htpasswd, upstream string, failureLimit int) string {
	return fmt.Sprintf(`tokens:
  issuer: https://gw.test
  audience: legacy
  signing_keys: [{kid: k1, algorithm: HS256, secret: %q}]
strategies:
  scripts:
    type: basic
    htpasswd_file: %s
    realm: legacy
    roles: [script]
    user_roles: {deploybot: [deployer]}
  jwt:
    type: jwt
    keys: tokens
    issuer: https://gw.test
    audience: legacy
    algorithms: [HS256]
routes:
  - {name: api, path: /api, upstream: %s, strategies: [scripts]}
  - {name: mixed, path: /mixed, upstream: %s, strategies: [scripts, jwt]}
rate_limits:
  auth_failures: {limit: %d, period: 1m}
`, randomSecret(t), htpasswd, upstream, upstream, failureLimit)
}

func TestBasicAuth(t *testing.T) {
	up := newUpstream(t, 0)
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	lines := htpasswdLine(t, "alice", "alice-pw", "-cost", "4") + "\n" + htpasswdLine(t, "deploybot", "bot-pw", "-cost", "4") + "\n"
	if err := os.WriteFile(file, []byte("# scripts\n"+lines), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, basicConfig(t, file, up.URL, 100000), nil)

	ok := []struct {
		name, header, sub, roles string
	}{
		{"alice", basicAuth("alice", "alice-pw"), "alice", "script"},
		{"scheme in lower case", "Authorization: basic " + base64.StdEncoding.EncodeToString([]byte("alice:alice-pw")), "alice", "script"},
		{"scheme in upper case", "Authorization: BASIC " + base64.StdEncoding.EncodeToString([]byte("alice:alice-pw")), "alice", "script"},
		{"user_roles", basicAuth("deploybot", "bot-pw"), "deploybot", "script,deployer"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			up.Reset()
			r := g.Do(t, req("GET", "/api/x", tt.header))
			if r.Status != http.StatusOK {
				t.Fatalf("status %d, want 200 (%s)", r.Status, r.Body)
			}
			s := up.One(t)
			want := map[string]string{"X-Auth-Subject": tt.sub, "X-Auth-Roles": tt.roles, "X-Auth-Strategy": "scripts"}
			if got := authHeaders(s.Header); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("upstream X-Auth headers = %v, want %v", got, want)
			}
			if v := s.Header.Get("Authorization"); v != "" {
				t.Errorf("upstream got Authorization %q: the credential must not be forwarded", v)
			}
		})
	}

	refused := []struct {
		name, reason string
		headers      []string
	}{
		{"wrong password", "wrong_password", []string{basicAuth("alice", "wrong")}},
		{"unknown user", "unknown_user", []string{basicAuth("mallory", "alice-pw")}},
		{"password of another user", "wrong_password", []string{basicAuth("alice", "bot-pw")}},
		{"no colon", "malformed_credentials", []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alicealice-pw"))}},
		{"bad base64", "malformed_credentials", []string{"Authorization: Basic !!not-base64!!"}},
		{"base64url instead of base64", "malformed_credentials", []string{"Authorization: Basic " + base64.URLEncoding.EncodeToString([]byte("alice:\xfb\xff"))}},
		{"empty user and password", "malformed_credentials", []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(":"))}},
		{"empty user", "malformed_credentials", []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(":alice-pw"))}},
		{"scheme only", "malformed_credentials", []string{"Authorization: Basic"}},
		{"scheme and spaces", "malformed_credentials", []string{"Authorization: Basic    "}},
		{"repeated header", "malformed_credentials", []string{basicAuth("alice", "alice-pw"), basicAuth("alice", "alice-pw")}},
		{"empty header", "no_credentials", []string{"Authorization:"}},
		{"another scheme", "no_credentials", []string{"Authorization: Digest username=\"alice\""}},
		{"password over 72 bytes with a right prefix", "wrong_password", []string{basicAuth("alice", "alice-pw"+strings.Repeat("x", 70))}},
	}
	for i, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			up.Reset()
			id := fmt.Sprintf("basic-refused-%d", i)
			r := g.Do(t, req("GET", "/api/x", append(tt.headers, "X-Request-Id: "+id)...))
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (%s)", r.Status, r.Body)
			}
			r.ErrorMessage(t)
			if got := r.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != `Basic realm="legacy"` {
				t.Errorf("WWW-Authenticate = %q, want only Basic realm=\"legacy\"", got)
			}
			up.WantNothing(t)
			if ev := g.Event(t, id); ev["reason"] != tt.reason {
				t.Errorf("auth event reason = %v, want %s", ev["reason"], tt.reason)
			}
		})
	}

	t.Run("explain", func(t *testing.T) {
		for _, tt := range []struct{ header, want string }{
			{basicAuth("alice", "alice-pw"), "scripts      identity"},
			{basicAuth("alice", "wrong"), "invalid (wrong_password)"},
		} {
			res := g.CLI(t, "explain", "-config", g.ConfigPath, "GET", "/api/x", "-H", tt.header)
			if !strings.Contains(res.Stdout, tt.want) || strings.Contains(res.Stdout+res.Stderr, "alice-pw") {
				t.Errorf("explain: exit %d\n%s%s\nwant %q and no password", res.Code, res.Stdout, res.Stderr, tt.want)
			}
		}
	})

	t.Run("basic then jwt", func(t *testing.T) {
		up.Reset()
		if r := g.Do(t, req("GET", "/mixed/x", basicAuth("alice", "alice-pw"))); r.Status != http.StatusOK {
			t.Fatalf("basic on [scripts, jwt]: status %d", r.Status)
		}
		if s := up.One(t); s.Header.Get("X-Auth-Strategy") != "scripts" {
			t.Errorf("X-Auth-Strategy = %q, want scripts", s.Header.Get("X-Auth-Strategy"))
		}
		up.Reset()
		tok := g.Token(t, "-sub", "svc")
		if r := g.Do(t, req("GET", "/mixed/x", bearer(tok))); r.Status != http.StatusOK {
			t.Fatalf("bearer on [scripts, jwt]: status %d", r.Status)
		}
		if s := up.One(t); s.Header.Get("X-Auth-Strategy") != "jwt" || s.Header.Get("Authorization") != "" {
			t.Errorf("X-Auth-Strategy = %q, Authorization %q; want jwt and none", s.Header.Get("X-Auth-Strategy"), s.Header.Get("Authorization"))
		}
		for _, h := range [][]string{nil, {basicAuth("alice", "wrong")}} {
			r := g.Do(t, req("GET", "/mixed/x", h...))
			got := r.Header.Values("WWW-Authenticate")
			if r.Status != http.StatusUnauthorized || len(got) != 2 || got[0] != `Basic realm="legacy"` || !strings.HasPrefix(got[1], `Bearer realm="authgateway"`) {
				t.Errorf("%v: status %d, WWW-Authenticate %q; want 401 with the Basic and the Bearer challenges", h, r.Status, got)
			}
		}
	})

	t.Run("live edits of the htpasswd file", func(t *testing.T) {
		for range 2 { // the second is answered from the cache
			if r := g.Do(t, req("GET", "/api/x", basicAuth("alice", "alice-pw"))); r.Status != http.StatusOK {
				t.Fatalf("before the edit: status %d", r.Status)
			}
		}
		// Password changed, in place: the cached old password is refused
		// on the very next request.
		changed := htpasswdLine(t, "alice", "new-pw", "-cost", "4") + "\n" + htpasswdLine(t, "deploybot", "bot-pw", "-cost", "4") + "\n"
		if err := os.WriteFile(file, []byte(changed), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := g.Do(t, req("GET", "/api/x", basicAuth("alice", "alice-pw"))); r.Status != http.StatusUnauthorized {
			t.Errorf("old password after the change: status %d, want 401", r.Status)
		}
		if r := g.Do(t, req("GET", "/api/x", basicAuth("alice", "new-pw"))); r.Status != http.StatusOK {
			t.Errorf("new password: status %d, want 200", r.Status)
		}
		// User removed, by rename.
		for range 2 {
			if r := g.Do(t, req("GET", "/api/x", basicAuth("deploybot", "bot-pw"))); r.Status != http.StatusOK {
				t.Fatalf("deploybot before removal: status %d", r.Status)
			}
		}
		writeFileAtomic(t, file, htpasswdLine(t, "alice", "new-pw", "-cost", "4")+"\n")
		if r := g.Do(t, req("GET", "/api/x", basicAuth("deploybot", "bot-pw"))); r.Status != http.StatusUnauthorized {
			t.Errorf("removed user: status %d, want 401", r.Status)
		}
		// A line of another hash kind written while serving: fail closed.
		writeFileAtomic(t, file, htpasswdLine(t, "alice", "new-pw", "-cost", "4")+"\nbob:$apr1$abcdefgh$0123456789abcdefghijkl\n")
		if r := g.Do(t, req("GET", "/api/x", basicAuth("alice", "new-pw"))); r.Status == http.StatusOK {
			t.Errorf("with a refused line in the file: status 200, want a refusal")
		}
		poll.True(t, 5*time.Second, "the refused file logged", func() bool {
			return strings.Contains(g.Stdout(), "htpasswd file refused")
		})
		writeFileAtomic(t, file, htpasswdLine(t, "alice", "new-pw", "-cost", "4")+"\n")
		if r := g.Do(t, req("GET", "/api/x", basicAuth("alice", "new-pw"))); r.Status != http.StatusOK {
			t.Errorf("after the fix: status %d, want 200", r.Status)
		}
	})
}

// TestBasicFailureLimit: wrong passwords count toward auth_failures; once
// the address is limited even the right password gets no bcrypt check.
func TestBasicFailureLimit(t *testing.T) {
	up := newUpstream(t, 0)
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(htpasswdLine(t, "alice", "alice-pw", "-cost", "4")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, basicConfig(t, file, up.URL, 3), nil)
	for i := range 3 {
		if r := g.Do(t, req("GET", "/api/x", basicAuth("alice", fmt.Sprint("guess", i)))); r.Status != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i, r.Status)
		}
	}
	for _, h := range []string{basicAuth("alice", "guess-4"), basicAuth("alice", "alice-pw")} {
		if r := g.Do(t, req("GET", "/api/x", h)); r.Status != http.StatusTooManyRequests {
			t.Errorf("after 3 failures: status %d, want 429", r.Status)
		}
	}
	up.WantNothing(t)
}

func TestBasicValidateRefusesOtherHashKinds(t *testing.T) {
	good := htpasswdLine(t, "alice", "alice-pw", "-cost", "4")
	for _, tt := range []struct{ name, line, kind string }{
		{"apr1", "bob:$apr1$abcdefgh$0123456789abcdefghijkl", "MD5 ($apr1$)"},
		{"sha1", "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1 ({SHA})"},
		{"crypt", "bob:abJnggxhB/yWI", "DES crypt or plain text"},
		{"sha512 crypt", "bob:$6$salt$abcdef", "crypt ($6$)"},
		{"plain", "bob:password", "plain text"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "htpasswd")
			if err := os.WriteFile(file, []byte(good+"\n\n"+tt.line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "gateway.yaml")
			if err := os.WriteFile(cfg, []byte(basicConfig(t, "htpasswd", "http://127.0.0.1:1", 10)), 0o600); err != nil {
				t.Fatal(err)
			}
			res := runCLI(t, dir, nil, "validate", "-config", cfg)
			want := file + `:3: user "bob": ` + tt.kind + " hashes are not accepted"
			if res.Code != 1 || !strings.Contains(res.Stdout+res.Stderr, want) {
				t.Errorf("validate: exit %d\n%s%s\nwant exit 1 and %q", res.Code, res.Stdout, res.Stderr, want)
			}
			if strings.Contains(res.Stdout+res.Stderr, "abcdef") || strings.Contains(res.Stdout+res.Stderr, "password") && tt.name == "plain" {
				t.Errorf("validate echoed the hash or password: %s%s", res.Stdout, res.Stderr)
			}
		})
	}
}

func TestHtpasswdCommand(t *testing.T) {
	res := runHtpasswd(t, "s3cret\n", "-user", "deploybot")
	if res.Code != 0 || !regexp.MustCompile(`^deploybot:\$2y\$12\$[./A-Za-z0-9]{53}\n$`).MatchString(res.Stdout) {
		t.Errorf("htpasswd -user deploybot: exit %d, stdout %q; want deploybot:$2y$12$...", res.Code, res.Stdout)
	}
	if strings.Contains(res.Stdout+res.Stderr, "s3cret") {
		t.Errorf("the password was echoed")
	}
	if res := runHtpasswd(t, "s3cret", "-user", "a", "-cost", "5"); res.Code != 0 || !strings.HasPrefix(res.Stdout, "a:$2y$05$") {
		t.Errorf("-cost 5: exit %d, %q", res.Code, res.Stdout)
	}
	for _, tt := range []struct {
		stdin string
		args  []string
		code  int
	}{
		{"pw\n", nil, 2},
		{"pw\n", []string{"-user", "a:b"}, 2},
		{"pw\n", []string{"-user", "a", "-cost", "3"}, 2},
		// A cost the basic strategy would refuse is never printed.
		{"pw\n", []string{"-user", "a", "-cost", "18"}, 2},
		{"\n", []string{"-user", "a"}, 1},
		{strings.Repeat("p", 73) + "\n", []string{"-user", "a"}, 1},
	} {
		if res := runHtpasswd(t, tt.stdin, tt.args...); res.Code != tt.code || res.Stdout != "" {
			t.Errorf("htpasswd %v: exit %d, stdout %q; want exit %d and nothing printed", tt.args, res.Code, res.Stdout, tt.code)
		}
	}
}

// TestBasicAuditAndMetrics: successes and failures of the basic strategy
// reach the audit log and the metrics by strategy and reason, and neither
// holds the password.
func TestBasicAuditAndMetrics(t *testing.T) {
	up := newUpstream(t, 0)
	dir := t.TempDir()
	file, auditFile := filepath.Join(dir, "htpasswd"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(file, []byte(htpasswdLine(t, "alice", "alice-pw", "-cost", "4")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, basicConfig(t, file, up.URL, 100)+"audit: {output: "+auditFile+"}\n", nil)
	for _, h := range []string{basicAuth("alice", "alice-pw"), basicAuth("alice", "wrong-pw"), basicAuth("nobody", "alice-pw")} {
		g.Do(t, req("GET", "/api/x", h))
	}
	poll.Until(t, 5*time.Second, "three audit lines", func() error {
		b, _ := os.ReadFile(auditFile)
		if n := strings.Count(string(b), "\n"); n < 3 {
			return fmt.Errorf("%d lines", n)
		}
		return nil
	})
	b, _ := os.ReadFile(auditFile)
	audit := string(b)
	for _, want := range []string{`"event":"auth.success"`, `"strategy":"scripts"`, `"subject":"alice"`, `"reason":"wrong_password"`, `"reason":"unknown_user"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
	resp, err := http.Get("http://" + g.AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var mb bytes.Buffer
	_, _ = mb.ReadFrom(resp.Body)
	metrics := mb.String()
	for _, want := range []string{
		`authgateway_auth_success_total{route="api",strategy="scripts"} 1`,
		`authgateway_auth_failures_total{reason="wrong_password",route="api"} 1`,
		`authgateway_auth_failures_total{reason="unknown_user",route="api"} 1`,
		`authgateway_cache_requests_total{cache="basic",result="miss"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, out := range []string{audit, metrics, g.Stdout(), g.Stderr()} {
		if strings.Contains(out, "alice-pw") || strings.Contains(out, "wrong-pw") {
			t.Errorf("a password reached the logs or metrics")
		}
	}
}
