package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedKeyStores: two api_key strategies that would read one key store
// and accept one prefix are refused, with the file and line of the second
// strategy's store; distinct prefixes on one file, and Redis strategies
// (a namespace each), are accepted.
func TestSharedKeyStores(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(real, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	strategy := func(name, prefixes, store string) string {
		if store == "redis" {
			return fmt.Sprintf("  %s:\n    type: api_key\n    prefixes: [%s]\n    store: redis\n", name, prefixes)
		}
		return fmt.Sprintf("  %s:\n    type: api_key\n    prefixes: [%s]\n    file: %q\n", name, prefixes, store)
	}
	tests := []struct {
		name string
		a, b string // strategies a and b
		want string // "" = valid
	}{
		{"same file, same prefix", strategy("a", "pk_live", real), strategy("b", "pk_live", real),
			`gw.yaml:11: strategies.b.file: strategy a reads the same key file with prefix "pk_live"`},
		{"same file spelt differently", strategy("a", "pk_live", real), strategy("b", "pk_test, pk_live", filepath.Join(dir, "x", "..", "keys.yaml")),
			`gw.yaml:11: strategies.b.file: strategy a reads the same key file with prefix "pk_live"`},
		{"same file through a link", strategy("a", "pk_live", link), strategy("b", "pk_live", real),
			`gw.yaml:11: strategies.b.file: strategy a reads the same key file`},
		{"same file not created yet", strategy("a", "pk_live", filepath.Join(dir, "new.yaml")), strategy("b", "pk_live", filepath.Join(dir, "new.yaml")),
			`gw.yaml:11: strategies.b.file: strategy a reads the same key file`},
		{"same file, prefixes of their own", strategy("a", "pk_a", real), strategy("b", "pk_b", real), ""},
		{"own files, same prefix", strategy("a", "pk_live", real), strategy("b", "pk_live", filepath.Join(dir, "other.yaml")), ""},
		{"both redis, same prefix", strategy("a", "pk_live", "redis"), strategy("b", "pk_live", "redis"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "redis:\n  url: redis://127.0.0.1:6379/0\nstrategies:\n" + tc.a + tc.b +
				"routes:\n  - {path: /a, upstream: \"http://x\", strategies: [a]}\n  - {path: /b, upstream: \"http://x\", strategies: [b]}\n"
			_, err := Parse("gw.yaml", []byte(yaml), env(nil))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got:\n%v\n%s", err, yaml)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 || !strings.HasPrefix(errs[0].String(), tc.want) {
				t.Fatalf("got %v; want one problem starting %q\n%s", err, tc.want, yaml)
			}
		})
	}
}
