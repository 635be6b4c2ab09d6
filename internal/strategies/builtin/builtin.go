// Package builtin builds the strategy types the gateway ships with, from
// their config: the one place that knows them all (their packages import
// package strategies, so the switch cannot live there).
package builtin

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/strategies/apikey"
	"github.com/authgateway/authgateway/internal/strategies/basic"
	"github.com/authgateway/authgateway/internal/strategies/jwt"
	"github.com/authgateway/authgateway/internal/strategies/mtls"
	"github.com/authgateway/authgateway/internal/strategies/oauth2"
)

// New builds the strategy named name of type sc.Type.
func New(name string, sc *config.Strategy, deps strategies.Deps) (strategies.Strategy, error) {
	switch sc.Type {
	case "jwt":
		return jwt.New(name, sc, deps)
	case "api_key":
		return apikey.New(name, sc, deps)
	case "oauth2":
		return oauth2.New(name, sc, deps)
	case "basic":
		return basic.New(name, sc, deps)
	case "mtls":
		return mtls.New(name, sc, deps)
	}
	return nil, fmt.Errorf("unknown strategy type %q", sc.Type)
}

// Set is the strategies of one config, by name.
type Set map[string]strategies.Strategy

// Build constructs every configured strategy. Errors carry the strategy's
// config path for file:line reporting; what was built before is closed.
func Build(cfg *config.Config, deps strategies.Deps) (Set, error) {
	out := make(Set, len(cfg.Strategies))
	for _, name := range slices.Sorted(maps.Keys(cfg.Strategies)) {
		s, err := New(name, cfg.Strategies[name], deps)
		if err != nil {
			out.Close()
			return nil, config.Errors{cfg.Problem("strategies."+name, "%v", err)}
		}
		out[name] = s
	}
	return out, nil
}

// Start starts, in name order, every strategy that has something to start
// (strategies.Starter). An error names the strategy's config path; the
// caller closes the set.
func (s Set) Start(ctx context.Context, cfg *config.Config) error {
	for _, name := range slices.Sorted(maps.Keys(s)) {
		if st, ok := s[name].(strategies.Starter); ok {
			if err := st.Start(ctx); err != nil {
				return config.Errors{cfg.Problem("strategies."+name, "%v", err)}
			}
		}
	}
	return nil
}

// Close releases what the strategies hold (strategies.Closer).
func (s Set) Close() {
	for _, name := range slices.Sorted(maps.Keys(s)) {
		if c, ok := s[name].(strategies.Closer); ok {
			c.Close()
		}
	}
}
