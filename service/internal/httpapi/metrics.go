package httpapi

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/metrics"
	"github.com/readocr/readocr/service/internal/ocr"
)

type httpMetrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	work     *metrics.Work // pages, documents, waits, memory refusals: shared with the jobs' runner
	// API keys: by the key's id (the key file bounds their number), never the key.
	keyRequests  *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	limited      *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, engine *ocr.Engine, budget *membudget.Budget, ready func() bool) *httpMetrics {
	m := &httpMetrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "readocr_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.005, .025, .05, .1, .2, .35, .5, .75, 1, 2, 5, 10, 30},
		}, []string{"route"}),
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
	m.work = metrics.New(reg, engine)
	reg.MustRegister(m.requests, m.duration, m.errors, m.keyRequests, m.authFailures, m.limited,
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
func (m *httpMetrics) observeRequest(ctx context.Context, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	metrics.Observe(ctx, m.duration.WithLabelValues(route), d.Seconds())
}

// Work is the metrics of the work done, for the jobs' runner to record what it reads as the
// request path does.
func (s *Server) Work() *metrics.Work { return s.metrics.work }
