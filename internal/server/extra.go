package server

import (
	"context"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
)

// extraStrategies builds the strategy types that live outside package
// strategies (api_key, oauth2, jwt with jwks_url). Resources they hold are
// released with the generation.
func (a *App) extraStrategies(ctx context.Context, gen *generation) map[string]func(string, *config.Strategy) (strategies.Strategy, error) {
	return map[string]func(string, *config.Strategy) (strategies.Strategy, error){}
}
