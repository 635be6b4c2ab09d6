package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/redisconn"
)

// Reload loads the config file again and, if it is valid and builds, swaps in
// a new generation (config, route table, strategies, signing keys, TLS
// certificate, login and session endpoints) in one step. In-flight requests
// finish on the generation they started with. On any error the running
// generation stays and the error (with file:line) is logged, reported by
// /readyz and counted.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	err := a.reload(ctx)
	now := time.Now()
	a.reloadAt.Store(&now)
	if err != nil {
		msg := err.Error()
		a.reloadErr.Store(&msg)
		a.Logger.Error("config reload failed; still serving the previous config", "error", msg)
		a.Metrics.ConfigLoaded("", err)
		a.Audit.Write(audit.Event{Event: audit.ConfigReloadFail, Detail: msg})
		return err
	}
	a.reloadErr.Store(nil)
	a.Metrics.ConfigLoaded(a.Config().Hash, nil)
	a.Metrics.RestartRequired(a.RestartKeys())
	a.Audit.Write(audit.Event{Event: audit.ConfigReloaded, Detail: a.Config().Hash})
	return nil
}

// RestartKeys lists, by exact key ("server.listen"), the settings of the
// config now loaded whose new values wait for a restart; the process still
// runs with the values it started with.
func (a *App) RestartKeys() []string {
	if p := a.restartKeys.Load(); p != nil {
		return *p
	}
	return nil
}

func (a *App) reload(ctx context.Context) error {
	cfg, err := config.Load(a.Config().Path)
	if err != nil {
		return err
	}
	// Compared with the config the process started with, not the previous
	// reload's: a second edit must not hide the first's pending change.
	pending := restartKeys(a.started, cfg)
	gen, err := a.buildGeneration(cfg)
	if err != nil {
		return err
	}
	if err := gen.start(redisconn.WithErrorCounter(ctx, a.Metrics)); err != nil {
		gen.close()
		return err
	}
	gen.refs.Store(1)
	// One swap: every request from here on is served by gen, whole;
	// requests that started on the previous generation finish on it, and
	// the last of them closes it.
	prev := a.gen.Swap(gen)
	a.Metrics.KeepTargets(gen.upstreams.health())
	a.restartKeys.Store(&pending)
	for _, key := range pending {
		a.Logger.Warn("config change needs a restart to take effect; the running value stays until then", "key", key)
	}
	if prev != nil {
		prev.release()
	}
	for _, w := range cfg.Warnings() {
		a.Logger.Warn(w.String())
	}
	a.Logger.Info("config reloaded", "hash", cfg.Hash, "routes", len(cfg.Routes))
	return nil
}

// restartKeys lists, by exact YAML key, the settings that differ between
// the config the process started with and cfg but that only a restart
// applies: they are read once, when the listeners, Redis client, loggers,
// limits and session store are built. Everything else (routes, strategies,
// signing keys, the TLS certificate, the login's provider, client and
// redirect settings) a reload rebuilds.
func restartKeys(started, cfg *config.Config) []string {
	// Sections read once at start. A key added to one of them is
	// restart-only unless listed in reloadable.
	restartOnly := []string{"server", "redis", "rate_limits", "log", "audit", "tracing",
		"tokens.issuer", "tokens.audience", "tokens.access_ttl", "tokens.refresh_ttl", "tokens.identity_token_ttl"}
	// Keys inside those sections that a reload does apply: the certificate
	// files are read again, and max_body_bytes is copied into each route.
	reloadable := []string{"server.tls.cert_file", "server.tls.key_file", "server.tls.client_ca_file", "server.max_body_bytes"}
	var out []string
	for _, key := range changedKeys(reflect.ValueOf(started).Elem(), reflect.ValueOf(cfg).Elem(), "") {
		if underAny(key, restartOnly) && !underAny(key, reloadable) {
			if key == "redis.url" && cfg.Redis.URLFile != "" {
				key = "redis.url_file" // url holds what the file said
			}
			out = append(out, key)
		}
	}
	// Signing keys rotate on reload, but whether there are any decides
	// whether an issuer exists at all.
	if (len(started.Tokens.SigningKeys) == 0) != (len(cfg.Tokens.SigningKeys) == 0) {
		out = append(out, "tokens.signing_keys")
	}
	// The client CAs are read again on reload, but whether the listener
	// asks for client certificates at all is decided when it is built.
	if hasClientCAs(cfg) != hasClientCAs(started) {
		out = append(out, "server.tls.client_ca_file")
	}
	// The session store is built at start when some strategy has login:
	// true; login turned on later waits for a restart.
	if name := loginStrategy(cfg); name != "" && loginStrategy(started) == "" {
		out = append(out, "strategies."+name+".login")
	}
	return out
}

func hasClientCAs(cfg *config.Config) bool {
	return cfg.Server.TLS != nil && cfg.Server.TLS.ClientCAFile != ""
}

// loginStrategy is the name of the oauth2 strategy with login: true, or "".
func loginStrategy(cfg *config.Config) string {
	for _, name := range slices.Sorted(maps.Keys(cfg.Strategies)) {
		if s := cfg.Strategies[name]; s != nil && s.Type == "oauth2" && s.Login {
			return name
		}
	}
	return ""
}

// changedKeys compares two values of one config type field by field and
// returns the YAML keys whose values differ: leaves, lists and maps by
// their whole value, structs key by key.
func changedKeys(a, b reflect.Value, path string) []string {
	if a.Kind() == reflect.Pointer {
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return []string{path}
			}
			return nil
		}
		a, b = a.Elem(), b.Elem()
	}
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return nil
		}
		return []string{path}
	}
	var out []string
	for i := 0; i < a.NumField(); i++ {
		f := a.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue // derived values follow the keys they come from
		}
		key := name
		if path != "" {
			key = path + "." + name
		}
		out = append(out, changedKeys(a.Field(i), b.Field(i), key)...)
	}
	return out
}

// underAny reports whether key is one of prefixes or below one.
func underAny(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if key == p || strings.HasPrefix(key, p+".") {
			return true
		}
	}
	return false
}

// watchFiles reloads when the config file or a secret file it names changes.
// It watches directories, not files, so that editors that write a new file
// and rename it over the old one, and Kubernetes' symlink swaps of mounted
// ConfigMaps and Secrets, are seen. Events are debounced, and a reload runs
// only if some watched file's content actually changed.
func (a *App) watchFiles(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	files := watchedFiles(a.Config())
	dirs := map[string]bool{}
	for _, f := range files {
		d := filepath.Dir(f)
		if !dirs[d] {
			if err := w.Add(d); err != nil {
				_ = w.Close()
				return fmt.Errorf("watching %s: %w", d, err)
			}
			dirs[d] = true
		}
	}
	sums := fileSums(files)
	go func() {
		defer w.Close()
		var debounce <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				debounce = time.After(250 * time.Millisecond)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				a.Logger.Warn("file watcher error", "error", err)
			case <-debounce:
				debounce = nil
				now := fileSums(files)
				if bytes.Equal(now, sums) {
					continue
				}
				sums = now
				a.Logger.Info("config or secret file changed: reloading")
				if a.Reload(ctx) == nil {
					// The new config may name other secret files.
					files = watchedFiles(a.Config())
					for _, f := range files {
						if d := filepath.Dir(f); !dirs[d] && w.Add(d) == nil {
							dirs[d] = true
						}
					}
					sums = fileSums(files)
				}
			}
		}
	}()
	return nil
}

func watchedFiles(cfg *config.Config) []string {
	files := []string{cfg.Path}
	for _, k := range cfg.Tokens.SigningKeys {
		for _, f := range []string{k.SecretFile, k.PrivateKeyFile, k.PublicKeyFile} {
			if f != "" {
				files = append(files, f)
			}
		}
	}
	for _, s := range cfg.Strategies {
		if s.ClientSecretFile != "" {
			files = append(files, s.ClientSecretFile)
		}
	}
	if cfg.Server.TLS != nil {
		files = append(files, cfg.Server.TLS.CertFile, cfg.Server.TLS.KeyFile)
		if f := cfg.Server.TLS.ClientCAFile; f != "" {
			files = append(files, f)
		}
	}
	for _, r := range cfg.Routes {
		if t := r.UpstreamTLS; t != nil {
			for _, f := range []string{t.CAFile, t.CertFile, t.KeyFile} {
				if f != "" {
					files = append(files, f)
				}
			}
		}
	}
	abs := files[:0]
	for _, f := range files {
		if p, err := filepath.Abs(f); err == nil {
			abs = append(abs, p)
		}
	}
	return abs
}

// fileSums hashes the watched files' contents (a missing file hashes as
// empty, so its reappearance is a change).
func fileSums(files []string) []byte {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			b = []byte("unreadable")
		}
		sum := sha256.Sum256(b)
		h.Write([]byte(hex.EncodeToString(sum[:])))
	}
	return h.Sum(nil)
}
