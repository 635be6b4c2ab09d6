package main

import (
	"context"
	"testing"

	"github.com/authgateway/authgateway/internal/config"
)

// TestScenarioConfigsLoad pins the harness to the config schema: every
// gateway scenario's generated config must pass the gateway's own Load, so a
// schema change breaks `make test`, not the next `make bench`.
func TestScenarioConfigsLoad(t *testing.T) {
	e := &env{
		dir: t.TempDir(), upstream: "http://127.0.0.1:9", keys: map[string]map[string]any{},
		// Preset so the redis scenarios do not start servers.
		redisSingle:  &redisDeploy{url: "redis://127.0.0.1:6379"},
		redisCluster: &redisDeploy{url: "redis+cluster://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002"},
	}
	// The oauth2 scenario starts a real OP for its URLs.
	t.Cleanup(func() { e.op.stop() })
	for _, sc := range scenarios() {
		if sc.target != targetGateway {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			path, err := e.writeGatewayConfig(context.Background(), sc, "127.0.0.1:8080", t.TempDir())
			if err != nil {
				t.Fatalf("writing config: %v", err)
			}
			if _, err := config.Load(path); err != nil {
				t.Fatalf("config.Load(%s): %v", sc.name, err)
			}
		})
	}
}

func TestScenarioNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range scenarios() {
		if seen[sc.name] {
			t.Errorf("duplicate scenario %q", sc.name)
		}
		seen[sc.name] = true
	}
	for _, name := range []string{"bare-proxy", "gw-public", "gw-jwt-hs256"} {
		if !seen[name] {
			t.Errorf("scenario %q is missing: the report and the RSS phase need it", name)
		}
	}
}

func TestMintCredsHS256(t *testing.T) {
	e := &env{dir: t.TempDir(), upstream: "http://127.0.0.1:9", keys: map[string]map[string]any{}}
	sc := jwtScenario("t", "HS256", 5)
	path, err := e.writeGatewayConfig(context.Background(), sc, "127.0.0.1:8080", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := sc.creds(context.Background(), e, path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(c.values), 5; got != want {
		t.Fatalf("got %d tokens; want %d", got, want)
	}
	seen := map[string]bool{}
	for _, v := range c.values {
		if seen[v] {
			t.Errorf("duplicate token")
		}
		seen[v] = true
	}
}

func TestStats(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one", []float64{7}, 99, 7},
		{"p50 of 1..100", seq(100), 50, 50},
		{"p99 of 1..100", seq(100), 99, 99},
		{"p99.9 of 1..1000", seq(1000), 99.9, 999},
		{"max", seq(10), 100, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.values, tt.p); got != tt.want {
				t.Errorf("percentile(p%v) = %v; want %v", tt.p, got, tt.want)
			}
		})
	}
	if got, want := median([]float64{3, 1, 2}), 2.0; got != want {
		t.Errorf("median odd = %v; want %v", got, want)
	}
	if got, want := median([]float64{4, 1, 3, 2}), 2.5; got != want {
		t.Errorf("median even = %v; want %v", got, want)
	}
}

func TestEnvKnobs(t *testing.T) {
	t.Setenv("DURATION", "7")
	if d, err := envDuration("DURATION", 0); err != nil || d.Seconds() != 7 {
		t.Errorf("DURATION=7: got %v, %v; want 7s", d, err)
	}
	t.Setenv("DURATION", "soon")
	if _, err := envDuration("DURATION", 0); err == nil {
		t.Error("DURATION=soon: want an error")
	}
	t.Setenv("ROUNDS", "-1")
	if _, err := envInt("ROUNDS", 3); err == nil {
		t.Error("ROUNDS=-1: want an error")
	}
	t.Setenv("ROUNDS", "")
	if n, err := envInt("ROUNDS", 3); err != nil || n != 3 {
		t.Errorf("ROUNDS unset: got %d, %v; want 3", n, err)
	}
}

func seq(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i + 1)
	}
	return out
}
