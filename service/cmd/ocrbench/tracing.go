package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
)

// tracingReport is what tracing costs: /read_ocr under the service mode's load, in rounds that
// alternate between the service with tracing off (no OTEL_* variable: the default) and the
// same binary exporting every request's spans (sampler always on) over OTLP/HTTP to a local
// receiver that reads and drops them.
type tracingReport struct {
	rounds        int
	off, on       result
	spread        [2][2]float64 // the slowest and fastest round's images/s, off and on
	exports       int64         // OTLP export requests the receiver got
	exportedBytes int64
}

// otlpSink is the local OTLP/HTTP endpoint: it accepts every export and counts it.
type otlpSink struct {
	requests, bytes atomic.Int64
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	s.requests.Add(1)
	s.bytes.Add(n)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse: all accepted
}

func runTracing(log *slog.Logger, bin string, off target, images []page, n, conc int) (*tracingReport, error) {
	sink := &otlpSink{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: sink}
	go srv.Serve(ln)
	defer srv.Close()
	on, err := startNativeEnv(log, bin, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + ln.Addr().String(), "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=readocr-bench", "OTEL_TRACES_SAMPLER=always_on",
	})
	if err != nil {
		return nil, err
	}
	defer on.stop()
	on.name = "tracing on"

	rep := &tracingReport{rounds: 4, spread: [2][2]float64{{1e9, 0}, {1e9, 0}}}
	targets, totals := []target{off, on}, []*result{&rep.off, &rep.on}
	for round := range rep.rounds {
		for _, i := range [][]int{{0, 1}, {1, 0}}[round%2] {
			r := runLoad(targets[i], images, max(n/rep.rounds, 2*conc), conc)
			t := totals[i]
			t.Images, t.Wall, t.Errors, t.CPU = t.Images+r.Images, t.Wall+r.Wall, t.Errors+r.Errors, t.CPU+r.CPU
			t.Latencies = append(t.Latencies, r.Latencies...)
			rep.spread[i] = [2]float64{min(rep.spread[i][0], r.perSecond()), max(rep.spread[i][1], r.perSecond())}
		}
	}
	on.stop() // flushes its last spans
	rep.exports, rep.exportedBytes = sink.requests.Load(), sink.bytes.Load()
	rep.off.Name = "tracing off (no OTEL_* variable)"
	rep.on.Name = "tracing on: every request's spans exported over OTLP/HTTP to a local receiver"
	return rep, nil
}

func (t *tracingReport) render(b *strings.Builder) {
	fmt.Fprintf(b, "\n### Tracing\n\n| /read_ocr, the service mode's load, %d alternating rounds | images/s | slowest-fastest round | p50 ms | p95 ms | CPU ms/image | errors |\n|---|---:|---:|---:|---:|---:|---:|\n", t.rounds)
	for i, r := range []result{t.off, t.on} {
		fmt.Fprintf(b, "| %s | %.2f | %.2f-%.2f | %d | %d | %.1f | %d |\n", r.Name, r.perSecond(), t.spread[i][0], t.spread[i][1],
			r.pct(.5).Milliseconds(), r.pct(.95).Milliseconds(), r.cpuMS(), r.Errors)
	}
	// CPU per image (the API and its workers) is what tracing adds; it holds still when other
	// load on the machine moves the throughput.
	fmt.Fprintf(b, "\nTracing on / off throughput **%.3f** (target above 0.97), CPU per image **%.3f**; the rounds with tracing off "+
		"spread over %.1f %% of their mean (the noise). The receiver got %d exports, %.1f KiB a request. Off against the build "+
		"before tracing: `make bench BEFORE=<rev>`.\n",
		t.on.perSecond()/t.off.perSecond(), t.on.cpuMS()/t.off.cpuMS(), 100*(t.spread[0][1]-t.spread[0][0])/t.off.perSecond(),
		t.exports, float64(t.exportedBytes)/1024/float64(max(t.on.Images, 1)))
}
