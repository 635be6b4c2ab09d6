package config

import (
	"fmt"
	"path/filepath"
)

// A relative file path in a config is read from the config file's directory,
// as Prometheus does, and never from the working directory: `validate
// -config /etc/gw/gateway.yaml` and `serve` from a unit file must read the
// same files whatever directory they are started from.

// fileField is one config value that names a file.
type fileField struct {
	key   string // YAML path, for messages
	value *string
}

// fileFields returns every value of c that names a file. Every key that
// names a file must be listed here — a new `*_file` key of any section
// included — so that it is resolved like the others;
// TestEveryFileKeyIsResolved fails for a *_file key that is not.
func (c *Config) fileFields() []fileField {
	var out []fileField
	add := func(key string, v *string) { out = append(out, fileField{key, v}) }
	if t := c.Server.TLS; t != nil {
		add("server.tls.cert_file", &t.CertFile)
		add("server.tls.key_file", &t.KeyFile)
		add("server.tls.client_ca_file", &t.ClientCAFile)
	}
	add("server.admin_token_file", &c.Server.AdminTokenFile)
	add("redis.url_file", &c.Redis.URLFile)
	for i := range c.Tokens.SigningKeys {
		k := &c.Tokens.SigningKeys[i]
		p := fmt.Sprintf("tokens.signing_keys[%d]", i)
		add(p+".secret_file", &k.SecretFile)
		add(p+".private_key_file", &k.PrivateKeyFile)
		add(p+".public_key_file", &k.PublicKeyFile)
	}
	for _, name := range sortedKeys(c.Strategies) {
		s := c.Strategies[name]
		if s == nil {
			continue
		}
		p := "strategies." + name
		add(p+".file", &s.File)
		add(p+".client_secret_file", &s.ClientSecretFile)
		add(p+".htpasswd_file", &s.HtpasswdFile)
	}
	for i, r := range c.Routes {
		if r != nil && r.UpstreamTLS != nil {
			p := fmt.Sprintf("routes[%d].upstream_tls", i)
			add(p+".ca_file", &r.UpstreamTLS.CAFile)
			add(p+".cert_file", &r.UpstreamTLS.CertFile)
			add(p+".key_file", &r.UpstreamTLS.KeyFile)
		}
	}
	switch c.Audit.Output {
	case "", "stdout", "stderr":
	default:
		add("audit.output", &c.Audit.Output)
	}
	return out
}

// resolvePaths makes every relative file path of c relative to dir, and
// remembers what was written (for error messages). Provision calls it; a
// second call finds nothing relative.
func (c *Config) resolvePaths(dir string) {
	if c.relative == nil {
		c.relative = map[string]string{}
	}
	for _, f := range c.fileFields() {
		if *f.value == "" || filepath.IsAbs(*f.value) {
			continue
		}
		c.relative[f.key] = *f.value
		*f.value = filepath.Join(dir, *f.value)
	}
}

// describeFile names the file at key for a message: as resolved, and as
// written when that was a relative path.
func (c *Config) describeFile(key, resolved string) string {
	if written, ok := c.relative[key]; ok {
		return fmt.Sprintf("%s (%q, relative to the config file's directory)", resolved, written)
	}
	return resolved
}

// baseDir is the absolute directory of the config file at path.
func baseDir(path string) string {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		// Only a vanished working directory gets here; relative paths then
		// stay relative to it, which is all that can be done.
		return filepath.Dir(path)
	}
	return dir
}
