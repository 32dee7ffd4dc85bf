// Package telemetry is the service's OpenTelemetry tracing: off unless the standard OTEL_*
// variables ask for it, a span per request stage, the trace context carried in NATS message
// headers and on outgoing HTTP requests (webhooks), and the trace and span ids on log records.
//
// Exporters come from the SDK's autoexport, so that every exporter and setting the
// specification names (OTEL_TRACES_EXPORTER=otlp|console|none, OTEL_EXPORTER_OTLP_PROTOCOL,
// OTEL_EXPORTER_OTLP_ENDPOINT, headers, TLS...) works as users expect, with no flag of ours.
package telemetry

import (
	"context"
	"errors"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of the service's own spans.
const Scope = "github.com/readocr/readocr/service"

// Propagator is the W3C trace context and baggage: what traceparent/tracestate headers carry,
// in HTTP requests and in NATS messages alike.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// Enabled reports whether the environment asks for traces. The SDK's own default exporter is
// OTLP to localhost:4318 whenever it is set up; a service that nobody configured must not send
// spans anywhere (nor pay for them), so tracing is on only when OTEL_TRACES_EXPORTER names an
// exporter other than none, or an OTLP endpoint is given, and OTEL_SDK_DISABLED is not true.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); {
	case exp == "none":
		return false
	case exp != "":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the global tracer provider and propagator when Enabled says so, and returns
// the function that flushes and stops it (a no-op when tracing is off). The propagator is
// installed either way: a request's traceparent is still passed on to the queue and webhooks,
// so that a trace started by a caller continues in a service that exports one.
func Setup(ctx context.Context, getenv func(string) string, version string) (shutdown func(context.Context) error, on bool, err error) {
	otel.SetTextMapPropagator(Propagator)
	if !Enabled(getenv) {
		return func(context.Context) error { return nil }, false, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, false, err
	}
	// Resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over these defaults.
	res, err := resource.Merge(resource.NewSchemaless(
		semconv.ServiceName("readocr"), semconv.ServiceVersion(version)), resource.Environment())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, false, err
	}
	// The sampler is OTEL_TRACES_SAMPLER's (parentbased_always_on by default), read by the SDK.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, true, nil
}

// Tracer is the service's tracer, from the global provider (a no-op one when tracing is off).
func Tracer() trace.Tracer { return otel.Tracer(Scope) }

// Stage starts the span of one stage of a request (decode, fetch, admit, render, recognise,
// encode). End it with End, which records the error the stage returned.
func Stage(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return Tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span, marking it failed when err is not nil.
func End(span trace.Span, err error) {
	Fail(span, err)
	span.End()
}

// Fail marks span failed with err (nil: nothing), without ending it.
func Fail(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// Attribute keys of the service's own spans.
const (
	JobID    = "readocr.job.id" // a job's id: its submit, run, page and webhook spans
	PageAttr = "readocr.page"   // a page's number (1-based)
)

// TraceID is ctx's sampled trace id, "" when there is none: what an exemplar links to.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsSampled() {
		return ""
	}
	return sc.TraceID().String()
}
