package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/redisconn"
)

// Both api_key scenarios serve the same keys: one set is made per run.
const (
	benchKeyPrefix   = "pk_live"
	benchKeyCount    = 1000
	benchKeyStrategy = "apiKey" // the strategy's name is its Redis namespace
)

// apiKeyScenario protects /api with an api_key strategy on store ("file" or
// "redis"; with cluster, a Redis Cluster) holding benchKeyCount keys,
// presented in X-API-Key.
func apiKeyScenario(name, store string, cluster bool) *scenario {
	sc := &scenario{
		name: name, target: targetGateway, path: pathAPI, goal: goalAuth,
		baseline: "bare-proxy-apikey",
		desc:     fmt.Sprintf("gateway, api_key strategy, store: %s, %d distinct keys in X-API-Key (after warm-up: the verifier's cache, refreshed from the store every 30 s)", store, benchKeyCount),
		gateway: func(ctx context.Context, e *env, c *gwConfig) error {
			s := map[string]any{"type": "api_key", "header": "X-API-Key", "prefixes": []string{benchKeyPrefix}, "store": store}
			switch store {
			case "file":
				s["file"] = filepath.Join(e.dir, "apikeys", "api-keys.yaml")
			case "redis":
				url, err := e.redisFor(ctx, cluster)
				if err != nil {
					return err
				}
				c.Redis = map[string]any{"url": url}
			}
			c.Strategies[benchKeyStrategy] = s
			c.Routes = append(c.Routes, map[string]any{
				"name": "api", "path": "/api", "upstream": e.upstream,
				"strategies": []string{benchKeyStrategy}, "roles": []string{"service"},
			})
			return nil
		},
		creds: func(ctx context.Context, e *env, cfgPath string) (*creds, error) {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return nil, fmt.Errorf("loading %s: %w", cfgPath, err)
			}
			sc := cfg.Strategies[benchKeyStrategy]
			keys, recs, err := e.apiKeys(ctx)
			if err != nil {
				return nil, err
			}
			switch sc.Store {
			case "redis":
				err = storeKeysRedis(ctx, cfg.Redis.URL, benchKeyStrategy, recs)
			default:
				err = writeKeyFile(ctx, sc.File, recs)
			}
			if err != nil {
				return nil, err
			}
			c := &creds{header: sc.Header, values: keys}
			if sc.Store == "redis" {
				c.calls = e.redisCounter(cluster)
			}
			return c, nil
		},
	}
	if cluster {
		return onCluster(sc, "gw-apikey-redis")
	}
	return sc
}

// apiKeys makes the run's keys once, with apikey.Manager as `authgateway
// keys create -name k-N -prefix pk_live -roles ... -scopes ...` does, and
// returns the plaintexts with their records.
func (e *env) apiKeys(ctx context.Context) ([]string, []*apikey.Record, error) {
	if e.keySet != nil {
		return e.keySet.keys, e.keySet.recs, nil
	}
	keys, recs, err := makeKeys(ctx, benchKeyCount)
	if err != nil {
		return nil, nil, err
	}
	e.keySet = &keySet{keys: keys, recs: recs}
	return keys, recs, nil
}

// makeKeys makes n keys with apikey.Manager as `authgateway keys create
// -name k-N -prefix pk_live -roles ... -scopes ...` does (roles service,
// every tenth also admin; every fourth expires in 90 days) and returns the
// plaintexts with their records.
func makeKeys(ctx context.Context, n int) ([]string, []*apikey.Record, error) {
	sink := &recordSink{}
	m := apikey.NewManager(sink, apikey.ManagerOptions{Prefixes: []string{benchKeyPrefix}})
	keys := make([]string, 0, n)
	for i := range n {
		p := apikey.CreateParams{Name: "k-" + strconv.Itoa(i), Prefix: benchKeyPrefix,
			Roles: []string{"service"}, Scopes: []string{"items:read"}}
		if i%10 == 0 {
			p.Roles = append(p.Roles, "admin")
			p.Scopes = append(p.Scopes, "items:write", "billing:read")
		}
		if i%4 == 0 {
			p.ExpiresIn = 90 * 24 * time.Hour
		}
		key, _, err := m.Create(ctx, p)
		if err != nil {
			return nil, nil, fmt.Errorf("creating api key: %w", err)
		}
		keys = append(keys, key)
	}
	return keys, sink.recs, nil
}

type keySet struct {
	keys []string
	recs []*apikey.Record
}

// writeKeyFile writes recs as the file store's YAML document in one go
// (FileStore.Create rewrites and fsyncs the whole file per key: minutes for
// 1000), then reads it back through apikey.FileStore, so a format the
// gateway would refuse fails here.
func writeKeyFile(ctx context.Context, path string, recs []*apikey.Record) error {
	var buf bytes.Buffer
	buf.WriteString("# API keys of the load benchmark (hashes only).\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Keys []*apikey.Record `yaml:"keys"`
	}{recs}); err != nil {
		return fmt.Errorf("encoding api key file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encoding api key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return err
	}
	fs, err := apikey.NewFileStore(path)
	if err != nil {
		return err
	}
	got, err := fs.List(ctx)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", path, err)
	}
	if len(got) != len(recs) {
		return fmt.Errorf("reading back %s: %d keys, want %d", path, len(got), len(recs))
	}
	return nil
}

// storeWorkers is how many key Creates are in flight while seeding Redis.
const storeWorkers = 64

// storeKeysRedis puts recs into the Redis store of strategy
// at url, as `authgateway keys create` does with store: redis. Keys left by an earlier scenario of this
// run (same records) are kept.
func storeKeysRedis(ctx context.Context, url, strategy string, recs []*apikey.Record) error {
	rc, err := redisconn.New(url)
	if err != nil {
		return err
	}
	defer rc.Close()
	s := apikey.NewRedisStore(rc, strategy, slog.New(slog.DiscardHandler))
	// Many Creates in flight: the client pipelines them over its pool, so
	// 100,000 keys take seconds, not one round trip each.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(storeWorkers)
	for _, r := range recs {
		g.Go(func() error {
			if err := s.Create(gctx, r); err != nil && !errors.Is(err, apikey.ErrExists) {
				return fmt.Errorf("storing api key in redis: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	got, err := s.List(ctx)
	if err != nil {
		return fmt.Errorf("listing redis api keys: %w", err)
	}
	if len(got) < len(recs) {
		return fmt.Errorf("redis holds %d api keys, want %d", len(got), len(recs))
	}
	return nil
}

// recordSink is an apikey.Store that only collects what Manager.Create
// makes, so the keys are generated exactly as the CLI generates them and
// then written to the real stores in bulk.
type recordSink struct{ recs []*apikey.Record }

var _ apikey.Store = (*recordSink)(nil)

func (s *recordSink) Create(_ context.Context, rec *apikey.Record) error {
	s.recs = append(s.recs, rec.Clone())
	return nil
}

func (s *recordSink) Get(context.Context, string) (*apikey.Record, error) {
	return nil, apikey.ErrNotFound
}

func (s *recordSink) GetByHash(context.Context, string) (*apikey.Record, error) {
	return nil, apikey.ErrNotFound
}

func (s *recordSink) List(context.Context) ([]*apikey.Record, error) { return s.recs, nil }

func (s *recordSink) Revoke(context.Context, string, time.Time) error { return apikey.ErrNotFound }

func (s *recordSink) SetExpiry(context.Context, string, time.Time) error { return apikey.ErrNotFound }

func (s *recordSink) TouchLastUsed(context.Context, map[string]time.Time) error { return nil }
