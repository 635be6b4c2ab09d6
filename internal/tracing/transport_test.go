package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestTransportReplacesClientTrace: whether or not the request's trace is
// sampled, the upstream gets the gateway's traceparent, never the one the
// outbound request carried from the client, and no client tracestate.
func TestTransportReplacesClientTrace(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer up.Close()
	const forged = "00-11111111111111111111111111111111-2222222222222222-01"
	for _, ratio := range []float64{0, 1} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.TraceIDRatioBased(ratio)))
		tr := &Tracing{provider: tp, tracer: tp.Tracer("t"), propagator: propagation.TraceContext{}}
		ctx, span := tr.tracer.Start(context.Background(), "server")
		req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+"/x?token=secret", nil)
		req.Header.Set("Traceparent", forged)
		req.Header.Set("Tracestate", "evil=1")
		resp, err := tr.Transport("upstream", http.DefaultTransport, false).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		span.End()
		want := span.SpanContext().TraceID().String()
		tpHdr := got.Get("Traceparent")
		if tpHdr == forged || !strings.Contains(tpHdr, want) {
			t.Errorf("ratio %v: upstream traceparent %q, want trace %s", ratio, tpHdr, want)
		}
		if wantFlag := map[float64]string{0: "-00", 1: "-01"}[ratio]; !strings.HasSuffix(tpHdr, wantFlag) {
			t.Errorf("ratio %v: traceparent %q, want sampled flag %s", ratio, tpHdr, wantFlag)
		}
		if ts := got.Get("Tracestate"); ts != "" {
			t.Errorf("ratio %v: upstream tracestate %q, want the client's dropped", ratio, ts)
		}
		_ = tp.Shutdown(context.Background())
	}
	// Outside a request (no span): the request goes as it is.
	req, _ := http.NewRequest("GET", up.URL, nil)
	tp := sdktrace.NewTracerProvider()
	tr := &Tracing{provider: tp, tracer: tp.Tracer("t"), propagator: propagation.TraceContext{}}
	resp, err := tr.Transport("idp", http.DefaultTransport, true).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := got.Get("Traceparent"); h != "" {
		t.Errorf("a call outside a request carried traceparent %q", h)
	}
}
