package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the whole API surface; the OpenAPI document (service/api) describes each route.
func (s *Server) routes() {
	r := s.router
	r.Use(middleware.RequestID, s.accessLog, s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no route " + r.URL.Path + " (see GET /)"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " is not allowed on " + r.URL.Path})
	})

	r.Get("/", s.handleIndex)
	r.Post("/read_ocr", s.handleReadOCR)
	r.Get("/languages", s.handleLanguages)
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Get("/openapi.yaml", s.handleOpenAPIYAML)
	r.Get("/openapi.json", s.handleOpenAPIJSON)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
}
