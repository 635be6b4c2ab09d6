package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/authgateway/authgateway/internal/admin"
	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/audit"
	apikeystrategy "github.com/authgateway/authgateway/internal/strategies/apikey"
)

// adminView is what the dashboard shows: the config served now, its last
// load, and its routes as the gateway understood them.
func (a *App) adminView(context.Context) admin.View {
	cfg := a.Config()
	var health map[string][]admin.TargetStatus
	if g := a.acquire(); g != nil {
		cfg, health = g.cfg, g.upstreams.byRoute()
		g.release()
	}
	v := admin.View{ConfigPath: cfg.Path, Hash: cfg.Hash}
	if t := a.reloadAt.Load(); t != nil {
		v.ReloadAt = *t
	}
	if p := a.reloadErr.Load(); p != nil {
		v.ReloadErr = *p
	}
	for _, rc := range cfg.Routes {
		rv := admin.RouteView{
			Name: rc.Name, Host: rc.HostName, Path: rc.CanonicalPath, Methods: rc.Methods, Strategies: rc.Strategies,
			Roles: rc.Roles, Scopes: rc.Scopes, Public: rc.Public, Policy: rc.AllowIf,
		}
		if rc.UpstreamURL != nil {
			rv.Upstream = rc.UpstreamURL.Redacted()
		}
		if ts, ok := health[rc.Name]; ok {
			rv.Health = targetSnapshot(ts)
		}
		v.Routes = append(v.Routes, rv)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Strategies)) {
		if sc := cfg.Strategies[name]; sc != nil && sc.Type == "api_key" {
			v.KeyStrategies = append(v.KeyStrategies, name)
		}
	}
	return v
}

// keyManager opens the api_key strategy's store as `authgateway keys`
// does, with the manager it uses: a change reaches the running strategy
// (and every replica) the way the CLI's does.
func (a *App) keyManager(_ context.Context, name string) (admin.KeyManager, error) {
	cfg := a.Config()
	sc, ok := cfg.Strategies[name]
	if !ok || sc == nil || sc.Type != "api_key" {
		return nil, fmt.Errorf("no api_key strategy named %q", name)
	}
	store, err := apikeystrategy.Store(name, sc, a.Redis, a.Logger.With("component", "admin", "strategy", name))
	if err != nil {
		return nil, err
	}
	return apikey.NewManager(store, apikey.ManagerOptions{Prefixes: sc.Prefixes}), nil
}

func (a *App) auditKeyEvent(event, strategy, keyID, subject string) {
	name := map[string]string{"key_created": audit.KeyCreated, "key_revoked": audit.KeyRevoked, "key_rotated": audit.KeyRotated}[event]
	a.Audit.Write(audit.Event{Time: time.Now().UTC(), Event: name, Strategy: strategy, KeyID: keyID, Subject: subject, Detail: "admin dashboard"})
}

// targetSnapshot is a route's target health as it was when the view was
// made: the page never reaches into a generation it holds no reference on.
type targetSnapshot []admin.TargetStatus

func (t targetSnapshot) Targets() []admin.TargetStatus { return t }

// byRoute is every pool's target health by route name, for the dashboard.
func (u *generationUpstreams) byRoute() map[string][]admin.TargetStatus {
	out := make(map[string][]admin.TargetStatus, len(u.pools))
	for _, h := range u.health() {
		ts := admin.TargetStatus{URL: h.Target, Healthy: h.Up}
		switch {
		case !h.Up:
			ts.Detail = "down: connection refused or failing its health check"
		case !h.Probed:
			ts.Detail = "not probed yet"
		}
		out[h.Route] = append(out[h.Route], ts)
	}
	return out
}
