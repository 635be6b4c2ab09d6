package server

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/config"
)

// jwtApp builds an App whose config has an HS256 token issuer and a jwt
// strategy named "jwt" (issuer i, audience a), plus the given routes YAML.
func jwtApp(tb testing.TB, routes string) *App {
	tb.Helper()
	return jwtAppWith(tb, "", routes)
}

// jwtAppWith is jwtApp with extra top-level config sections.
func jwtAppWith(tb testing.TB, extra, routes string) *App {
	tb.Helper()
	dir := tb.TempDir()
	secret := filepath.Join(dir, "s")
	if err := os.WriteFile(secret, []byte(strings.Repeat("k", 40)), 0o600); err != nil {
		tb.Fatal(err)
	}
	y := `server: {listen: "127.0.0.1:0", admin_listen: ""}
` + extra + `tokens:
  issuer: i
  audience: a
  signing_keys: [{kid: k, algorithm: HS256, secret_file: ` + secret + `}]
strategies:
  jwt: {type: jwt, issuer: i, audience: a, algorithms: [HS256], keys: tokens}
routes:
` + routes
	return appFromFile(tb, filepath.Join(dir, "c.yaml"), y)
}

// appFromFile writes the config y to path and builds an App from it (not
// started), closed when the test ends.
func appFromFile(tb testing.TB, path, y string, opts ...Option) *App {
	tb.Helper()
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	app, err := Build(context.Background(), cfg, NewLogger(cfg.Log, io.Discard), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(app.Close)
	return app
}
