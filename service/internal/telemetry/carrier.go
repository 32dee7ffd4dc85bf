package telemetry

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// natsCarrier carries the trace context in a NATS message's headers. nats.Header keeps keys
// as they are written (no canonical form, unlike http.Header), so the W3C names are written
// and read in lower case, as the specification spells them.
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string {
	if v := nats.Header(c).Get(key); v != "" {
		return v
	}
	return http.Header(c).Get(key) // a header set by an HTTP-minded client: Traceparent
}

func (c natsCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// InjectNATS writes ctx's trace context into a message's headers (traceparent, tracestate,
// baggage). A nil header is made. Call it on the message before publishing.
func InjectNATS(ctx context.Context, msg *nats.Msg) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	Propagator.Inject(ctx, natsCarrier(msg.Header))
}

// ExtractNATS returns ctx carrying the trace context a message's headers hold, if any: the
// parent of the span its consumer starts.
func ExtractNATS(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return Propagator.Extract(ctx, natsCarrier(h))
}

// InjectHTTP writes ctx's trace context into an outgoing request's headers: a webhook's
// receiver sees the job's traceparent.
func InjectHTTP(ctx context.Context, h http.Header) {
	Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Consume starts a consumer span for a message (a job taken by a worker, a webhook taken from
// the outbox), the child of the span that published it.
func Consume(ctx context.Context, name string, h nats.Header, attrs ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx = ExtractNATS(ctx, h)
	return Tracer().Start(ctx, name, append(attrs, trace.WithSpanKind(trace.SpanKindConsumer))...)
}

// Produce starts a producer span for a message about to be published, and writes its context
// into the message's headers.
func Produce(ctx context.Context, name string, msg *nats.Msg, attrs ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, span := Tracer().Start(ctx, name, append(attrs, trace.WithSpanKind(trace.SpanKindProducer))...)
	InjectNATS(ctx, msg)
	return ctx, span
}
