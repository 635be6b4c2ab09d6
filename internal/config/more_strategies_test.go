package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestBasicAndMTLSKeys: the keys of DESIGN.md's "More strategies", their
// defaults, and the problems Validate names.
func TestBasicAndMTLSKeys(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	ok := `strategies:
  scripts:
    type: basic
    htpasswd_file: configs/htpasswd
    roles: [script]
    user_roles: {deploybot: [deployer]}
routes:
  - {path: /p, upstream: "http://u:1", strategies: [scripts]}
`
	cfg, err := Parse("/etc/gw/gateway.yaml", []byte(ok), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Strategies["scripts"]
	if s.Realm != DefaultBasicRealm || s.HtpasswdFile != filepath.Join("/etc/gw", "configs/htpasswd") || s.UserRoles["deploybot"][0] != "deployer" {
		t.Errorf("got realm %q, file %q, user_roles %v", s.Realm, s.HtpasswdFile, s.UserRoles)
	}

	bad := `strategies:
  scripts: {type: basic, realm: 'le"gacy'}
  partners: {type: mtls, subject_from: serial, allowed_subjects: [""], realm: x}
  keys: {type: api_key, prefixes: [pk_live], file: k.yaml, roles: [admin]}
routes:
  - {path: /p, upstream: "http://u:1", strategies: [scripts, partners]}
`
	_, err = Parse("/etc/gw/gateway.yaml", []byte(bad), noEnv)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want config errors", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"strategies.scripts.htpasswd_file: required",
		"strategies.scripts.realm: must not hold quotes",
		`strategies.partners.subject_from: unknown subject source "serial"`,
		"strategies.partners.type: type: mtls needs server.tls.client_ca_file",
		"strategies.partners.allowed_subjects[0]: must not be empty",
		"strategies.partners.realm: only applies to type: basic (this strategy is type: mtls)",
		"strategies.keys.roles: only applies to type: basic or mtls (this strategy is type: api_key)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems %q lack %q", msg, want)
		}
	}
}
