package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRunTogether checks the same-instant mode: requests alternate between
// the generators, each reaches its own URL with its own credentials, and
// each generator's latencies are its own.
func TestRunTogether(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	auth := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		seen[r.URL.Path]++
		if a := r.Header.Get("Authorization"); a != "" {
			auth[r.URL.Path+" "+a] = true
		}
		mu.Unlock()
	}))
	defer srv.Close()
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("Bearer a\nBearer b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fast, err := parseTarget("fast,"+srv.URL+"/fast", 4)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := parseTarget("slow,"+srv.URL+"/slow,Authorization,"+creds+",0", 4)
	if err != nil {
		t.Fatal(err)
	}
	res := runTogether(context.Background(), []*generator{fast.g, slow.g}, 200, 500*time.Millisecond, 4)
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	if seen["/fast"] != 50 || seen["/slow"] != 50 {
		t.Errorf("requests %v, want 50 to each of /fast and /slow", seen)
	}
	if len(res[0].lat) != 50 || len(res[1].lat) != 50 || len(res[0].lag) != 50 {
		t.Errorf("samples %d and %d (lags %d), want 50 each", len(res[0].lat), len(res[1].lat), len(res[0].lag))
	}
	if !auth["/slow Bearer a"] || !auth["/slow Bearer b"] || len(auth) != 2 {
		t.Errorf("credentials seen %v, want both values on /slow only", auth)
	}
	if res[0].errors != 0 || res[1].errors != 0 {
		t.Errorf("errors %d, %d", res[0].errors, res[1].errors)
	}
	// Each generator keeps its own latencies: /slow's median is ≥ 20 ms.
	if m := percentile(res[1].lat, 50); m < 20000 {
		t.Errorf("slow median %.0fus, want ≥ 20000", m)
	}
	if m := percentile(res[0].lat, 50); m >= 20000 {
		t.Errorf("fast median %.0fus is the slow route's", m)
	}
}

func TestSameProcessDiffs(t *testing.T) {
	s := &sameProcess{public: &fixedResult{SliceP99US: []float64{100, 200, 300, 400}},
		jwt: &fixedResult{SliceP99US: []float64{150, 150, 310, 900, 5}}}
	if got := s.diffs(); !slices.Equal(got, []float64{50, -50, 10, 500}) {
		t.Errorf("diffs %v, want [50 -50 10 500] (paired by slice; an unpaired slice is left out)", got)
	}
	if s.diffMedian() != 30 || s.diffMin() != -50 || s.diffMax() != 500 {
		t.Errorf("median %v min %v max %v, want 30, -50, 500", s.diffMedian(), s.diffMin(), s.diffMax())
	}
}

// TestReportFlagsDisturbedPhases: a run whose servers were starved of CPU 1,
// or whose generator ran late, says so in the report; a quiet one does not.
func TestReportFlagsDisturbedPhases(t *testing.T) {
	build := func(busyUS int64, lagUS float64) string {
		run := func() *loadResult {
			return &loadResult{Requests: 10000, DurationUS: 1_000_000, P50US: 500, P99US: 900,
				ProxyCPU: time.Duration(busyUS) * time.Microsecond * 8 / 10, UpstreamCPU: time.Duration(busyUS) * time.Microsecond * 2 / 10}
		}
		fixed := func() *fixedResult {
			return &fixedResult{Achieved: 1000, P50US: 400, P99US: 900, SliceP99US: []float64{900, 950}, LagP99US: lagUS}
		}
		var ts []*target
		for _, sc := range []*scenario{findScenario("bare-proxy"), findScenario("gw-public")} {
			ts = append(ts, &target{sc: sc, runs: []*loadResult{run(), run(), run()}, fixed: fixed(), together: fixed()})
		}
		r := &report{opts: runOpts{rounds: 3, duration: time.Second, serverCPU: "1", loadCPU: "0"}, targets: ts, fixedRate: 1000}
		return r.markdown()
	}
	quiet := build(990_000, 1050)
	if strings.Contains(quiet, "Disturbed") {
		t.Errorf("a quiet run is flagged as disturbed:\n%s", quiet)
	}
	starved := build(700_000, 1050)
	if n := strings.Count(starved, "**Disturbed:** CPU 1 busy was under 95% for bare-proxy, gw-public"); n != 1 {
		t.Errorf("a starved run is flagged %d times, want once:\n%s", n, starved)
	}
	late := build(990_000, 4200)
	if n := strings.Count(late, "**Disturbed:** the generator itself ran up to 4.20 ms late"); n != 2 {
		t.Errorf("a late generator is flagged %d times, want twice (both open-loop phases):\n%s", n, late)
	}
}
