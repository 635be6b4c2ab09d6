package strategies

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/authgateway/authgateway/internal/config"
)

// Deps are the shared parts strategies are built with.
type Deps struct {
	Logger *slog.Logger
	// TokenKeys verifies the gateway's own tokens (keys: tokens).
	TokenKeys KeySource
	// HTTPClient is for calls to providers (JWKS, introspection): it must have
	// a timeout and must not follow redirects.
	HTTPClient *http.Client
	// Revocations is the access-token denylist (logout), may be nil.
	Revocations Revocations
	// OnCache, when set, is told of cache lookups by cache name (metrics).
	OnCache func(cache string, hit bool)
	// Extra builds strategy types this package does not know (api_key,
	// oauth2 live in their own packages to keep dependencies apart).
	Extra map[string]func(name string, s *config.Strategy) (Strategy, error)
}

// Build constructs every configured strategy by name. Errors carry the
// strategy's config path for file:line reporting.
func Build(cfg *config.Config, deps Deps) (map[string]Strategy, error) {
	names := make([]string, 0, len(cfg.Strategies))
	for n := range cfg.Strategies {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]Strategy, len(names))
	for _, name := range names {
		sc := cfg.Strategies[name]
		s, err := build(cfg, name, sc, deps)
		if err != nil {
			return nil, config.Errors{cfg.Problem("strategies."+name, "%v", err)}
		}
		out[name] = s
	}
	return out, nil
}

func build(cfg *config.Config, name string, sc *config.Strategy, deps Deps) (Strategy, error) {
	if sc.Type == "jwt" {
		var keys KeySource
		var maxLifetime time.Duration
		switch {
		case sc.Keys == "tokens":
			keys = deps.TokenKeys
			// Our own tokens never live longer than tokens.access_ttl: a
			// longer one was not minted by us as an access token.
			if sc.Issuer == cfg.Tokens.Issuer {
				maxLifetime = cfg.Tokens.AccessTTL.D()
			}
		case sc.JWKSURL != "":
			f := deps.Extra["jwks"]
			if f == nil {
				return nil, fmt.Errorf("jwks_url is not supported in this build")
			}
			s, err := f(name, sc)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
		if keys == nil {
			return nil, fmt.Errorf("no verification keys available")
		}
		return NewJWT(JWTOptions{
			Name: name, Keys: keys, Algorithms: sc.Algorithms,
			Issuer: sc.Issuer, Audience: sc.Audience, Leeway: sc.Leeway.D(),
			MaxLifetime: maxLifetime, RolesClaim: sc.RolesClaim, ScopesClaim: sc.ScopesClaim,
			EmailClaim: sc.EmailClaim, Cookie: sc.Cookie, Revocations: deps.Revocations,
			OnCache: cacheHook(deps.OnCache, "jwt_tokens"),
		})
	}
	f := deps.Extra[sc.Type]
	if f == nil {
		return nil, fmt.Errorf("strategy type %q is not available in this build", sc.Type)
	}
	return f(name, sc)
}

// cacheHook binds a cache name to an OnCache callback (nil stays nil).
func cacheHook(f func(string, bool), name string) func(bool) {
	if f == nil {
		return nil
	}
	return func(hit bool) { f(name, hit) }
}
