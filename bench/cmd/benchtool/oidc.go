package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

// The oauth2 scenario's authorization server: oidctest's zitadel example OP,
// with benchServiceClients clients minting benchTokensPerClient opaque
// client-credentials tokens each.
const (
	benchServiceClients  = 100
	benchTokensPerClient = 10
	// benchOPTokenTTL outlives any run, so a token never expires mid-run
	// and the introspection cache (cache_ttl) alone decides re-fetches.
	benchOPTokenTTL = 2 * time.Hour
	benchCacheTTL   = "5m"
)

func oauth2Scenario(name string) *scenario {
	return &scenario{
		name: name, target: targetGateway, path: pathAPI, baseline: "bare-proxy-bearer", goal: goalAuth,
		desc: fmt.Sprintf("gateway, oauth2 strategy, introspection_url of a real OP (zitadel example OP, in the harness process), cache_ttl %s, %d distinct opaque client-credentials tokens of %d clients (after warm-up: introspection cache hits)",
			benchCacheTTL, benchServiceClients*benchTokensPerClient, benchServiceClients),
		gateway: func(_ context.Context, e *env, c *gwConfig) error {
			op, err := e.authServer()
			if err != nil {
				return err
			}
			c.Strategies["oauth2"] = map[string]any{
				"type": "oauth2", "introspection_url": op.introspectionURL, "issuer": op.issuer,
				"client_id": oidctest.GatewayClientID, "client_secret": oidctest.GatewayClientSecret,
				"audience": oidctest.GatewayClientID, "cache_ttl": benchCacheTTL,
			}
			c.Routes = append(c.Routes, map[string]any{
				"name": "api", "path": "/api", "upstream": e.upstream,
				"strategies": []string{"oauth2"}, "roles": []string{"service"},
			})
			return nil
		},
		creds: func(ctx context.Context, e *env, _ string) (*creds, error) {
			op, err := e.authServer()
			if err != nil {
				return nil, err
			}
			toks, err := op.mint(ctx, benchServiceClients, benchTokensPerClient)
			if err != nil {
				return nil, err
			}
			values := make([]string, len(toks))
			for i, t := range toks {
				values[i] = "Bearer " + t
			}
			return &creds{header: "Authorization", values: values,
				calls: &counter{what: "introspection calls to the OP", read: op.p.IntrospectionRequests}}, nil
		},
	}
}

// authServer is the running OP.
type authServer struct {
	issuer, introspectionURL string
	p                        *oidctest.Provider
	tb                       *opTB

	// mu guards redirects: the login gateways' callbacks registered so far.
	mu        sync.Mutex
	redirects []string
}

// authServer starts the OP the first time a scenario asks for it.
func (e *env) authServer() (*authServer, error) {
	if e.op != nil {
		return e.op, nil
	}
	// The example OP logs every request it serves through slog's
	// process-wide default logger; the harness's own progress goes to
	// stderr with fmt, so the OP's log is dropped rather than interleaved.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	clients := []oidctest.Client{{ID: oidctest.GatewayClientID, Secret: oidctest.GatewayClientSecret, Introspect: true}}
	for i := range benchServiceClients {
		c := oidctest.Client{ID: serviceClientID(i), Secret: serviceClientID(i) + "-secret", ClientCredentials: true,
			Audience: []string{oidctest.GatewayClientID}, Roles: []string{"service"}}
		if i%10 == 0 {
			c.Roles = append(c.Roles, "admin")
		}
		clients = append(clients, c)
	}
	users := make([]oidctest.User, benchLoginUsers)
	for i := range users {
		users[i] = loginUser(i)
	}
	tb := &opTB{}
	var p *oidctest.Provider
	if err := tb.run(func() {
		p = oidctest.Start(tb, oidctest.Options{AccessTokenTTL: benchOPTokenTTL, Clients: clients, Users: users})
	}); err != nil {
		tb.cleanup()
		return nil, fmt.Errorf("starting the authorization server: %w", err)
	}
	e.op = &authServer{issuer: p.Issuer, introspectionURL: p.IntrospectionURL, p: p, tb: tb}
	return e.op, nil
}

func serviceClientID(i int) string { return "svc-" + strconv.Itoa(i) }

// stop shuts the OP down (idempotent; nil-safe).
func (a *authServer) stop() {
	if a != nil && a.tb != nil {
		a.tb.cleanup()
	}
}

// mint gets perClient opaque tokens for each of clients service clients
// with the client-credentials grant, as a service would.
func (a *authServer) mint(ctx context.Context, clients, perClient int) ([]string, error) {
	n := clients * perClient
	toks := make([]string, n)
	g, ctx := errgroup.WithContext(ctx)
	workers := max(runtime.GOMAXPROCS(0), 4)
	for w := range workers {
		g.Go(func() error {
			for i := w; i < n; i += workers {
				if err := ctx.Err(); err != nil {
					return err
				}
				id := serviceClientID(i % clients)
				scopes := []string{"items:read"}
				if i%10 == 0 {
					scopes = append(scopes, "items:write")
				}
				if err := a.tb.run(func() {
					toks[i] = a.p.ClientCredentialsToken(a.tb, id, id+"-secret", scopes...)
				}); err != nil {
					return fmt.Errorf("minting token %d: %w", i, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return toks, nil
}

// opTB lets the harness use oidctest outside a test. oidctest calls only
// Helper, Cleanup and Fatalf on its testing.TB (Fatal, Errorf, Logf and
// friends are covered too); testing.TB has an unexported method, so the
// interface is embedded, nil, to satisfy it: a method not overridden here
// would panic, which is what we want if oidctest starts to need one.
//
// Fatalf panics with a fatalError; run turns that back into an error, so a
// provider that cannot start or mint a token fails the scenario, not the
// harness. Like testing.T, Fatalf must be called on the goroutine of run.
type opTB struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
}

type fatalError struct{ err error }

func (t *opTB) Helper()      {}
func (t *opTB) Name() string { return "benchtool" }

func (t *opTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *opTB) Fatalf(format string, args ...any) {
	panic(fatalError{fmt.Errorf(format, args...)})
}

func (t *opTB) Fatal(args ...any) { panic(fatalError{errors.New(fmt.Sprint(args...))}) }
func (t *opTB) FailNow()          { panic(fatalError{errors.New("FailNow")}) }
func (t *opTB) Errorf(format string, args ...any) {
	panic(fatalError{fmt.Errorf(format, args...)})
}
func (t *opTB) Error(args ...any)               { panic(fatalError{errors.New(fmt.Sprint(args...))}) }
func (t *opTB) Logf(format string, args ...any) {}
func (t *opTB) Log(args ...any)                 {}

// run calls f and returns the error of a Fatalf that f made.
func (t *opTB) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fe.err
		}
	}()
	f()
	return nil
}

// cleanup runs the registered cleanups, last first, once.
func (t *opTB) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
