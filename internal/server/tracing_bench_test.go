package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/authgateway/authgateway/internal/tokens"
)

// BenchmarkTracing is BenchmarkGatewayJWT's jwt route with tracing off and
// on at two sample ratios. The spans are exported over OTLP/HTTP to a
// sink that reads and discards them (the collector's cost is not the
// gateway's). Compare off with BenchmarkGatewayJWT/jwt of the code before
// tracing, in the same run.
func BenchmarkTracing(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	}))
	defer sink.Close()
	for _, tc := range []struct{ name, tracing string }{
		{"off", ""},
		{"ratio0.01", "tracing: {otlp_endpoint: " + sink.URL + ", sample_ratio: 0.01}\n"},
		{"ratio1", "tracing: {otlp_endpoint: " + sink.URL + ", sample_ratio: 1}\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
			defer up.Close()
			app := jwtAppWith(b, tc.tracing, `  - {name: api, path: /api, upstream: "`+up.URL+`", strategies: [jwt]}
`)
			tok, _, _, _ := app.Issuer().Access(tokens.AccessClaims{Subject: "alice", Roles: []string{"admin"}})
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/x", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				app.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
			b.StopTimer()
			b.ReportMetric(droppedSpans(b, app), "dropped")
		})
	}
}

// droppedSpans reads authgateway_trace_spans_dropped_total.
func droppedSpans(tb testing.TB, app *App) float64 {
	mfs, err := app.Metrics.Registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "authgateway_trace_spans_dropped_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
