// Package tracing exports OpenTelemetry traces over OTLP/HTTP: the
// provider the config asks for, an exporter queue that never blocks a
// request, and the instrumentation of the gateway's outbound calls (HTTP
// upstreams and identity providers, Redis). Off (no endpoint) it builds
// nothing: callers hold a nil *Tracing and skip every tracing step.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names the gateway's tracer.
const InstrumentationName = "github.com/authgateway/authgateway"

// Options configures New.
type Options struct {
	// Endpoint is the OTLP/HTTP base URL (http://jaeger:4318); spans go to
	// its /v1/traces unless the URL has a path of its own.
	Endpoint string
	// ServiceName is the resource's service.name. Default "authgateway".
	ServiceName string
	// SampleRatio is the share of new traces recorded; an incoming sampled
	// parent (from a trusted proxy) is followed whatever the ratio.
	SampleRatio float64
	// QueueSize bounds the spans waiting for export. Default 4096.
	QueueSize int
	// OnDrop is told of every span dropped because the queue was full.
	OnDrop func()
}

// Tracing is a running trace pipeline.
type Tracing struct {
	provider   *sdktrace.TracerProvider
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// New starts the pipeline; it dials nothing until the first export.
func New(ctx context.Context, o Options) (*Tracing, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing.otlp_endpoint %q: want an http(s) URL", o.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String()), otlptracehttp.WithTimeout(10 * time.Second)}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the otlp exporter: %w", err)
	}
	if o.ServiceName == "" {
		o.ServiceName = "authgateway"
	}
	res := resource.NewSchemaless(attribute.String("service.name", o.ServiceName))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
		sdktrace.WithSpanProcessor(newQueue(exp, o.QueueSize, o.OnDrop)),
	)
	return &Tracing{
		provider:   tp,
		tracer:     tp.Tracer(InstrumentationName),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}),
	}, nil
}

// Tracer returns the gateway's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// Propagator reads and writes W3C traceparent and tracestate.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.propagator }

// Shutdown exports what is queued (within ctx) and stops.
func (t *Tracing) Shutdown(ctx context.Context) error {
	return t.provider.Shutdown(ctx)
}
