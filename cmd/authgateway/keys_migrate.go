package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/config"
)

// keyMigration is one `keys migrate`: moving keys from the Redis layout
// that every strategy shared before namespaces into one strategy's.
type keyMigration struct {
	cfg    *config.Config
	name   string // the strategy the keys go to
	sc     *config.Strategy
	dst    *apikey.RedisStore
	legacy *apikey.LegacyStore
	ids    []string // the keys named on the command line; none: every key that is unambiguous
	dryRun bool
	audit  *audit.Log
	stdout io.Writer
	stderr io.Writer
}

// migrateKeys moves keys into the strategy's namespace. Without ids it
// takes only the keys that can have been made for this strategy alone: a
// prefix the strategy does not accept never worked on it, and a prefix
// another redis strategy of the config accepts too is ambiguous, so those
// keys are left for the operator to name. Named ids are moved if the
// strategy accepts their prefix. Running it again is harmless.
func migrateKeys(ctx context.Context, m keyMigration) int {
	recs, err := m.legacy.List(ctx)
	if err != nil {
		return keysFailed(m.stderr, "reading the shared layout", err)
	}
	byID := make(map[string]*apikey.Record, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
	}
	ids := m.ids
	if len(ids) == 0 {
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
	}
	others := m.otherStrategies()
	now := time.Now()
	moved, skipped, failed := 0, 0, 0
	for _, id := range ids {
		if rec := byID[id]; rec != nil {
			if why := m.skip(rec, others); why != "" {
				fmt.Fprintf(m.stdout, "skipped %s (name %s): %s\n", id, rec.Name, why)
				skipped++
				if len(m.ids) > 0 {
					failed++
				}
				continue
			}
			if m.dryRun {
				fmt.Fprintf(m.stdout, "would move %s (name %s, prefix %s, %s) into strategy %s\n", id, rec.Name, rec.Prefix, keyStatus(rec, now), m.name)
				continue
			}
		} else if m.dryRun {
			fmt.Fprintf(m.stdout, "%s is not in the shared layout\n", id)
			continue
		}
		done, err := m.legacy.MoveTo(ctx, m.dst, id)
		switch {
		case err != nil:
			keysFailed(m.stderr, "moving "+id, err)
			failed++
		case !done:
			fmt.Fprintf(m.stdout, "%s is already in strategy %s\n", id, m.name)
		default:
			rec := byID[id]
			moved++
			m.audit.Write(audit.Event{Event: audit.KeyMigrated, KeyID: id, Subject: rec.Name, Strategy: m.name, Detail: "from the shared redis layout"})
			fmt.Fprintf(m.stdout, "moved %s (name %s, prefix %s, %s) into strategy %s\n", id, rec.Name, rec.Prefix, keyStatus(rec, now), m.name)
		}
	}
	left, err := m.legacy.Count(ctx)
	if err != nil {
		return keysFailed(m.stderr, "counting keys left in the shared layout", err)
	}
	verb := "moved"
	if m.dryRun {
		verb = "moved nothing (dry run);"
		moved = 0
	}
	fmt.Fprintf(m.stdout, "%s %d, skipped %d; %d keys left in the shared layout\n", verb, moved, skipped, left)
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}

// otherStrategies maps each prefix to the other redis api_key strategies
// of the config that accept it.
func (m keyMigration) otherStrategies() map[string][]string {
	others := map[string][]string{}
	for n, sc := range m.cfg.Strategies {
		if n == m.name || sc == nil || sc.Type != "api_key" || sc.Store != "redis" {
			continue
		}
		for _, p := range sc.Prefixes {
			others[p] = append(others[p], n)
		}
	}
	for _, names := range others {
		sort.Strings(names)
	}
	return others
}

// skip says why rec is not moved, or "".
func (m keyMigration) skip(rec *apikey.Record, others map[string][]string) string {
	if !slices.Contains(m.sc.Prefixes, rec.Prefix) {
		return fmt.Sprintf("prefix %s is not one of strategy %s's prefixes", rec.Prefix, m.name)
	}
	if o := others[rec.Prefix]; len(o) > 0 && len(m.ids) == 0 {
		return fmt.Sprintf("strategy %s also accepts prefix %s, so the key may have been made for it; if it was made for %s, name it: keys migrate -strategy %s %s",
			strings.Join(o, ", "), rec.Prefix, m.name, m.name, rec.ID)
	}
	return ""
}

// noteLegacyKeys tells whoever lists keys that some are still in the shared
// layout of earlier versions, where no strategy accepts them.
func noteLegacyKeys(ctx context.Context, rc redis.UniversalClient, name string, stderr io.Writer) {
	n, err := apikey.NewLegacyStore(rc).Count(ctx)
	if err != nil || n == 0 {
		return
	}
	fmt.Fprintf(stderr, "note: %d keys are still in the shared redis layout of earlier versions, where no strategy accepts them; see them with `authgateway keys migrate -strategy %s -dry-run`\n", n, name)
}
