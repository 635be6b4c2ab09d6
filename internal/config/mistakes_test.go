package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSyntaxProblems checks that YAML the parser refuses is reported at the
// line a person would fix, in words; cmd/authgateway's golden tests show
// the same on the shipped config.
func TestSyntaxProblems(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"key indented more", "routes:\n  - name: a\n      path: /x\n    upstream: http://x\n",
			"gw.yaml:3: routes[0].path: `path` is indented more than the other keys of this route (6 spaces, not 4 as `name` on line 2)"},
		{"key indented less", "routes:\n  - name: a\n    upstream: http://x\n   path: /x\n  - name: b\n",
			"gw.yaml:4: routes[0].path: `path` is indented less than the other keys of this route (3 spaces, not 4 as `upstream` on line 3)"},
		{"top-level key indented", "server:\n  listen: a\n routes: []\n",
			"gw.yaml:3: server.routes: `routes` is indented less than the other keys of server (1 space, not 2 as `listen` on line 2)"},
		{"item where keys are", "routes:\n  - name: a\n    path: /x\n  name: b\n",
			"gw.yaml:4: routes: `name` is at the column of the \"- \" items of routes"},
		{"item among keys", "routes:\n  - name: a\n    path: /x\n    - name: b\n",
			"gw.yaml:4: routes[0]: a list item (\"- \") among the keys of this route (`path` on line 3)"},
		{"item indented off", "routes:\n- name: a\n  path: /x\n - name: b\n",
			"gw.yaml:4: routes: this \"- \" item is indented 1 space, not 0 as the other items of routes (line 2)"},
		{"tab", "server:\n  listen: x\n\tadmin_listen: y\n", "gw.yaml:3: tab character; YAML indents with spaces"},
		{"tab first", "server:\n\tlisten: x\n", "gw.yaml:2: tab character; YAML indents with spaces"},
		{"unclosed list", "routes: [a, b\nserver: {}\n", "gw.yaml:1: routes: the [ list opened on this line is never closed"},
		{"unclosed mapping", "server: {listen: x\n", "gw.yaml:1: server: the { mapping opened on this line is never closed"},
		{"unclosed quote", "server:\n  listen: \"x\n  admin_listen: \"y\"\n", "gw.yaml:2: server.listen: the quote opened on this line is never closed"},
		{"no space after colon", "routes:\n  - name: a\n    public:true\n", "gw.yaml:3: routes[0].public: a key needs a space after its colon: public: true"},
		{"plain line among keys", "server:\n  listen: a\n  b\n  c: [\n", "gw.yaml:3: server: this line is not a `key: value` among the keys of server"},
		{"a multi-line value is fine", "server:\n  listen: a\n    b\n  admin_listen: [\n", "gw.yaml:4: server.admin_listen: the [ list opened on this line is never closed"},
		{"a block scalar is skipped", "server:\n  listen: |\n    a: b\n      - c\n  admin_listen: {\n", "gw.yaml:5: server.admin_listen: the { mapping opened on this line is never closed"},
		{"an indented document", "  server:\n    listen: a\n  routes: [\n", "gw.yaml:3: routes: the [ list opened on this line is never closed"},
		// What the scan cannot place keeps the parser's line, in words.
		{"colon in a value", "routes:\n  - name: a: b\n", "gw.yaml:2: a `key: value` cannot start here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("gw.yaml", []byte(tt.yaml), env(nil))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			if got := errs[0].String(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("got  %s\nwant %s...", got, tt.want)
			}
		})
	}
}

// TestValueShapes checks values of the wrong shape or type: one problem
// each, naming the key, and no second one about the default left behind.
func TestValueShapes(t *testing.T) {
	y := `server:
  max_header_bytes: lots
  https_only: maybe
  trusted_proxies: 10.0.0.0/8
  listen: [a, b]
tokens: 15m
strategies:
  - jwt
routes:
  - path: /
    upstream: "http://x"
    public: true
    roles: staff
    methods: {GET: true}
    rate_limit: {limit: 5, period: 5 minutes}
    path: /again
`
	_, err := Parse("gw.yaml", []byte(y), env(nil))
	want := []string{
		`gw.yaml:2: server.max_header_bytes: want a whole number, got "lots"`,
		`gw.yaml:3: server.https_only: want true or false, got "maybe"`,
		`gw.yaml:4: server.trusted_proxies: want a list, got the string "10.0.0.0/8" — write trusted_proxies: [10.0.0.0/8]`,
		`gw.yaml:5: server.listen: want a single value, got a list`,
		`gw.yaml:6: tokens: want a mapping (indented "key: value" lines or {key: value}), got the string "15m"`,
		`gw.yaml:8: strategies: want a mapping (indented "key: value" lines or {key: value}), got a list`,
		`gw.yaml:13: routes[0].roles: want a list, got the string "staff" — write roles: [staff]`,
		`gw.yaml:14: routes[0].methods: want a list ("- item" lines or [a, b]), got a mapping`,
		`gw.yaml:15: routes[0].rate_limit.period: invalid duration "5 minutes"`,
		"gw.yaml:16: routes[0].path: `path` appears twice in one mapping (first on line 10); keep one, or start a new list item with \"- \"",
	}
	if err == nil {
		t.Fatal("want problems")
	}
	if got := strings.Split(err.Error(), "\n"); len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(got), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%s", w, err)
		}
	}
}

func TestSuggestions(t *testing.T) {
	y := `strategies:
  jwt: {type: jwt, issuer: a, audience: b, algorithms: [RS256], jwks_url: "https://idp/jwks"}
routes:
  - {path: /a, upstream: "http://x", strategies: [JWT]}
  - {path: /b, upstream: "http://x", strategies: [jwtt]}
  - {path: /c, upstream: "localhost:9000", strategies: [jwt], Roles: [x]}
`
	_, err := Parse("gw.yaml", []byte(y), env(nil))
	for _, w := range []string{
		`gw.yaml:4: routes[0].strategies[0]: unknown strategy "JWT" (did you mean "jwt"? names are case-sensitive)`,
		`gw.yaml:5: routes[1].strategies[0]: unknown strategy "jwtt" (did you mean "jwt"?)`,
		`gw.yaml:6: routes[2].upstream: "localhost:9000" is not an absolute http(s) URL (did you mean "http://localhost:9000"?)`,
		`gw.yaml:6: routes[2].Roles: unknown key (did you mean "roles"? names are case-sensitive)`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

// TestUnsetVariableNamed: a required value that came from an unset
// variable names it, and nothing guesses when no variable was involved.
func TestUnsetVariableNamed(t *testing.T) {
	tests := []struct {
		name, secret string
		env          map[string]string
		want         string
	}{
		{"unset", "${ACCESS_SECRET}", nil, "secret: required for HS256: set secret or secret_file (${ACCESS_SECRET} is not set)"},
		{"empty", "${ACCESS_SECRET}", map[string]string{"ACCESS_SECRET": ""}, "(${ACCESS_SECRET} is set but empty)"},
		{"explicit empty default", "${ACCESS_SECRET:-}", nil, "secret: required for HS256: set secret or secret_file\n"},
		{"no variable", `""`, nil, "secret: required for HS256: set secret or secret_file\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := "tokens:\n  signing_keys: [{kid: k1, algorithm: HS256, secret: " + tt.secret + "}]\nroutes: [{path: /, upstream: \"http://x\", public: true}]\n"
			_, err := Parse("gw.yaml", []byte(y), env(tt.env))
			if err == nil || !strings.Contains(err.Error()+"\n", tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
			if err != nil && strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("want one problem, got:\n%s", err)
			}
		})
	}
}

// TestRelativePathsFromConfigDir: a relative file path is read from the
// config file's directory whatever the working directory, and an absolute
// one as written.
func TestRelativePathsFromConfigDir(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "configs", "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "configs", "secrets", "hs"), []byte(secret32+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(root, "abs-audit.log")
	absKey := filepath.Join(root, "abs-key.pem")
	for _, f := range []string{filepath.Join(root, "configs", "tls", "cert.pem"), absKey} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	y := `server:
  tls: {cert_file: tls/cert.pem, key_file: ` + absKey + `}
tokens:
  signing_keys: [{kid: k1, algorithm: HS256, secret_file: secrets/hs}]
strategies:
  keys: {type: api_key, prefixes: [pk_test], file: ../.dev/api-keys.yaml}
routes: [{path: /, upstream: "http://x", public: true}]
audit: {output: ` + abs + `}
`
	t.Chdir(t.TempDir()) // anywhere but the config's directory
	cfg, err := Parse(filepath.Join(root, "configs", "gateway.yaml"), []byte(y), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for got, want := range map[string]string{
		cfg.Tokens.SigningKeys[0].SecretFile: filepath.Join(root, "configs", "secrets", "hs"),
		cfg.Tokens.SigningKeys[0].Secret:     secret32,
		cfg.Strategies["keys"].File:          filepath.Join(root, ".dev", "api-keys.yaml"),
		cfg.Server.TLS.CertFile:              filepath.Join(root, "configs", "tls", "cert.pem"),
		cfg.Server.TLS.KeyFile:               absKey,
		cfg.Audit.Output:                     abs,
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	// stdout and stderr are not files.
	cfg, err = Parse("gw.yaml", []byte("routes: [{path: /, upstream: \"http://x\", public: true}]\naudit: {output: stderr}\n"), env(nil))
	if err != nil || cfg.Audit.Output != "stderr" {
		t.Errorf("audit.output stderr became %q (%v)", cfg.Audit.Output, err)
	}
}

// TestEveryFileKeyIsResolved sets every string key of the config whose
// name ends in "file" (and audit.output) to a relative path, and checks
// that loading resolved each one: a new *_file key that fileFields does
// not list fails here.
func TestEveryFileKeyIsResolved(t *testing.T) {
	cfg := &Config{}
	var keys []string
	fillFileKeys(reflect.ValueOf(cfg).Elem(), "", func(key string, v reflect.Value) {
		keys = append(keys, key)
		v.SetString("rel/" + strings.ReplaceAll(key, ".", "_"))
	})
	cfg.Audit.Output = "rel/audit.output"
	keys = append(keys, "audit.output")
	if len(keys) < 9 {
		t.Fatalf("found only %d file keys: %q", len(keys), keys)
	}
	cfg.resolvePaths("/base")
	fillFileKeys(reflect.ValueOf(cfg).Elem(), "", func(key string, v reflect.Value) {
		if want := "/base/rel/" + strings.ReplaceAll(key, ".", "_"); v.String() != want {
			t.Errorf("%s = %q after resolvePaths, want %q: add it to fileFields", key, v.String(), want)
		}
	})
	if cfg.Audit.Output != "/base/rel/audit.output" {
		t.Errorf("audit.output = %q", cfg.Audit.Output)
	}
}

// fillFileKeys calls f for every settable string field whose YAML key ends
// in "file", creating one element of every pointer, slice and map on the
// way (map keys "x").
func fillFileKeys(v reflect.Value, path string, f func(key string, v reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillFileKeys(v.Elem(), path, f)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			sf := v.Type().Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || name == "" || name == "-" {
				continue
			}
			key := join(path, name)
			if fv := v.Field(i); fv.Kind() == reflect.String {
				if strings.HasSuffix(name, "file") {
					f(key, fv)
				}
			} else {
				fillFileKeys(fv, key, f)
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		fillFileKeys(v.Index(0), path+"[0]", f)
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		e := reflect.New(v.Type().Elem()).Elem()
		if existing := v.MapIndex(reflect.ValueOf("x")); existing.IsValid() {
			e = existing
		}
		fillFileKeys(e, path+".x", f)
		v.SetMapIndex(reflect.ValueOf("x"), e)
	}
}
