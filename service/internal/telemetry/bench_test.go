package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

// The cost of one stage's span, what a request pays per stage (7 for a one-page image):
// off (the no-op provider, the default) and on (the SDK, sampled, to a batcher over an
// exporter that drops the spans, so that the export itself is not counted).
func BenchmarkStage(b *testing.B) {
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)
	for _, c := range []struct {
		name string
		tp   func() interface{ Shutdown(context.Context) error }
	}{
		{"off", nil},
		{"on", func() interface{ Shutdown(context.Context) error } {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			otel.SetTracerProvider(tp)
			return tp
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.tp == nil {
				otel.SetTracerProvider(noop.NewTracerProvider())
			} else {
				defer c.tp().Shutdown(context.Background())
			}
			ctx, parent := Tracer().Start(context.Background(), "request")
			defer parent.End()
			b.ReportAllocs()
			for b.Loop() {
				_, span := Stage(ctx, "decode", attribute.Int("readocr.input.bytes", 1000))
				End(span, nil)
			}
		})
	}
}
