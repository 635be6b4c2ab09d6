package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/redisconn"
	apikeystrategy "github.com/authgateway/authgateway/internal/strategies/apikey"
)

const keysUsage = `usage:
  authgateway keys create -name N [-prefix pk_live] [-roles a,b] [-scopes x,y] [-expires 90d] [-strategy S]
  authgateway keys list [-strategy S]
  authgateway keys revoke ID [-strategy S]
  authgateway keys rotate ID [-grace 24h] [-strategy S]
  authgateway keys migrate [ID...] [-dry-run] [-strategy S]
`

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs, cfgPath := newFlags("keys "+sub, stderr)
	strategy := fs.String("strategy", "", "api_key strategy whose store to use (default: the only one)")
	var name, prefix, roles, scopes, expires, grace *string
	var dryRun *bool
	switch sub {
	case "create":
		name = fs.String("name", "", "key name, becomes X-Auth-Subject (required)")
		prefix = fs.String("prefix", "", "key prefix (default: the strategy's first prefix)")
		roles = fs.String("roles", "", "comma-separated roles")
		scopes = fs.String("scopes", "", "comma-separated scopes")
		expires = fs.String("expires", "", "lifetime, e.g. 90d (default: never)")
	case "rotate":
		grace = fs.String("grace", "24h", "how long the old key keeps working")
	case "migrate":
		dryRun = fs.Bool("dry-run", false, "print what would be moved, move nothing")
	case "list", "revoke":
	default:
		fmt.Fprintf(stderr, "authgateway keys: unknown subcommand %q\n%s", sub, keysUsage)
		return exitUsage
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	if sub == "create" && *name == "" {
		fmt.Fprintln(stderr, "authgateway keys create: -name is required (the key's name; upstreams see it as X-Auth-Subject)")
		return exitUsage
	}
	switch wantPos := map[string]int{"create": 0, "list": 0, "revoke": 1, "rotate": 1, "migrate": len(pos)}[sub]; {
	case len(pos) > wantPos:
		fmt.Fprintf(stderr, "authgateway keys %s: unexpected argument %q\n", sub, pos[wantPos])
		return exitUsage
	case len(pos) < wantPos:
		fmt.Fprintf(stderr, "authgateway keys %s: the key's ID is required (see authgateway keys list)\n", sub)
		return exitUsage
	}
	var expiresIn, graceFor time.Duration
	if expires != nil && *expires != "" {
		if expiresIn, err = config.ParseDuration(*expires); err != nil || expiresIn == 0 {
			fmt.Fprintf(stderr, "authgateway keys: -expires %q: want a positive duration like 90d\n", *expires)
			return exitUsage
		}
	}
	if grace != nil {
		if graceFor, err = config.ParseDuration(*grace); err != nil {
			fmt.Fprintf(stderr, "authgateway keys: -grace: %v\n", err)
			return exitUsage
		}
	}

	cfg, ok := loadConfig(*cfgPath, stderr)
	if !ok {
		return exitFailure
	}
	sc, scName, err := pickKeyStrategy(cfg, *strategy)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway keys: %v\n", err)
		return exitFailure
	}
	if sub == "migrate" && sc.Store != "redis" {
		fmt.Fprintf(stderr, "authgateway keys migrate: strategy %s keeps its keys in a file; only the redis store had a shared layout to migrate from\n", scName)
		return exitFailure
	}
	var rc redis.UniversalClient
	if sc.Store == "redis" {
		if rc, err = redisconn.New(cfg.Redis.URL); err != nil {
			fmt.Fprintf(stderr, "authgateway keys: %v\n", err)
			return exitFailure
		}
		defer rc.Close()
	}
	store, err := apikeystrategy.Store(scName, sc, rc, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("strategy", scName))
	if err != nil {
		fmt.Fprintf(stderr, "authgateway keys: %v\n", err)
		return exitFailure
	}
	m := apikey.NewManager(store, apikey.ManagerOptions{Prefixes: sc.Prefixes})
	auditLog, err := audit.Open(cfg.Audit.Output)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway keys: %v\n", err)
		return exitFailure
	}
	defer auditLog.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	switch sub {
	case "create":
		p := *prefix
		if p == "" {
			p = sc.Prefixes[0]
		}
		key, rec, err := m.Create(ctx, apikey.CreateParams{Name: *name, Prefix: p, Roles: splitList(*roles), Scopes: splitList(*scopes), ExpiresIn: expiresIn})
		if err != nil {
			return keysFailed(stderr, "creating key", err)
		}
		auditLog.Write(audit.Event{Event: audit.KeyCreated, KeyID: rec.ID, Subject: rec.Name, Strategy: scName})
		fmt.Fprintf(stdout, "created key %s (name %s, strategy %s, expires %s)\n", rec.ID, rec.Name, scName, fmtTime(rec.ExpiresAt, "never"))
		fmt.Fprintln(stdout, "store it now: it is shown only once")
		fmt.Fprintln(stdout, key)
	case "list":
		recs, err := m.List(ctx)
		if err != nil {
			return keysFailed(stderr, "listing keys", err)
		}
		printKeys(stdout, recs, time.Now())
		if rc != nil {
			noteLegacyKeys(ctx, rc, scName, stderr)
		}
	case "revoke":
		if err := m.Revoke(ctx, pos[0]); err != nil {
			return keysFailed(stderr, "revoking key", err)
		}
		auditLog.Write(audit.Event{Event: audit.KeyRevoked, KeyID: pos[0], Strategy: scName})
		fmt.Fprintf(stdout, "revoked key %s\n", pos[0])
	case "rotate":
		key, rec, err := m.Rotate(ctx, pos[0], graceFor)
		if err != nil {
			return keysFailed(stderr, "rotating key", err)
		}
		auditLog.Write(audit.Event{Event: audit.KeyRotated, KeyID: rec.ID, Subject: rec.Name, Strategy: scName, Detail: "replaces " + pos[0]})
		fmt.Fprintf(stdout, "rotated key %s -> %s (the old key works until %s)\n", pos[0], rec.ID, time.Now().Add(graceFor).UTC().Format(time.RFC3339))
		fmt.Fprintln(stdout, "store it now: it is shown only once")
		fmt.Fprintln(stdout, key)
	case "migrate":
		dst, ok := store.(*apikey.RedisStore)
		if !ok {
			fmt.Fprintf(stderr, "authgateway keys migrate: strategy %s has no redis store\n", scName)
			return exitFailure
		}
		return migrateKeys(ctx, keyMigration{
			cfg: cfg, name: scName, sc: sc, dst: dst, legacy: apikey.NewLegacyStore(rc),
			ids: pos, dryRun: *dryRun, audit: auditLog, stdout: stdout, stderr: stderr,
		})
	}
	return exitOK
}

func keysFailed(stderr io.Writer, what string, err error) int {
	if errors.Is(err, apikey.ErrNotFound) {
		fmt.Fprintf(stderr, "authgateway keys: %s: no such key\n", what)
		return exitFailure
	}
	fmt.Fprintf(stderr, "authgateway keys: %s: %v\n", what, err)
	return exitFailure
}

// pickKeyStrategy finds the api_key strategy to manage: the named one, or
// the only one.
func pickKeyStrategy(cfg *config.Config, name string) (*config.Strategy, string, error) {
	if name != "" {
		sc, ok := cfg.Strategies[name]
		if !ok || sc.Type != "api_key" {
			return nil, "", fmt.Errorf("no api_key strategy named %q in %s", name, cfg.Path)
		}
		return sc, name, nil
	}
	var names []string
	for n, sc := range cfg.Strategies {
		if sc.Type == "api_key" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	switch len(names) {
	case 0:
		return nil, "", fmt.Errorf("%s has no api_key strategy", cfg.Path)
	case 1:
		return cfg.Strategies[names[0]], names[0], nil
	}
	return nil, "", fmt.Errorf("several api_key strategies (%s): choose one with -strategy", strings.Join(names, ", "))
}

// keyStatus is a key's state as `keys list` shows it.
func keyStatus(r *apikey.Record, now time.Time) string {
	switch {
	case r.Revoked():
		return "revoked"
	case r.Expired(now):
		return "expired"
	case !r.ExpiresAt.IsZero() && r.ExpiresAt.Sub(now) < 7*24*time.Hour:
		return "expiring"
	}
	return "active"
}

// printKeys prints a table of keys: never a key or its hash.
func printKeys(w io.Writer, recs []*apikey.Record, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tROLES\tSCOPES\tSTATUS\tCREATED\tEXPIRES\tLAST USED")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Prefix,
			orDash(strings.Join(r.Roles, ",")), orDash(strings.Join(r.Scopes, ",")), keyStatus(r, now),
			fmtTime(r.CreatedAt, "-"), fmtTime(r.ExpiresAt, "never"), fmtTime(r.LastUsedAt, "never"))
	}
	_ = tw.Flush()
}

func fmtTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}
