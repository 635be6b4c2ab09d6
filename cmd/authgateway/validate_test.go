package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateGolden makes one common mistake at a time in a copy of the
// shipped config (testdata/validate/gateway.yaml) and compares what
// `validate` prints with testdata/validate/NAME.golden (rewrite them with
// go test -run TestValidateGolden -update). Each message must name the line
// and key of the mistake and say what to write instead, in words.
//
// The config runs from a repository-like tree: /repo/configs/gateway.yaml,
// with the signing secret in /repo/.dev/access-secret (the temporary
// directory is shown as /repo).
func TestValidateGolden(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("testdata", "validate", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string            // one edit of the base config
		secret   string            // the secret file's content; "" = a random one, "-" = no file
		env      map[string]string // the environment besides an empty one
		args     []string          // instead of validate -config configs/gateway.yaml
		dir      string            // the working directory below /repo, if not /repo
	}{
		{name: "indented_more", old: "  - name: data\n    path: /api/data", new: "  - name: data\n      path: /api/data"},
		{name: "indented_less", old: "  - name: data\n    path: /api/data", new: "  - name: data\n   path: /api/data"},
		{name: "missing_dash", old: "  - name: api\n", new: "    name: api\n"},
		{name: "tab", old: "  - name: api\n    path: /api\n", new: "  - name: api\n\tpath: /api\n"},
		{name: "string_for_list", old: "    roles: [admin]", new: "    roles: staff"},
		{name: "unknown_key", old: "    upstream: http://127.0.0.1:9000\n    strategies: [jwt]\n    roles", new: "    upstrem: http://127.0.0.1:9000\n    strategies: [jwt]\n    roles"},
		{name: "strategy_wrong_case", old: "    strategies: [jwt]\n    roles: [admin]", new: "    strategies: [JWT]\n    roles: [admin]"},
		{name: "unset_variable", old: `secret_file: "${ACCESS_SECRET_FILE:-../.dev/access-secret}"`, new: "secret: ${ACCESS_SECRET}"},
		{name: "missing_secret_file", secret: "-"},
		{name: "empty_secret_file", secret: "\n"},
		{name: "short_secret", secret: "hunter2\n"},
		{name: "missing_config", args: []string{"validate", "-config", "configs/gateway.yml"}},
		{name: "missing_default_config", args: []string{"validate"}, dir: ".dev"},
		{name: "missing_config_from_env", args: []string{"validate"}, env: map[string]string{"AUTHGATEWAY_CONFIG": "/etc/authgateway/gateway.yaml"}},
		{name: "bad_url", old: "    upstream: http://127.0.0.1:9000\n    public: true", new: "    upstream: 127.0.0.1:9000\n    public: true"},
		{name: "duplicate_route", old: "  - name: api\n    path: /api\n", new: "  - name: api\n    path: /api/admin/\n"},
		{name: "duplicate_key", old: "    path: /api/data\n", new: "    path: /api/data\n    path: /api/data/v2\n"},
		{name: "no_space_after_colon", old: "    public: true", new: "    public:true"},
		{name: "unclosed_bracket", old: "methods: [GET, POST]", new: "methods: [GET, POST"},
		{name: "unclosed_quote", old: `listen: "127.0.0.1:8080"`, new: `listen: "127.0.0.1:8080`},
		{name: "number_expected", old: "{limit: 100, period: 1m", new: "{limit: lots, period: 1m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(base), tt.old) {
				t.Fatalf("base config lacks %q", tt.old)
			}
			root := t.TempDir()
			for _, d := range []string{"configs", ".dev"} {
				if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			cfg := strings.Replace(string(base), tt.old, tt.new, 1)
			if err := os.WriteFile(filepath.Join(root, "configs", "gateway.yaml"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			secret := tt.secret
			if secret == "" {
				b := make([]byte, 32)
				_, _ = rand.Read(b)
				secret = hex.EncodeToString(b) + "\n"
			}
			if secret != "-" {
				if err := os.WriteFile(filepath.Join(root, ".dev", "access-secret"), []byte(secret), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range []string{"ACCESS_SECRET", "ACCESS_SECRET_FILE", "API_KEYS_FILE", "REDIS_URL"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			t.Setenv("AUTHGATEWAY_CONFIG", "")
			os.Unsetenv("AUTHGATEWAY_CONFIG")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			t.Chdir(filepath.Join(root, tt.dir))
			args := tt.args
			if args == nil {
				args = []string{"validate", "-config", "configs/gateway.yaml"}
			}
			stdout, stderr, code := runCLI(t, args...)
			real, _ := filepath.EvalSymlinks(root)
			got := "$ authgateway " + strings.Join(args, " ") + "\n" + stdout + stderr + "exit " + string(rune('0'+code)) + "\n"
			got = strings.ReplaceAll(strings.ReplaceAll(got, real, "/repo"), root, "/repo")

			golden := filepath.Join(testdataDir, "validate", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden (run with -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// testdataDir is this package's testdata, by absolute path (tests that
// change directory still find it).
var testdataDir = func() string {
	d, err := filepath.Abs("testdata")
	if err != nil {
		panic(err)
	}
	return d
}()
