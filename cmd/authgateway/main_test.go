package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// timeDependent matches the answer headers that count seconds to the end of
// a window, which depend on when the test runs.
var timeDependent = regexp.MustCompile(`(?m)^(  (?:Ratelimit-Reset|Retry-After):) \d+$`)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func testSecret(t *testing.T) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	t.Setenv("TEST_SECRET", hex.EncodeToString(b))
}

func mint(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"token", "-config", "testdata/explain.yaml"}, args...)...)
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

func TestExplainGolden(t *testing.T) {
	testSecret(t)
	reader := mint(t, "-sub", "bob", "-roles", "reader")
	admin := mint(t, "-sub", "ann", "-email", "ann@example.com", "-roles", "admin,ops")
	tests := []struct {
		name string
		args []string
	}{
		{"reader_dotted_path_into_admin", []string{"GET", "https://gw.example.com/api/x/../%61dmin/users?page=2", "-H", "Authorization: Bearer " + reader, "-H", "X-Auth-Roles: admin"}},
		{"admin_allowed", []string{"GET", "/api/admin/users", "-H", "Authorization: Bearer " + admin, "-H", "Connection: X-Auth-Subject"}},
		{"encoded_slash", []string{"GET", "/api%2Fadmin"}},
		{"no_token", []string{"GET", "/api/orders"}},
		{"expired_or_garbage_token", []string{"GET", "/api/orders", "-H", "Authorization: Bearer abc.def.ghi"}},
		{"method_not_allowed", []string{"POST", "/api/orders", "-H", "Authorization: Bearer " + reader}},
		{"quota_route", []string{"GET", "/api/orders", "-H", "Authorization: Bearer " + reader}},
		{"public", []string{"GET", "/docs/intro", "-H", "X-Auth-Subject: root"}},
		{"no_route", []string{"GET", "/elsewhere"}},
		{"json", []string{"GET", "/api/admin", "-json", "-H", "Authorization: Bearer " + reader}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, append([]string{"explain", "-config", "testdata/explain.yaml"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if strings.Contains(out, reader) || strings.Contains(out, admin) {
				t.Fatal("explain printed a token")
			}
			out = timeDependent.ReplaceAllString(out, "$1 N")
			golden := filepath.Join("testdata", "explain", tt.name+".golden")
			if *update {
				_ = os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden (run with -update): %v", err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", golden, out, want)
			}
		})
	}
}

func TestExplainUsage(t *testing.T) {
	if _, _, code := runCLI(t, "explain", "GET"); code != exitUsage {
		t.Errorf("explain with one argument: exit %d, want 2", code)
	}
	if _, _, code := runCLI(t, "explain", "GET", "/", "-H", "novalue"); code != exitUsage {
		t.Errorf("bad -H: exit %d, want 2", code)
	}
}

func TestCLIBasics(t *testing.T) {
	testSecret(t)
	if out, _, code := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "authgateway ") {
		t.Errorf("version: %q %d", out, code)
	}
	if _, _, code := runCLI(t, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if _, _, code := runCLI(t, "token", "-config", "testdata/explain.yaml"); code != exitUsage {
		t.Errorf("token without -sub: exit %d, want 2", code)
	}
	if _, errOut, code := runCLI(t, "token", "-config", "testdata/explain.yaml", "-sub", "x", "-ttl", "1h"); code != exitUsage || !strings.Contains(errOut, "longer than") {
		t.Errorf("token -ttl over access_ttl: exit %d %q", code, errOut)
	}
	// Flags after positional arguments.
	if _, errOut, code := runCLI(t, "explain", "GET", "/docs", "-config", "testdata/explain.yaml"); code != 0 {
		t.Errorf("flags after positionals: exit %d %s", code, errOut)
	}
	if out, _, code := runCLI(t, "validate", "-config", "testdata/explain.yaml"); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("validate good config: %q %d", out, code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("routes:\n  - {path: /a, upstream: \"http://x\", strategies: [nope]}\n  - {path: /b}\nservr: {}\n"), 0o600)
	out, _, code := runCLI(t, "validate", "-config", bad)
	if code != exitFailure {
		t.Errorf("validate bad config: exit %d", code)
	}
	for _, want := range []string{bad + ":2: routes[0].strategies[0]: unknown strategy \"nope\"", bad + ":3: routes[1].upstream: required", bad + ":4: servr: unknown key"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}
