package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// TestApproximateLimiterLivesWithItsGeneration: an approximate quota's
// flusher runs as long as its generation: ten reloads leave one flusher
// (no goroutine leak), the counts admitted before each reload still count
// after it (the retired generation's last sync), and its syncs are counted
// in authgateway_ratelimit_syncs_total.
func TestApproximateLimiterLivesWithItsGeneration(t *testing.T) {
	s := redistest.Start(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	y := func(gen int) string {
		return fmt.Sprintf(`server: {listen: "127.0.0.1:0", admin_listen: ""}
redis: {url: %q}
routes:
  - {name: open, path: /open, upstream: %q, public: true, rate_limit: {limit: 12, period: 1m, accuracy: approximate, sync_interval: 20ms}}
  - {name: gen%d, path: /gen%d, upstream: %q, public: true}
`, s.URL(), up.URL, gen, gen, up.URL)
	}
	app := appFromFile(t, path, y(0))
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	get := func() int {
		w := httptest.NewRecorder()
		app.ServeHTTP(w, httptest.NewRequest("GET", "/open/x", nil))
		return w.Code
	}
	for i := 1; i <= 10; i++ {
		if code := get(); code != http.StatusOK {
			t.Fatalf("request %d: %d; want 200", i, code)
		}
		if err := os.WriteFile(path, []byte(y(i)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := app.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 5*time.Second, "the retired generations' flushers to stop", func() error {
		buf := make([]byte, 1<<22)
		if n := strings.Count(string(buf[:runtime.Stack(buf, true)]), "ratelimit.(*approx).run("); n != 1 {
			return fmt.Errorf("%d flushers running after 10 reloads; want 1, the current generation's", n)
		}
		return nil
	})
	// 10 admitted across the generations; the limit is 12.
	for i := 11; i <= 12; i++ {
		if code := get(); code != http.StatusOK {
			t.Fatalf("request %d: %d; want 200", i, code)
		}
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Fatalf("request 13 (limit 12, across 11 generations): %d; want 429", code)
	}
	// A sync sends what a replica counted locally: the second hit of a key
	// (the first is counted in Redis directly). A sync between two hits
	// of a key forgets it, so each look sends a pair from a new client.
	client := 0
	poll.Until(t, 5*time.Second, "syncs counted", func() error {
		client++
		for range 2 {
			r := httptest.NewRequest("GET", "/open/x", nil)
			r.RemoteAddr = fmt.Sprintf("198.51.100.%d:1234", client%250+1)
			app.ServeHTTP(httptest.NewRecorder(), r)
		}
		w := httptest.NewRecorder()
		app.AdminHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		if !regexp.MustCompile(`(?m)^authgateway_ratelimit_syncs_total\{limit="route:open",result="ok"\} [1-9]`).MatchString(w.Body.String()) {
			return fmt.Errorf("no ok sync in:\n%s", grepLines(w.Body.String(), "ratelimit_syncs"))
		}
		return nil
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
