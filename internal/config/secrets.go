package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadSecrets reads what the config names by file: the *_file secrets
// (redis.url_file, tokens.signing_keys[].secret_file,
// strategies.*.client_secret_file, trimmed of their trailing newline), the
// signing keys' PEM files and the TLS certificate and key, and checks what
// only their contents can tell (an HMAC secret's length, the URL in
// url_file). Every problem names the key and line that named the file.
// Strategies' key stores (api_key file) are the stores' own: they are not
// read here, but two strategies sharing one are refused here, where files
// are looked at (a link is the file it points to). A provisioned config is
// the input; LoadSecrets fills the values the files hold.
func (c *Config) LoadSecrets() []Problem {
	v := &validator{cfg: c}
	r := &c.Redis
	if r.URLFile != "" {
		var ok bool
		if r.URL, ok = v.readSecret("redis.url_file", r.URLFile); ok {
			v.redisURL(r.URL)
		}
	}
	if f := c.Server.AdminTokenFile; f != "" {
		var ok bool
		if c.Server.AdminToken, ok = v.readSecret("server.admin_token_file", f); ok && len(c.Server.AdminToken) < minAdminToken {
			v.errorf("server.admin_token_file", "the admin token is %d characters: use at least %d (openssl rand -hex 32)", len(c.Server.AdminToken), minAdminToken)
		}
	}
	for i := range c.Tokens.SigningKeys {
		k := &c.Tokens.SigningKeys[i]
		path := fmt.Sprintf("tokens.signing_keys[%d]", i)
		switch {
		case !slices.Contains(jwtAlgorithms, k.Algorithm): // reported by Validate
		case strings.HasPrefix(k.Algorithm, "HS"):
			if k.SecretFile == "" {
				break
			}
			var ok bool
			if k.Secret, ok = v.readSecret(path+".secret_file", k.SecretFile); ok {
				v.hmacSecret(path, k.Algorithm, k.Secret)
			}
		case k.PrivateKeyFile != "":
			k.KeyPEM, _ = v.readFile(path+".private_key_file", k.PrivateKeyFile)
		case k.PublicKeyFile != "":
			k.KeyPEM, _ = v.readFile(path+".public_key_file", k.PublicKeyFile)
		}
	}
	for _, name := range sortedKeys(c.Strategies) {
		if s := c.Strategies[name]; s != nil && s.Type == "oauth2" && s.ClientSecretFile != "" {
			s.ClientSecret, _ = v.readSecret("strategies."+name+".client_secret_file", s.ClientSecretFile)
		}
	}
	if t := c.Server.TLS; t != nil && t.CertFile != "" && t.KeyFile != "" {
		t.CertPEM, _ = v.readFile("server.tls.cert_file", t.CertFile)
		t.KeyPEM, _ = v.readFile("server.tls.key_file", t.KeyFile)
	}
	if t := c.Server.TLS; t != nil && t.ClientCAFile != "" {
		t.ClientCAPEM, _ = v.readFile("server.tls.client_ca_file", t.ClientCAFile)
	}
	for i, r := range c.Routes {
		if r != nil && r.UpstreamTLS != nil {
			v.readUpstreamTLS(fmt.Sprintf("routes[%d].upstream_tls", i), r.UpstreamTLS)
		}
	}
	v.sharedKeyStores()
	return v.problems
}

// minAdminToken is the shortest admin token accepted: 128 bits in hex.
const minAdminToken = 32

// readFile reads the file named at path; ok is false, and the problem
// reported, when it cannot be read or is empty.
func (v *validator) readFile(path, file string) (_ []byte, ok bool) {
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.errorf(path, "no such file: %s", v.cfg.describeFile(path, file))
		return nil, false
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named already
		}
		v.errorf(path, "reading %s: %v", v.cfg.describeFile(path, file), err)
		return nil, false
	case len(b) == 0:
		v.errorf(path, "the file is empty: %s", v.cfg.describeFile(path, file))
		return nil, false
	}
	return b, true
}

// readSecret reads a *_file secret, its trailing newline trimmed.
func (v *validator) readSecret(path, file string) (string, bool) {
	b, ok := v.readFile(path, file)
	if !ok {
		return "", false
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		v.errorf(path, "the file is empty: %s", v.cfg.describeFile(path, file))
		return "", false
	}
	return secret, true
}

// sharedKeyStores refuses two api_key strategies that read one key store
// and accept one prefix: a key made for either would be accepted by both,
// with the other's routes, roles and X-Auth-Strategy. Sharing a key file
// with distinct prefixes is fine: a key's prefix then says whose it is
// (the gateway refuses a prefix its strategy does not list before any
// lookup, and `keys` shows and changes only the strategy's prefixes). In
// Redis every strategy has a namespace of its own, named after it, so two
// strategies never share one.
func (v *validator) sharedKeyStores() {
	type keyFile struct {
		name, path string
		info       os.FileInfo // nil: the file does not exist (yet)
		prefixes   []string
	}
	var files []keyFile
	for _, name := range sortedKeys(v.cfg.Strategies) {
		s := v.cfg.Strategies[name]
		if s == nil || s.Type != "api_key" || s.Store != "file" || s.File == "" {
			continue
		}
		// Paths are absolute here (resolvePaths made relative ones relative
		// to the config file's directory); a link or a second spelling of
		// the same file is the same store too.
		f := keyFile{name: name, path: filepath.Clean(s.File), prefixes: s.Prefixes}
		if abs, err := filepath.Abs(f.path); err == nil {
			f.path = abs
		}
		if info, err := os.Stat(f.path); err == nil {
			f.info = info
		}
		for _, o := range files {
			same := o.path == f.path || (o.info != nil && f.info != nil && os.SameFile(o.info, f.info))
			if !same {
				continue
			}
			if p := firstShared(o.prefixes, f.prefixes); p != "" {
				v.errorf("strategies."+name+".file", "strategy %s reads the same key file with prefix %q: a key made for either would be accepted by both; give each strategy its own file, or prefixes of its own", o.name, p)
			}
		}
		files = append(files, f)
	}
}

// firstShared returns the first of a that b holds too, or "".
func firstShared(a, b []string) string {
	for _, p := range a {
		if slices.Contains(b, p) {
			return p
		}
	}
	return ""
}
