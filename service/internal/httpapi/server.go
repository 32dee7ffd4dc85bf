// Package httpapi is the HTTP face of the service: routes (routes.go), handlers, the mapping
// of errors to statuses (errors.go), request logging and metrics.
package httpapi

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/ocr"
)

// Limits are the per-request bounds the handlers enforce.
type Limits struct {
	MaxImageBytes  int64
	MaxPixels      int64
	RequestTimeout time.Duration
}

// Server serves the API. Create it with NewServer.
type Server struct {
	router   chi.Router
	log      *slog.Logger
	engine   *ocr.Engine
	fetcher  *fetch.Fetcher
	limits   Limits
	version  string
	metrics  *metrics
	draining atomic.Bool
}

// NewServer wires the routes. reg receives the service's metrics (a fresh registry in tests).
func NewServer(log *slog.Logger, engine *ocr.Engine, fetcher *fetch.Fetcher, limits Limits, version string, reg *prometheus.Registry) *Server {
	s := &Server{log: log, engine: engine, fetcher: fetcher, limits: limits, version: version}
	s.metrics = newMetrics(reg, engine, s.Ready)
	s.router = chi.NewRouter()
	s.routes()
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Drain makes /readyz answer 503 so that load balancers stop sending traffic, while requests
// in flight and arriving meanwhile are still served.
func (s *Server) Drain() { s.draining.Store(true) }

// Ready reports whether the engine is warm and the server is not draining.
func (s *Server) Ready() bool { return !s.draining.Load() && s.engine.Ready() }
