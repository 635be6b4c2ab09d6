package server

import (
	"fmt"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/policy"
)

// compilePolicies compiles the routes' allow_if expressions, by route
// index (nil for a route without one), each distinct text once. Every
// expression that does not compile is reported, at its file and line.
func compilePolicies(cfg *config.Config) ([]*policy.Program, error) {
	progs := make([]*policy.Program, len(cfg.Routes))
	var c *policy.Compiler
	var problems config.Errors
	for i, rc := range cfg.Routes {
		if rc.AllowIf == "" {
			continue
		}
		if c == nil {
			env, err := policy.NewEnv()
			if err != nil {
				return nil, err
			}
			c = policy.NewCompiler(env)
		}
		p, err := c.Compile(rc.AllowIf)
		if err != nil {
			problems = append(problems, cfg.Problem(fmt.Sprintf("routes[%d].allow_if", i), "%v", err))
			continue
		}
		progs[i] = p
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return progs, nil
}
