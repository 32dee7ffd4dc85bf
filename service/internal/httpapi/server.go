// Package httpapi is the HTTP face of the service: routes (routes.go), the read_ocr handler
// (readocr.go), the jobs API (jobs.go) and the decoding of its requests (request.go), the mapping of error codes to
// statuses (errors.go), request IDs, deadlines and the access log (middleware.go), API keys
// and their limits (auth.go), metrics and the admin port (admin.go).
package httpapi

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/readocr/readocr/service/internal/apikey"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/ratelimit"
	"github.com/readocr/readocr/service/internal/telemetry"
)

// Config holds the HTTP layer's limits.
type Config struct {
	MaxImageBytes  int64         // largest image, uploaded (decoded) or fetched
	RequestTimeout time.Duration // reading, fetching, queueing and recognising one request
	WriteTimeout   time.Duration // sending one response: a client that does not read is dropped
	MemoryWait     time.Duration // longest wait for a request's share of memory (then 503)
}

// DefaultConfig is the HTTP layer's configuration unless flags say otherwise.
func DefaultConfig() Config {
	return Config{MaxImageBytes: 20 << 20, RequestTimeout: 60 * time.Second, WriteTimeout: 10 * time.Second,
		MemoryWait: 20 * time.Second}
}

// MaxRequestBytes is the most memory one request may hold at once in the API process: a JSON
// body carrying the largest image in base64 (4/3 of it, and the other fields) and the decoded
// image.
func (c Config) MaxRequestBytes() int64 { return c.maxJSONBody() + c.MaxImageBytes }

func (c Config) maxJSONBody() int64      { return c.MaxImageBytes*4/3 + 64<<10 }
func (c Config) maxMultipartBody() int64 { return c.MaxImageBytes + 64<<10 }

// Server serves the API. Create it with NewServer.
type Server struct {
	cfg      Config
	router   chi.Router
	handler  http.Handler // the router, in a span per request when tracing is on (EnableTracing)
	log      *slog.Logger
	engine   *ocr.Engine
	pipeline *pipeline.Pipeline
	jobs     *jobs.Jobs         // nil: jobs are off
	keys     *apikey.Keyring    // nil: API keys are off (auth.go)
	limits   *ratelimit.Limiter // nil: no limits
	budget   *membudget.Budget
	version  string
	metrics  *httpMetrics
	draining atomic.Bool
	inflight sync.WaitGroup // requests being served, for the shutdown
}

// NewServer wires the routes. reg receives the service's metrics (a fresh registry in tests).
func NewServer(cfg Config, log *slog.Logger, engine *ocr.Engine, p *pipeline.Pipeline, budget *membudget.Budget,
	version string, reg *prometheus.Registry) *Server {
	s := &Server{cfg: cfg, log: log, engine: engine, pipeline: p, budget: budget, version: version}
	s.metrics = newMetrics(reg, engine, budget, s.Ready)
	s.router = chi.NewRouter()
	s.routes()
	s.handler = s.router
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		// Each answer closes its connection after it (net/http does when the handler says so),
		// so the client's next request goes through the Service to a pod that is not stopping.
		// A connection is closed only after an answer, never under a client sending on it;
		// those idle for the whole drain delay are left to Shutdown.
		w.Header().Set("Connection", "close")
	}
	s.handler.ServeHTTP(w, r)
}

// EnableTracing serves each request in a server span (otelhttp: the caller's traceparent is
// its parent), named for its route once routed (accessLog). Off, requests pay nothing for it.
// Probes are not traced: the kubelet's every few seconds would bury the traces that matter.
func (s *Server) EnableTracing() {
	s.handler = otelhttp.NewHandler(s.router, "http", otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" }))
}

// Drain makes /readyz answer 503 so that load balancers stop sending traffic, while requests
// in flight and arriving meanwhile are still served.
func (s *Server) Drain() { s.draining.Store(true) }

// Ready reports whether the engine is warm and the server is not draining.
func (s *Server) Ready() bool { return !s.draining.Load() && s.engine.Ready() }

// WaitAnswered waits until every request being served has had its answer, or d passes.
func (s *Server) WaitAnswered(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
