package config

import (
	"strings"
	"testing"
	"time"
)

// TestRouteLimitAccuracy: accuracy and sync_interval are checked, each
// problem with its file and line; approximate gets a 100ms default.
func TestRouteLimitAccuracy(t *testing.T) {
	y := `routes:
  - {path: /a, upstream: "http://x", public: true, rate_limit: {limit: 5, period: 1m, accuracy: approximate}}
  - {path: /b, upstream: "http://x", public: true, rate_limit: {limit: 5, period: 1m, accuracy: fuzzy}}
  - {path: /c, upstream: "http://x", public: true, rate_limit: {limit: 5, period: 1s, accuracy: approximate, sync_interval: 1s}}
  - {path: /d, upstream: "http://x", public: true, rate_limit: {limit: 5, period: 1m, accuracy: approximate, sync_interval: -1s}}
  - {path: /e, upstream: "http://x", public: true, rate_limit: {limit: 5, period: 1m, sync_interval: 10ms}}
`
	_, err := Parse("gw.yaml", []byte(y), env(nil))
	want := []string{
		`gw.yaml:3: routes[1].rate_limit.accuracy: unknown "fuzzy" (want exact or approximate)`,
		`gw.yaml:4: routes[2].rate_limit.sync_interval: 1s must be shorter than the period (1s)`,
		`gw.yaml:5: routes[3].rate_limit.sync_interval: invalid duration "-1s": negative`,
		`gw.yaml:6: routes[4].rate_limit.sync_interval: only with accuracy: approximate`,
	}
	if err == nil {
		t.Fatal("want problems")
	}
	if got := strings.Split(err.Error(), "\n"); len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(got), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%s", w, err)
		}
	}

	cfg, err := Parse("gw.yaml", []byte(`routes:
  - {path: /a, upstream: "http://x", public: true, rate_limit: {limit: 5, period: 1m, accuracy: approximate}}
  - {path: /b, upstream: "http://x", public: true, rate_limit: {limit: 5, period: 1m}}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if rl := cfg.Routes[0].RateLimit; rl.Accuracy != "approximate" || rl.SyncInterval.D() != 100*time.Millisecond {
		t.Errorf("approximate defaults: accuracy %q, sync_interval %v; want approximate, 100ms", rl.Accuracy, rl.SyncInterval.D())
	}
	if rl := cfg.Routes[1].RateLimit; rl.Accuracy != "exact" || rl.SyncInterval != 0 {
		t.Errorf("exact defaults: accuracy %q, sync_interval %v; want exact, 0", rl.Accuracy, rl.SyncInterval.D())
	}
}
