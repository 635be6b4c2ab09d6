package tracing

import (
	"context"
	"errors"
	"net"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentRedis traces the Redis commands a traced request makes, one
// client span per command or pipeline, named by the command only. Not
// redisotel: it records the command's arguments by default (API key
// hashes, session ids) and starts a root span for every command of the
// gateway's background loops (failure watch, key watchers, pub/sub), where
// this hook traces only commands made within a traced request.
func (t *Tracing) InstrumentRedis(rc redis.UniversalClient) {
	if t == nil || rc == nil {
		return
	}
	rc.AddHook(redisHook{tracer: t.tracer})
}

type redisHook struct{ tracer trace.Tracer }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmd)
		}
		ctx, span := h.start(ctx, "redis "+cmd.Name())
		defer span.End()
		return record(span, next(ctx, cmd))
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmds)
		}
		ctx, span := h.start(ctx, "redis pipeline")
		span.SetAttributes(attribute.Int("db.operation.batch.size", len(cmds)))
		defer span.End()
		return record(span, next(ctx, cmds))
	}
}

func (h redisHook) start(ctx context.Context, name string) (context.Context, trace.Span) {
	return h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "redis")))
}

// record marks a failed command; redis.Nil (no such key) is an answer.
func record(span trace.Span, err error) error {
	if err != nil && !errors.Is(err, redis.Nil) {
		// The error's text may quote a key; only that it failed is kept.
		span.SetStatus(codes.Error, "redis error")
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			span.SetAttributes(attribute.Bool("error.timeout", true))
		}
	}
	return err
}
