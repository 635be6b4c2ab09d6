package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// TestRedisErrorsOfEveryComponent: authgateway_redis_errors_total counts
// the failures of every component that talks to Redis, each under its
// name: the API key store, the rate limits, the subscriptions. Before,
// only rate-limit errors were counted (Metrics.RedisError was never
// called).
func TestRedisErrorsOfEveryComponent(t *testing.T) {
	y := `server: {listen: "127.0.0.1:0", admin_listen: ""}
redis: {url: "redis://127.0.0.1:1/0?dial_timeout=100ms"}
strategies:
  keys: {type: api_key, prefixes: [pk_live], store: redis}
routes:
  - {name: machine, path: /machine, upstream: "http://127.0.0.1:1", strategies: [keys]}
  - {name: open, path: /open, upstream: "http://127.0.0.1:1", public: true, rate_limit: {limit: 5, period: 1m}}
`
	app := appFromFile(t, filepath.Join(t.TempDir(), "c.yaml"), y)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := "pk_live_" + strings.Repeat("A", 43)
	for _, r := range []*http.Request{httptest.NewRequest("GET", "/machine/x", nil), httptest.NewRequest("GET", "/open/x", nil)} {
		r.Header.Set("X-API-Key", key)
		app.ServeHTTP(httptest.NewRecorder(), r)
	}
	poll.Until(t, 10*time.Second, "a Redis error counted for every component", func() error {
		for _, component := range []string{"apikey", "ratelimit", "pubsub"} {
			if n := redisErrors(t, app, component); n < 1 {
				return fmt.Errorf("authgateway_redis_errors_total{component=%q} = %v, want at least 1", component, n)
			}
		}
		return nil
	})
}

// redisErrors reads authgateway_redis_errors_total{component} from /metrics.
func redisErrors(t *testing.T, app *App, component string) float64 {
	t.Helper()
	w := httptest.NewRecorder()
	app.AdminHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	m := regexp.MustCompile(`(?m)^authgateway_redis_errors_total\{component="` + component + `"\} (\S+)$`).FindStringSubmatch(w.Body.String())
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	return n
}
