package httpapi

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/telemetry"
)

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ocr      *prometheus.HistogramVec
	pages    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	// API keys: by the key's id (the key file bounds their number), never the key.
	keyRequests  *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	limited      *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, engine *ocr.Engine, budget *membudget.Budget, ready func() bool) *metrics {
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "readocr_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.005, .025, .05, .1, .2, .35, .5, .75, 1, 2, 5, 10, 30},
		}, []string{"route"}),
		ocr: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "readocr_ocr_duration_seconds", Help: "Time in the OCR engine (queue + recognition of every page) by input source.",
			Buckets: []float64{.05, .1, .15, .2, .3, .5, .75, 1, 2, 5, 10, 30},
		}, []string{"source"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_pages_total", Help: "Pages read, by input format.",
		}, []string{"format"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_errors_total", Help: "Error responses by error code.",
		}, []string{"code"}),
		keyRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_key_requests_total", Help: "Authenticated requests by API key id.",
		}, []string{"key"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_auth_failures_total", Help: "Requests refused by authentication: missing or unknown key (401), missing scope (403).",
		}, []string{"reason"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_rate_limited_total", Help: "Requests refused with 429 by API key id and policy (rate, pages).",
		}, []string{"key", "policy"}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(m.requests, m.duration, m.ocr, m.pages, m.errors, m.keyRequests, m.authFailures, m.limited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("readocr_workers", "OCR worker slots.", func() float64 { return float64(engine.Stats().Workers) }),
		gauge("readocr_running", "Pages being recognised.", func() float64 { return float64(engine.Stats().Running) }),
		gauge("readocr_waiting", "Requests waiting for a worker.", func() float64 { return float64(engine.Stats().Waiting) }),
		gauge("readocr_clients", "Warm Tesseract clients.", func() float64 { return float64(engine.Stats().Clients) }),
		gauge("readocr_c_heap_bytes", "C heap in use by the OCR workers (Tesseract, Leptonica), as they last reported it.", func() float64 { return float64(engine.Stats().CHeap) }),
		gauge("readocr_worker_resident_bytes", "Resident memory of the OCR worker processes.", func() float64 { return float64(engine.WorkerRSS()) }),
		gauge("readocr_request_memory_bytes", "Memory reserved by requests being read, decoded or fetched.", func() float64 { return float64(budget.InUse()) }),
		gauge("readocr_request_memory_limit_bytes", "Memory that requests may reserve at once.", func() float64 { return float64(budget.Size()) }),
		gauge("readocr_ready", "1 when warm and not draining.", func() float64 {
			if ready() {
				return 1
			}
			return 0
		}),
	)
	return m
}

// observeRequest counts a request and its latency; a traced request's latency is an exemplar
// naming its trace, so that a slow bucket on a dashboard leads to a slow request's trace.
func (m *metrics) observeRequest(ctx context.Context, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	observe(ctx, m.duration.WithLabelValues(route), d.Seconds())
}

// observe records v, with ctx's trace id as its exemplar when ctx is in a sampled trace.
func observe(ctx context.Context, o prometheus.Observer, v float64) {
	if id := telemetry.TraceID(ctx); id != "" {
		if e, ok := o.(prometheus.ExemplarObserver); ok {
			e.ObserveWithExemplar(v, prometheus.Labels{"trace_id": id})
			return
		}
	}
	o.Observe(v)
}
