// Package metrics records what reading images and documents did, whichever path asked (a
// request to POST /read_ocr or a job taken from the queue), so that both count alike: pages and
// documents read, time in the engine, waits for a worker, workers replaced, memory refusals,
// webhook deliveries and the jobs' queue. The HTTP metrics (requests by route and status) are
// the API's own (httpapi).
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/telemetry"
)

// Paths a document takes, the path label's values.
const (
	Sync = "sync" // POST /read_ocr
	Job  = "job"  // POST /jobs, read by a worker
)

// Outcomes of a webhook delivery, the outcome label's values.
const (
	Delivered = "delivered" // a 2xx from the receiver
	Failed    = "failed"    // an attempt that will be retried
	Dead      = "dead"      // given up: dead-lettered
)

// Work holds the metrics of the work done. Create it with New.
type Work struct {
	ocr       *prometheus.HistogramVec
	pages     *prometheus.CounterVec
	documents *prometheus.CounterVec
	wait      *prometheus.HistogramVec
	memory    *prometheus.CounterVec
	webhooks  *prometheus.CounterVec
	reg       *prometheus.Registry
}

// New registers the work's metrics in reg, engine's among them (waits, replacements).
func New(reg *prometheus.Registry, engine *ocr.Engine) *Work {
	w := &Work{
		reg: reg,
		ocr: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "readocr_ocr_duration_seconds", Help: "Time in the OCR engine (queue + recognition of every page) by input source.",
			Buckets: []float64{.05, .1, .15, .2, .3, .5, .75, 1, 2, 5, 10, 30},
		}, []string{"source"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_pages_total", Help: "Pages read, by input format.",
		}, []string{"format"}),
		documents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_documents_total", Help: "Images and documents read (ok) or refused or failed (error), by path (sync, job).",
		}, []string{"path", "outcome"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "readocr_queue_wait_seconds", Help: "Each page's wait for an OCR worker, by kind (single: a one-page request; batch: a document's or a job's page).",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"kind"}),
		memory: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_memory_refusals_total", Help: "Requests and jobs refused or put back because the memory requests may share was in use (server_busy), by path.",
		}, []string{"path"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "readocr_webhook_deliveries_total", Help: "Webhook delivery attempts by outcome (delivered, failed: retried, dead: given up).",
		}, []string{"outcome"}),
	}
	// Every series a dashboard or an alert reads exists from the start, at 0: rate() of a
	// series that appears with its first event misses that event.
	for _, p := range []string{Sync, Job} {
		w.memory.WithLabelValues(p)
		for _, o := range []string{"ok", "error"} {
			w.documents.WithLabelValues(p, o)
		}
	}
	for _, o := range []string{Delivered, Failed, Dead} {
		w.webhooks.WithLabelValues(o)
	}
	single, batch := w.wait.WithLabelValues("single"), w.wait.WithLabelValues("batch")
	engine.ObserveWaits(func(d time.Duration, isBatch, got bool) {
		if isBatch {
			batch.Observe(d.Seconds())
		} else {
			single.Observe(d.Seconds())
		}
	})
	reg.MustRegister(w.ocr, w.pages, w.documents, w.wait, w.memory, w.webhooks,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "readocr_worker_replacements_total", Help: "OCR worker processes replaced: died (OOM kill, crash), killed at a time limit, or stuck.",
		}, func() float64 { return float64(engine.Stats().Replaced) }))
	return w
}

// Read records one image or document read (err nil) or not, by path; source is the input's
// (url, base64, multipart...). Exemplars link the engine's time to ctx's trace.
func (w *Work) Read(ctx context.Context, path, source string, f pipeline.Facts, err error) {
	if err != nil {
		w.documents.WithLabelValues(path, "error").Inc()
		if failure.CodeOf(err) == failure.ServerBusy {
			w.memory.WithLabelValues(path).Inc()
		}
		return
	}
	w.documents.WithLabelValues(path, "ok").Inc()
	w.Page(ctx, source, f)
}

// Page records pages read and their time in the engine, without a document: a split job's
// page (its document counts once, when its pages are put together).
func (w *Work) Page(ctx context.Context, source string, f pipeline.Facts) {
	if f.Pages > 0 {
		w.pages.WithLabelValues(f.Format).Add(float64(f.Pages))
	}
	if source != "" {
		Observe(ctx, w.ocr.WithLabelValues(source), f.OCR.Seconds())
	}
}

// MemoryRefused records a refusal for memory before the pipeline ran (the request's body).
func (w *Work) MemoryRefused(path string) { w.memory.WithLabelValues(path).Inc() }

// Delivery records one webhook delivery attempt's outcome (Delivered, Failed, Dead).
func (w *Work) Delivery(outcome string) { w.webhooks.WithLabelValues(outcome).Inc() }

// Observe records v, with ctx's trace id as its exemplar when ctx is in a sampled trace: a
// slow bucket on a dashboard leads to a slow request's trace.
func Observe(ctx context.Context, o prometheus.Observer, v float64) {
	if id := telemetry.TraceID(ctx); id != "" {
		if e, ok := o.(prometheus.ExemplarObserver); ok {
			e.ObserveWithExemplar(v, prometheus.Labels{"trace_id": id})
			return
		}
	}
	o.Observe(v)
}
