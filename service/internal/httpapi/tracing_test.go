package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/jobs"
)

// With tracing on, one request is one trace: the server span (named for its route, the
// caller's traceparent its parent) and a span per stage under it; its log line carries the
// trace and span ids, and its latency bucket an exemplar naming the trace.
func TestRequestTrace(t *testing.T) {
	rec := recordSpans(t)
	h := newHarness(t, options{workers: 1, tracing: true})
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body, _ := json.Marshal(map[string]string{"image": b64(testimages.Get(t, "phototest.tif").Bytes)})
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if r := h.do(req); r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	h.get("/healthz")

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() != callerTrace {
			t.Errorf("span %q in trace %s, not the caller's", s.Name(), s.SpanContext().TraceID())
		}
		spans[s.Name()] = s
	}
	server, ok := spans["POST /read_ocr"]
	if !ok {
		t.Fatalf("no server span named for the route; spans: %v", names(rec.Ended()))
	}
	if server.Parent().SpanID().String() != callerSpan {
		t.Errorf("the server span's parent is %s, want the caller's %s", server.Parent().SpanID(), callerSpan)
	}
	for _, stage := range []string{"decode", "admit", "render", "recognise", "encode"} {
		s, ok := spans[stage]
		if !ok {
			t.Errorf("no %s span; spans: %v", stage, names(rec.Ended()))
			continue
		}
		if s.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("%s's parent is not the request's span", stage)
		}
	}
	if p, ok := spans["recognise page"]; !ok || p.Parent().SpanID() != spans["recognise"].SpanContext().SpanID() {
		t.Errorf("no page span under recognise; spans: %v", names(rec.Ended()))
	}
	if _, ok := spans["GET /healthz"]; ok {
		t.Error("a probe was traced")
	}

	var line map[string]any
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, `"path":"/read_ocr"`) {
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line["trace_id"] != callerTrace || line["span_id"] != server.SpanContext().SpanID().String() {
		t.Errorf("the access line does not name the trace and span: %v", line)
	}

	// Prometheus asks for OpenMetrics, the format with exemplars.
	req, _ = http.NewRequest(http.MethodGet, h.admin.URL+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	var found bool
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(l, `readocr_http_request_duration_seconds_bucket{route="/read_ocr"`) && strings.Contains(l, `# {trace_id="`+callerTrace+`"}`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no exemplar naming trace %s on /read_ocr's latency buckets", callerTrace)
	}
}

// recordSpans installs a tracer provider that records every span in memory, for this test.
func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	return rec
}

// A job is one trace across the queue: the caller's request, the job's message (its submit
// span the parent of the worker's run), the pipeline's stages under the run, the webhook's
// delivery under the run, and the callback's traceparent naming the delivery; the job path
// counts its document and its delivery in the metrics /read_ocr's path uses.
func TestJobTrace(t *testing.T) {
	rec := recordSpans(t)
	var mu sync.Mutex
	var callbackParent string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		callbackParent = r.Header.Get("traceparent")
		mu.Unlock()
	}))
	defer receiver.Close()
	h := newHarness(t, options{workers: 1, tracing: true, jobs: jobsConfig(), allowPrivate: true})

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body, _ := json.Marshal(map[string]any{"image": b64(testimages.Get(t, "gos_001-helloworld.png").Bytes), "callback_url": receiver.URL})
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	r := h.do(req)
	var job jobs.Job
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &job) != nil {
		t.Fatalf("POST /jobs: %d %s", r.status, r.body)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	waitFor(t, func() bool {
		for _, s := range rec.Ended() {
			spans[s.Name()] = s
		}
		return spans["webhook deliver"] != nil
	}, "the webhook's delivery span")

	parentOf := func(child, parent string) {
		t.Helper()
		c, p := spans[child], spans[parent]
		switch {
		case c == nil || p == nil:
			t.Errorf("no %q or no %q span; spans: %v", child, parent, names(rec.Ended()))
		case c.SpanContext().TraceID().String() != callerTrace:
			t.Errorf("%q is in trace %s, not the caller's", child, c.SpanContext().TraceID())
		case c.Parent().SpanID() != p.SpanContext().SpanID():
			t.Errorf("%q's parent is %s, want %q's %s", child, c.Parent().SpanID(), parent, p.SpanContext().SpanID())
		}
	}
	if s := spans["POST /jobs"]; s == nil || s.Parent().SpanID().String() != callerSpan {
		t.Errorf("the server span is not the caller's child; spans: %v", names(rec.Ended()))
	}
	parentOf("job submit", "POST /jobs")
	parentOf("job run", "job submit")
	for _, stage := range []string{"decode", "render", "recognise", "encode"} {
		parentOf(stage, "job run")
	}
	parentOf("webhook deliver", "job run")
	for _, s := range []string{"job submit", "job run", "webhook deliver"} {
		if sp := spans[s]; sp != nil && !slices.Contains(sp.Attributes(), attribute.String("readocr.job.id", job.ID)) {
			t.Errorf("%q has no readocr.job.id: %v", s, sp.Attributes())
		}
	}
	mu.Lock()
	want := "00-" + callerTrace + "-" + spans["webhook deliver"].SpanContext().SpanID().String() + "-01"
	if callbackParent != want {
		t.Errorf("the callback's traceparent is %q, want %q (the delivery's span)", callbackParent, want)
	}
	mu.Unlock()

	m := adminGet(t, h, "/metrics")
	for _, want := range []string{`readocr_documents_total{outcome="ok",path="job"} 1`, `readocr_webhook_deliveries_total{outcome="delivered"} 1`,
		`readocr_pages_total{format="png"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// The work's metrics count what a request read, alike for every path: documents by outcome,
// pages, each page's wait for a worker; every series a dashboard reads is there from the start.
func TestWorkMetrics(t *testing.T) {
	h := newHarness(t, options{workers: 1})
	before := adminGet(t, h, "/metrics")
	for _, want := range []string{`readocr_documents_total{outcome="ok",path="job"} 0`, `readocr_webhook_deliveries_total{outcome="dead"} 0`,
		`readocr_memory_refusals_total{path="sync"} 0`, "readocr_worker_replacements_total 0", `readocr_queue_wait_seconds_count{kind="batch"} 0`} {
		if !strings.Contains(before, want) {
			t.Errorf("before any request, /metrics lacks %q", want)
		}
	}
	h.postJSON(map[string]string{"image": b64(testimages.Get(t, "phototest.tif").Bytes)})
	h.postJSON(map[string]string{"image": "bm90IGFuIGltYWdl"})
	m := adminGet(t, h, "/metrics")
	for _, want := range []string{`readocr_documents_total{outcome="ok",path="sync"} 1`, `readocr_documents_total{outcome="error",path="sync"} 1`,
		`readocr_pages_total{format="tiff"} 1`, `readocr_queue_wait_seconds_count{kind="single"} 1`, `readocr_ocr_duration_seconds_count{source="base64"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
