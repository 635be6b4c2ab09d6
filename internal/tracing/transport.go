package tracing

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Transport wraps next so that a call made within a traced request is a
// client span named name, and carries the request's trace to the server
// as W3C traceparent/tracestate (replacing any the outbound request had: a
// client's own header must not pose as the gateway's). A call made outside
// a request (a key set refreshed in the background) is neither traced nor
// does it start a trace of its own. withPath adds the URL's path to the
// span's name: only for URLs the operator configured (a provider's
// introspection or key set endpoint), never a client's path.
//
// The upstream's transport (withPath false) writes the headers into the
// request it is given instead of a copy: that request is the one
// httputil.ReverseProxy built for this call alone, and a copy per request
// was a third of tracing's cost at a low sample ratio.
func (t *Tracing) Transport(name string, next http.RoundTripper, withPath bool) http.RoundTripper {
	if t == nil {
		return next
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{name: name, withPath: withPath, next: next, tracer: t.tracer, prop: t.propagator}
}

type transport struct {
	name     string
	withPath bool
	next     http.RoundTripper
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return t.next.RoundTrip(req)
	}
	if !trace.SpanFromContext(ctx).IsRecording() {
		// An unsampled trace: no span to record, but the upstream still
		// gets the trace (flagged not sampled) instead of the client's.
		out := t.outbound(req, ctx)
		return t.next.RoundTrip(out)
	}
	// Never the query: it may carry what a client sent.
	name := t.name
	if t.withPath {
		name += " " + req.Method + " " + req.URL.Host + req.URL.Path
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Host),
			attribute.String("url.scheme", req.URL.Scheme),
		))
	defer span.End()
	resp, err := t.next.RoundTrip(t.outbound(req, ctx))
	if err != nil {
		span.SetStatus(codes.Error, "request failed")
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
	}
	return resp, nil
}

// outbound is req carrying ctx's trace in place of any it had.
func (t *transport) outbound(req *http.Request, ctx context.Context) *http.Request {
	out := req
	switch {
	case t.withPath:
		out = req.Clone(ctx)
	case ctx != req.Context():
		out = req.WithContext(ctx)
	}
	out.Header.Del("Traceparent")
	out.Header.Del("Tracestate")
	t.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return out
}
