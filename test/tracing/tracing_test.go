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
	"os"
	"strings"
	"testing"
	"time"

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
func start(t *testing.T) *servicebin.Service {
	t.Helper()
	bin, err := servicebin.Build(tmp)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := servicebin.Start(bin, t.TempDir(), "--workers", "1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc
}
