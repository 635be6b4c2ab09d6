package e2e

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricFamilies is one scrape of the admin /metrics endpoint, parsed.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics fetches and parses the gateway's /metrics with the
// Prometheus text parser, failing the test on anything a Prometheus server
// would refuse. raw is the scraped text.
func scrapeMetrics(t *testing.T, g *Gateway) (fams metricFamilies, raw string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + g.AdminAddr + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics status = %d, want 200; body %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type = %q, want the Prometheus text format (text/plain)", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err = p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams, string(body)
}

// value is the sum over the series of family name whose labels include all
// of want: a counter's or gauge's value, a histogram's sample count. A family
// or series that does not exist yet counts as 0 (a counter not yet touched).
func (fams metricFamilies) value(name string, want map[string]string) float64 {
	fam, ok := fams[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch fam.GetType() {
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			sum += float64(m.GetHistogram().GetSampleCount())
		case dto.MetricType_UNTYPED:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// histogramSum is the sum of observations of the histogram series matching want.
func (fams metricFamilies) histogramSum(name string, want map[string]string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		if hasLabels(m, want) {
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return sum
}

// labelValues lists the values that label takes across family name.
func (fams metricFamilies) labelValues(name, label string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range fams[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && !seen[lp.GetValue()] {
				seen[lp.GetValue()] = true
				out = append(out, lp.GetValue())
			}
		}
	}
	return out
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// seriesName writes a series the way PromQL does: name{k="v",...}.
func seriesName(name string, ls map[string]string) string {
	keys := slices.Sorted(maps.Keys(ls))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, ls[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// promLabels is a shorthand for a label set: promLabels("route", "api", "status", "200").
func promLabels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestMetrics scrapes the admin /metrics before and after known traffic and
// checks that each counter moved by exactly what was sent. It runs on
// standardConfig plus a route with a tiny quota, so that the rate-limit
// counter can be driven too.
func TestMetrics(t *testing.T) {
	up := newUpstream(t, 0)
	secret := randomSecret(t)
	cfg := strings.ReplaceAll(standardConfig, "UPSTREAM", up.URL)
	cfg = strings.Replace(cfg, "routes:\n", `routes:
  - name: quota
    path: /quota
    upstream: `+up.URL+`
    strategies: [userJwt]
    rate_limit: {limit: 2, period: 1m, by: subject}
`, 1)
	g := startGateway(t, cfg, map[string]string{"ACCESS_SECRET": secret})
	reader := g.Token(t, "-sub", "alice", "-roles", "reader")
	// The same token with its signature bytes changed: a forgery.
	forged := reader[:strings.LastIndex(reader, ".")+1] + strings.Repeat("A", 43)

	before, _ := scrapeMetrics(t, g)

	// What each batch of requests must add, as got-from-the-scrape deltas.
	type want struct {
		name   string
		labels map[string]string
		delta  float64
	}
	const nAllowed, nAnon, nForged, nForbidden, nPublic, nMissing = 7, 3, 2, 2, 4, 5
	send := func(n int, raw string, wantStatus int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if got := g.Do(t, raw).Status; got != wantStatus {
				t.Fatalf("%q: status %d, want %d", firstLine(raw), got, wantStatus)
			}
		}
	}
	send(nAllowed, req("GET", "/api/orders", bearer(reader)), 200)
	send(nAnon, req("GET", "/api/orders"), 401)
	send(nForged, req("GET", "/api/orders", bearer(forged)), 401)
	send(nForbidden, req("GET", "/api/admin/users", bearer(reader)), 403)
	send(nPublic, req("GET", "/public/page"), 200)
	for i := 0; i < nMissing; i++ {
		// Every request to a different unknown path: none may become a label.
		send(1, req("GET", fmt.Sprintf("/no-such-route-%d", i)), 404)
	}
	send(2, req("GET", "/quota/x", bearer(reader)), 200)
	send(1, req("GET", "/quota/x", bearer(reader)), 429)

	after, raw := scrapeMetrics(t, g)
	wants := []want{
		{"authgateway_requests_total", promLabels("route", "api", "status", "200", "outcome", "allowed"), nAllowed},
		{"authgateway_requests_total", promLabels("route", "api", "status", "401", "outcome", "unauthenticated"), nAnon},
		{"authgateway_requests_total", promLabels("route", "api", "status", "401", "outcome", "invalid"), nForged},
		{"authgateway_requests_total", promLabels("route", "admin", "status", "403", "outcome", "forbidden"), nForbidden},
		{"authgateway_requests_total", promLabels("route", "public", "status", "200", "outcome", "public"), nPublic},
		{"authgateway_requests_total", promLabels("status", "404"), nMissing},
		{"authgateway_requests_total", promLabels("route", "quota", "status", "429"), 1},
		{"authgateway_auth_failures_total", promLabels("route", "api", "reason", "no_credentials"), nAnon},
		{"authgateway_auth_failures_total", promLabels("route", "api"), nAnon + nForged},
		{"authgateway_auth_failures_total", promLabels("route", "admin", "reason", "missing_role"), nForbidden},
		{"authgateway_rate_limited_total", nil, 1},
		// Only requests that reached an upstream are timed.
		{"authgateway_upstream_duration_seconds", promLabels("route", "api"), nAllowed},
		{"authgateway_upstream_duration_seconds", promLabels("route", "public"), nPublic},
		{"authgateway_upstream_duration_seconds", promLabels("route", "admin"), 0},
		{"authgateway_upstream_duration_seconds", promLabels("route", "quota"), 2},
	}
	for _, w := range wants {
		t.Run(seriesName(w.name, w.labels), func(t *testing.T) {
			got := after.value(w.name, w.labels) - before.value(w.name, w.labels)
			if got != w.delta {
				t.Errorf("%s rose by %v; want %v", seriesName(w.name, w.labels), got, w.delta)
			}
		})
	}
	t.Run("forged token counted under its own reason", func(t *testing.T) {
		reasons := after.labelValues("authgateway_auth_failures_total", "reason")
		var other float64
		for _, r := range reasons {
			if r != "no_credentials" {
				other += after.value("authgateway_auth_failures_total", promLabels("route", "api", "reason", r))
			}
		}
		if other != nForged {
			t.Errorf("api auth failures with a reason other than no_credentials = %v, want %d (reasons %q)", other, nForged, reasons)
		}
	})
	t.Run("upstream histogram observes real durations", func(t *testing.T) {
		if s := after.histogramSum("authgateway_upstream_duration_seconds", promLabels("route", "api")); s <= 0 {
			t.Errorf("sum of api upstream durations = %v, want > 0", s)
		}
	})
	t.Run("route label is bounded by the config", func(t *testing.T) {
		// Unknown paths must not mint label values (a scrape-size DoS).
		allowed := map[string]bool{"api": true, "admin": true, "public": true, "quota": true, "none": true, "verify": true, "gateway": true}
		for _, r := range after.labelValues("authgateway_requests_total", "route") {
			if !allowed[r] {
				t.Errorf("requests_total has route label %q, want only config route names and fixed values", r)
			}
		}
	})
	t.Run("config metrics", func(t *testing.T) {
		if got := after.value("authgateway_config_last_reload_successful", nil); got != 1 {
			t.Errorf("config_last_reload_successful = %v, want 1", got)
		}
		hash := getReadyz(t, g).ConfigHash
		if got := after.value("authgateway_config_info", promLabels("hash", hash)); got != 1 {
			t.Errorf("config_info{hash=%q} = %v, want 1 (the /readyz hash)", hash, got)
		}
		if n := len(after["authgateway_config_info"].GetMetric()); n != 1 {
			t.Errorf("config_info has %d series, want 1", n)
		}
	})
	t.Run("no credential in the scrape", func(t *testing.T) {
		for _, s := range []string{reader, forged, secret} {
			if strings.Contains(raw, s) {
				t.Errorf("/metrics contains a credential or the signing secret")
			}
		}
	})
	t.Run("not served on the main listener", func(t *testing.T) {
		resp := g.Do(t, req("GET", "/metrics"))
		if strings.Contains(string(resp.Body), "authgateway_requests_total") {
			t.Errorf("the main listener serves the metrics; they belong on the admin listener only")
		}
	})
}
