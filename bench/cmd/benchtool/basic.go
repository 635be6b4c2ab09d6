package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"
)

// Basic scenario: benchBasicUsers users of an htpasswd file at
// benchBasicCost, each sending its own credentials.
const (
	benchBasicUsers = 100
	benchBasicCost  = 10
)

// basicScenario protects /api with a basic strategy. The harness's check
// of every credential at setup verifies each one once (bcrypt), so the
// warm-up and the measured run are answered from the verified-credential
// cache: what a script calling again and again costs.
func basicScenario() *scenario {
	return &scenario{
		name: "gw-basic-cached", target: targetGateway, path: pathAPI, goal: goalBasic,
		// A rotating short header, like Basic's: the closest bare row.
		baseline: "bare-proxy-apikey",
		desc:     fmt.Sprintf("gateway, basic strategy, htpasswd of %d users at bcrypt cost %d, each user's Authorization: Basic in turn (after setup: verified-credential cache hits)", benchBasicUsers, benchBasicCost),
		gateway: func(ctx context.Context, e *env, c *gwConfig) error {
			file := filepath.Join(e.dir, "htpasswd")
			if err := writeBenchHtpasswd(ctx, e, file); err != nil {
				return err
			}
			c.Strategies["scripts"] = map[string]any{"type": "basic", "htpasswd_file": file, "roles": []string{"service"}}
			c.Routes = append(c.Routes, map[string]any{
				"name": "api", "path": "/api", "upstream": e.upstream,
				"strategies": []string{"scripts"}, "roles": []string{"service"},
			})
			return nil
		},
		creds: func(_ context.Context, e *env, _ string) (*creds, error) {
			c := &creds{header: "Authorization"}
			for i := range benchBasicUsers {
				user, pass := benchBasicUser(e, i)
				c.values = append(c.values, "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
			}
			return c, nil
		},
	}
}

// benchBasicUser is user i and its password, derived from the run's
// directory: the config edit and the credentials agree without sharing state.
func benchBasicUser(e *env, i int) (user, pass string) {
	sum := sha256.Sum256([]byte(e.dir))
	return fmt.Sprintf("user-%03d", i), fmt.Sprintf("pw-%d-%x", i, sum[:8])
}

// writeBenchHtpasswd writes the users' htpasswd file once per run.
func writeBenchHtpasswd(ctx context.Context, e *env, file string) error {
	if _, err := os.Stat(file); err == nil {
		return nil
	}
	lines := make([]string, benchBasicUsers)
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range benchBasicUsers {
		g.Go(func() error {
			user, pass := benchBasicUser(e, i)
			h, err := bcrypt.GenerateFromPassword([]byte(pass), benchBasicCost)
			if err != nil {
				return err
			}
			lines[i] = user + ":" + string(h)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("hashing the bench users' passwords: %w", err)
	}
	return os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}
