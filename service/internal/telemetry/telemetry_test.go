package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Off (the default), Setup installs no provider: spans are no-ops that cost nothing. (Run
// before the tests that install one: Go runs them in file order.)
func TestSetupOff(t *testing.T) {
	shutdown, on, err := Setup(context.Background(), func(string) string { return "" }, "test")
	if err != nil || on {
		t.Fatalf("Setup: on=%v err=%v", on, err)
	}
	defer shutdown(context.Background())
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Error("an SDK tracer provider installed with tracing off")
	}
}

func TestEnabled(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false}, // nobody asked: no spans, no exporter dialling localhost:4318
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false},
	} {
		if got := Enabled(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("Enabled(%v) = %v, want %v", c.env, got, c.want)
		}
	}
}

// recorder installs an SDK tracer provider that keeps its spans in memory.
func recorder(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	return rec
}

// A span started by the consumer of a message published through a real NATS server is the
// child of the producer's span: the trace crosses the queue.
func TestNATSPropagation(t *testing.T) {
	rec := recorder(t)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("jobs")
	if err != nil {
		t.Fatal(err)
	}

	root, rootSpan := Tracer().Start(context.Background(), "POST /jobs")
	msg := nats.NewMsg("jobs")
	_, prod := Produce(root, "job submit", msg)
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	prod.End()
	rootSpan.End()

	got, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("traceparent") == "" {
		t.Fatalf("no traceparent in the delivered headers: %v", got.Header)
	}
	_, cons := Consume(context.Background(), "job run", got.Header)
	cons.End()

	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	run, submit := byName["job run"], byName["job submit"]
	if run.SpanContext().TraceID() != rootSpan.SpanContext().TraceID() {
		t.Errorf("the worker's span is in trace %s, the request's is %s", run.SpanContext().TraceID(), rootSpan.SpanContext().TraceID())
	}
	if run.Parent().SpanID() != submit.SpanContext().SpanID() || !run.Parent().IsRemote() {
		t.Errorf("the worker's span's parent is %v, want the publisher's span %s (remote)", run.Parent(), submit.SpanContext().SpanID())
	}
	if run.SpanKind() != trace.SpanKindConsumer || submit.SpanKind() != trace.SpanKindProducer {
		t.Errorf("kinds %v, %v", submit.SpanKind(), run.SpanKind())
	}
}

// A message without a trace context (published by an older release) starts a new trace.
func TestExtractWithoutContext(t *testing.T) {
	recorder(t)
	for _, h := range []nats.Header{nil, {}, {"traceparent": {"garbage"}}} {
		ctx := ExtractNATS(context.Background(), h)
		if trace.SpanContextFromContext(ctx).IsValid() {
			t.Errorf("%v gave a span context", h)
		}
	}
	// Written by an HTTP-minded publisher (canonical case): still read.
	h := nats.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	if sc := trace.SpanContextFromContext(ExtractNATS(context.Background(), h)); sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("Traceparent not read: %v", sc)
	}
}

func TestInjectHTTP(t *testing.T) {
	recorder(t)
	ctx, span := Tracer().Start(context.Background(), "deliver")
	defer span.End()
	h := http.Header{}
	InjectHTTP(ctx, h)
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	if got := h.Get("traceparent"); got != want {
		t.Errorf("traceparent %q, want %q", got, want)
	}
}

func TestLogHandler(t *testing.T) {
	recorder(t)
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("request_id", "r1")
	log.InfoContext(context.Background(), "no span")
	ctx, span := Tracer().Start(context.Background(), "req")
	log.InfoContext(ctx, "in span")
	span.End()

	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if _, ok := lines[0]["trace_id"]; ok {
		t.Errorf("a record without a span has a trace_id: %v", lines[0])
	}
	if lines[1]["trace_id"] != span.SpanContext().TraceID().String() || lines[1]["span_id"] != span.SpanContext().SpanID().String() || lines[1]["request_id"] != "r1" {
		t.Errorf("record in a span: %v", lines[1])
	}
}
