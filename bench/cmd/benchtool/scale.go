package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/authgateway/authgateway/internal/config"
)

// The scale runs (issue 22: 100,000 API keys in Redis with 10,000 in
// rotation; 10,000 routes with hosts and method splits; 10,000 concurrent
// sessions). Each times a first pass over its rotating credentials right
// after the gateway starts (every cache cold) against a second, warm one.
const (
	scaleKeys          = 100_000
	scaleKeysRotating  = 10_000
	scaleKeyStrategy   = "scaleKeys" // its own Redis namespace
	scaleHosts         = 2_500
	scaleSessions      = 10_000
	scaleRoutesPerHost = 4 // two paths, each split into a read and a write route
)

func scaleScenarios() []*scenario {
	keys := &scenario{name: "gw-scale-apikeys-redis", target: targetGateway, path: pathAPI,
		baseline: "bare-proxy-apikey", goal: goalScale, coldPass: true,
		desc: fmt.Sprintf("gateway, api_key strategy, store: redis holding %d keys (made as `authgateway keys create` makes them, stored with apikey.RedisStore), %d of them rotating in X-API-Key (the verifier's cache holds 10,000 for 30 s)",
			scaleKeys, scaleKeysRotating),
		gateway: func(ctx context.Context, e *env, c *gwConfig) error {
			url, err := e.redisFor(ctx, false)
			if err != nil {
				return err
			}
			c.Redis = map[string]any{"url": url}
			c.Strategies[scaleKeyStrategy] = map[string]any{"type": "api_key", "header": "X-API-Key",
				"prefixes": []string{benchKeyPrefix}, "store": "redis"}
			c.Routes = append(c.Routes, map[string]any{
				"name": "api", "path": "/api", "upstream": e.upstream,
				"strategies": []string{scaleKeyStrategy}, "roles": []string{"service"},
			})
			return nil
		},
		creds: func(ctx context.Context, e *env, cfgPath string) (*creds, error) {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return nil, fmt.Errorf("loading %s: %w", cfgPath, err)
			}
			keys, recs, err := makeKeys(ctx, scaleKeys)
			if err != nil {
				return nil, err
			}
			if err := storeKeysRedis(ctx, cfg.Redis.URL, scaleKeyStrategy, recs); err != nil {
				return nil, err
			}
			// Every tenth key rotates: spread over the whole key space.
			rotating := make([]string, 0, scaleKeysRotating)
			for i := 0; i < len(keys) && len(rotating) < scaleKeysRotating; i += scaleKeys / scaleKeysRotating {
				rotating = append(rotating, keys[i])
			}
			return &creds{header: "X-API-Key", values: rotating, calls: e.redisCounter(false)}, nil
		}}

	routes := &scenario{name: "gw-scale-routes", target: targetGateway, path: pathAPI,
		baseline: "bare-proxy-hosts", goal: goalScale, coldPass: true, credMode: credPaths,
		desc: fmt.Sprintf("gateway, %d public routes: %d hosts (h-N.bench.test) × paths /svc-a and /svc-b, each split by method into a GET/HEAD route and a POST/PUT/PATCH/DELETE one; GETs rotate over the %d host × path pairs (Host header and path)",
			scaleHosts*scaleRoutesPerHost, scaleHosts, scaleHosts*2),
		gateway: func(_ context.Context, e *env, c *gwConfig) error {
			for h := range scaleHosts {
				host := scaleHost(h)
				for _, svc := range []string{"a", "b"} {
					for _, split := range []struct {
						name    string
						methods []string
					}{{"read", []string{"GET", "HEAD"}}, {"write", []string{"POST", "PUT", "PATCH", "DELETE"}}} {
						c.Routes = append(c.Routes, map[string]any{
							"name": "h" + strconv.Itoa(h) + "-" + svc + "-" + split.name, "host": host,
							"path": "/svc-" + svc, "methods": split.methods, "upstream": e.upstream, "public": true,
						})
					}
				}
			}
			return nil
		},
		creds: scaleRouteCreds}

	sessions := loginScenario("gw-scale-sessions", scaleSessions, "", "", false)
	sessions.goal, sessions.coldPass = goalScale, true
	return []*scenario{keys, routes, sessions}
}

// scaleRouteCreds are gw-scale-routes' requests: "PATH HOST" lines over
// every host's two GET routes.
func scaleRouteCreds(context.Context, *env, string) (*creds, error) {
	values := make([]string, 0, scaleHosts*2)
	for h := range scaleHosts {
		for _, svc := range []string{"a", "b"} {
			values = append(values, "/svc-"+svc+"/items?page=2 "+scaleHost(h))
		}
	}
	return &creds{header: "Host", values: values}, nil
}

func scaleHost(h int) string { return "h-" + strconv.Itoa(h) + ".bench.test" }
