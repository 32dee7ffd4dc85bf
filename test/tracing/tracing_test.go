// Package tracing_test shows one request's trace end to end: the readocr binary, configured by
// the standard OTEL_* variables only, exports its spans over OTLP/HTTP to a real OTLP receiver
// on loopback (the OpenTelemetry Collector's own otlpreceiver component, run in the test with a
// sink as its next consumer), and the test prints the trace as a tree.
//
// The Collector's receiver is the component every Collector distribution runs to accept OTLP,
// so what it accepts is what a deployed Collector accepts; it builds from the Go module proxy
// (no binary download, no image), and in the test it needs no configuration file.
package tracing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/readocr/readocr/internal/testsupport/servicebin"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// receiver starts the Collector's OTLP receiver (HTTP only) on a loopback port and returns its
// address and the sink its traces go to.
func receiver(t *testing.T) (string, *consumertest.TracesSink) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = addr
	sink := new(consumertest.TracesSink)
	r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return addr, sink
}

type span struct {
	name, id, parent string
	start, end       time.Time
	attrs            map[string]any
}

// spansOf are the spans of trace id the sink holds, and the service name they came with.
func spansOf(sink *consumertest.TracesSink, id string) (out []span, service string) {
	for _, td := range sink.AllTraces() {
		for i := range td.ResourceSpans().Len() {
			rs := td.ResourceSpans().At(i)
			if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
				service = v.Str()
			}
			for j := range rs.ScopeSpans().Len() {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := range ss.Len() {
					s := ss.At(k)
					if s.TraceID().String() != id {
						continue
					}
					out = append(out, span{name: s.Name(), id: s.SpanID().String(), parent: s.ParentSpanID().String(),
						start: s.StartTimestamp().AsTime(), end: s.EndTimestamp().AsTime(), attrs: s.Attributes().AsRaw()})
				}
			}
		}
	}
	return out, service
}

// tree prints spans as an indented tree from the span whose parent is root.
func tree(spans []span, root string, depth int, b *strings.Builder) {
	for _, s := range spans {
		if s.parent == root {
			fmt.Fprintf(b, "%s%-*s %8.2f ms\n", strings.Repeat("  ", depth), 30-2*depth, s.name, float64(s.end.Sub(s.start).Microseconds())/1000)
			tree(spans, s.id, depth+1, b)
		}
	}
}

func TestRequestTraceReachesOTLPReceiver(t *testing.T) {
	addr, sink := receiver(t)
	// Only the standard variables: the exporter reads them itself.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "readocr-e2e")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // ms: export soon after the request
	svc := start(t)

	const trace, caller = "5bf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7"
	body, _ := json.Marshal(map[string]string{"image": base64.StdEncoding.EncodeToString(testimages.Get(t, "phototest.tif").Bytes)})
	req, _ := http.NewRequest(http.MethodPost, svc.URL+"/read_ocr", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+trace+"-"+caller+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /read_ocr: %s", resp.Status)
	}

	want := []string{"POST /read_ocr", "decode", "admit", "render", "recognise", "recognise page", "encode"}
	var spans []span
	var service string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if spans, service = spansOf(sink, trace); len(spans) >= len(want) {
			break
		}
	}
	var b strings.Builder
	tree(spans, caller, 0, &b)
	t.Logf("trace %s from service %q, as the OTLP receiver got it:\n%s", trace, service, b.String())
	if service != "readocr-e2e" {
		t.Errorf("service.name %q, want OTEL_SERVICE_NAME's", service)
	}
	got := map[string]span{}
	for _, s := range spans {
		got[s.name] = s
	}
	for _, name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("no %q span reached the receiver", name)
		}
	}
	if got["POST /read_ocr"].parent != caller {
		t.Errorf("the request's span is not the caller's child")
	}
	if r := got["POST /read_ocr"].attrs["http.route"]; r != "/read_ocr" {
		t.Errorf("http.route %v", r)
	}
	// The service's log line of the request names the trace.
	if !strings.Contains(svc.Log.String(), `"trace_id":"`+trace+`"`) {
		t.Errorf("no log line names trace %s", trace)
	}
}

// One job's trace across processes, as the OTLP receiver gets it: an API process (--role api)
// takes POST /jobs and queues it on a real NATS server, a worker process (--role worker) runs
// it and posts its webhook; the worker's spans join the caller's trace through the message's
// headers, and the webhook's receiver is handed the delivery's span as its traceparent.
func TestJobTraceAcrossTheQueue(t *testing.T) {
	addr, sink := receiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "readocr-e2e")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	callback := make(chan string, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case callback <- r.Header.Get("traceparent"):
		default:
		}
	}))
	defer hook.Close()
	api := start(t, "--role", "api", "--nats-url", ns.ClientURL(), "--allow-private-urls", "--webhook-secret", "test-secret")
	worker := start(t, "--role", "worker", "--nats-url", ns.ClientURL(), "--allow-private-urls", "--webhook-secret", "test-secret")

	const trace, caller = "7bf92f3577b34da6a3ce929d0e0e4736", "20f067aa0ba902b7"
	body, _ := json.Marshal(map[string]string{"image": base64.StdEncoding.EncodeToString(testimages.Get(t, "phototest.tif").Bytes),
		"callback_url": hook.URL + "/done"})
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+trace+"-"+caller+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /jobs: %s", resp.Status)
	}
	var traceparent string
	select {
	case traceparent = <-callback:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no callback in 2 minutes; worker log:\n%s", worker.Log.String())
	}

	want := []string{"POST /jobs", "job submit", "job run", "decode", "recognise", "recognise page", "encode", "webhook deliver"}
	got := map[string]span{}
	var spans []span
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		spans, _ = spansOf(sink, trace)
		for _, s := range spans {
			got[s.name] = s
		}
		if len(got) >= len(want) && got["webhook deliver"].id != "" {
			break
		}
	}
	var b strings.Builder
	tree(spans, caller, 0, &b)
	t.Logf("job trace %s across two processes and NATS, as the OTLP receiver got it:\n%s", trace, b.String())
	for _, name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("no %q span reached the receiver", name)
		}
	}
	for child, parent := range map[string]string{"job submit": "POST /jobs", "job run": "job submit", "recognise": "job run", "webhook deliver": "job run"} {
		if got[child].parent != got[parent].id {
			t.Errorf("%q's parent is %s, want %q (%s)", child, got[child].parent, parent, got[parent].id)
		}
	}
	if w := "00-" + trace + "-" + got["webhook deliver"].id + "-01"; traceparent != w {
		t.Errorf("the callback's traceparent %q, want %q", traceparent, w)
	}
	if !strings.Contains(api.Log.String(), `"trace_id":"`+trace+`"`) {
		t.Errorf("the API's log does not name trace %s", trace)
	}
}

// The binary without OTEL_* variables traces nothing: no "tracing on", no trace ids in its
// log (the exporter is never made, so nothing can be sent anywhere).
func TestNoTracingUnlessConfigured(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v, ok := os.LookupEnv(k); ok {
			os.Unsetenv(k)
			t.Cleanup(func() { os.Setenv(k, v) })
		}
	}
	svc := start(t)
	req, _ := http.NewRequest(http.MethodGet, svc.URL+"/languages", nil)
	req.Header.Set("traceparent", "00-6bf92f3577b34da6a3ce929d0e0e4736-10f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	svc.Stop()
	if log := svc.Log.String(); strings.Contains(log, "tracing on") || strings.Contains(log, `"trace_id"`) {
		t.Errorf("tracing is on with no OTEL_* variable:\n%s", log)
	}
}

var tmp string

func TestMain(m *testing.M) {
	tmp, _ = os.MkdirTemp("", "readocr-tracing-")
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// start runs the binary (built once) with the test process's environment.
func start(t *testing.T, args ...string) *servicebin.Service {
	t.Helper()
	bin, err := servicebin.Build(tmp)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := servicebin.Start(bin, t.TempDir(), append([]string{"--workers", "1"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc
}
