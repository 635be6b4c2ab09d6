package proxy

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// startSpan opens the request's server span. A trusted proxy's
// traceparent is continued; a client's is not: anyone could otherwise
// force sampling (every request recorded, at the exporter's cost) or graft
// their requests onto another trace. Theirs starts a new trace, and the
// upstream gets the gateway's traceparent instead of the client's.
// The span's context becomes st's parent, and so the context of everything
// that st hands the request on to.
func (g *Gateway) startSpan(r *http.Request, st *reqState) trace.Span {
	ctx := st.parent
	if st.peerTrusted {
		ctx = g.opts.Tracing.Propagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := g.opts.Tracing.Tracer().Start(ctx, r.Method, g.serverSpan...)
	if sc := span.SpanContext(); sc.IsSampled() {
		st.ev.TraceID = sc.TraceID()
	}
	st.parent = ctx
	return span
}

// endSpan records what the gateway decided. The attributes are the auth
// event's, minus the path (which may carry what a client put in it) and the
// subject: never a credential, cookie, key, token or query string.
func endSpan(span trace.Span, st *reqState) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	ev := &st.ev
	name := ev.Method
	if ev.Route != "" {
		name += " " + ev.Route
	}
	span.SetName(name)
	span.SetAttributes(
		attribute.String("http.request.method", ev.Method),
		attribute.String("authgateway.route", ev.Route),
		attribute.Int("http.response.status_code", ev.Status),
		attribute.String("authgateway.outcome", ev.Outcome.String()),
		attribute.String("authgateway.request_id", ev.RequestID),
		attribute.String("client.address", ev.ClientIP.String()),
	)
	if ev.Strategy != "" {
		span.SetAttributes(attribute.String("authgateway.strategy", ev.Strategy))
	}
	if ev.Reason != "" {
		span.SetAttributes(attribute.String("authgateway.reason", ev.Reason))
	}
	if ev.Status >= 500 {
		span.SetStatus(codes.Error, strconv.Itoa(ev.Status))
	}
}
