package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/tokens"
)

// Reload loads the config file again and, if it is valid and builds, swaps in
// the new route table, strategies and signing keys atomically. In-flight
// requests finish on what they started with. On any error the running config
// stays and the error (with file:line) is logged, reported by /readyz and
// counted.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	err := a.reload(ctx)
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
	a.Audit.Write(audit.Event{Event: audit.ConfigReloaded, Detail: a.Config().Hash})
	return nil
}

func (a *App) reload(ctx context.Context) error {
	old := a.Config()
	cfg, err := config.Load(old.Path)
	if err != nil {
		return err
	}
	for _, field := range restartOnly(old, cfg) {
		a.Logger.Warn("config change needs a restart to take effect; ignored until then", "key", field)
	}
	var keys *tokens.KeySet
	if a.Issuer != nil {
		if keys, err = tokens.LoadKeySet(cfg.Tokens.SigningKeys); err != nil {
			return config.Errors{cfg.Problem("tokens.signing_keys", "%v", err)}
		}
		if keys.Signer() == nil {
			return config.Errors{cfg.Problem("tokens.signing_keys", "no signing key")}
		}
	}
	var cert certificate
	if cfg.Server.TLS != nil && a.Config().Server.TLS != nil {
		if err := cert.load(cfg.Server.TLS); err != nil {
			return config.Errors{cfg.Problem("server.tls", "%v", err)}
		}
	}
	gen, err := a.buildGeneration(ctx, cfg)
	if err != nil {
		return err
	}
	if c := cert.cur.Load(); c != nil {
		a.cert.cur.Store(c)
	}
	if keys != nil {
		a.Issuer.Keys.Replace(keys)
	}
	a.Gateway.SwapTable(gen.table)
	prev := a.current
	a.current = gen
	a.cfg.Store(cfg)
	// Requests that started on the previous generation may still use its
	// strategies; release them once they must have finished.
	time.AfterFunc(cfg.Server.ShutdownTimeout.D()+cfg.Server.UpstreamTimeout.D(), prev.close)
	a.Logger.Info("config reloaded", "hash", cfg.Hash, "routes", len(cfg.Routes))
	return nil
}

// restartOnly lists the changed settings a reload cannot apply.
func restartOnly(old, cfg *config.Config) []string {
	var out []string
	if !reflect.DeepEqual(old.Server, cfg.Server) {
		out = append(out, "server")
	}
	if old.Redis.URL != cfg.Redis.URL {
		out = append(out, "redis")
	}
	if !reflect.DeepEqual(old.RateLimits, cfg.RateLimits) {
		out = append(out, "rate_limits")
	}
	if !reflect.DeepEqual(old.Log, cfg.Log) {
		out = append(out, "log")
	}
	o, n := old.Tokens, cfg.Tokens
	if o.Issuer != n.Issuer || o.Audience != n.Audience || o.AccessTTL != n.AccessTTL || o.RefreshTTL != n.RefreshTTL {
		out = append(out, "tokens (issuer, audience, ttl)")
	}
	if (len(o.SigningKeys) == 0) != (len(n.SigningKeys) == 0) {
		out = append(out, "tokens.signing_keys (added or removed entirely)")
	}
	return out
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
