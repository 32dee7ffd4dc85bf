package httpapi

import (
	"net/http"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/web"
)

// routes is the whole public API surface; the OpenAPI document (service/api) describes each
// route. Metrics and profiling are on the admin port (admin.go), not here.
func (s *Server) routes() {
	r := s.router
	r.Use(s.requestID, s.track, s.accessLog, s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, failure.New(failure.NotFound, "no route %s (see GET /)", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, failure.New(failure.MethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
	})

	r.Get("/", s.handleIndex)
	r.With(s.deadline).Post("/read_ocr", s.handleReadOCR)
	r.With(s.deadline).Post("/jobs", s.handleSubmitJob)
	r.Get("/jobs/{id}", s.handleGetJob)
	r.Get("/jobs/{id}/result", s.handleJobResult)
	r.Delete("/jobs/{id}", s.handleDeleteJob)
	r.Get("/languages", s.handleLanguages)
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Get("/openapi.yaml", s.handleOpenAPIYAML)
	r.Get("/openapi.json", s.handleOpenAPIJSON)
	for _, name := range web.Files() { // the page's script, style and icon; the page is GET / (meta.go)
		r.Get(web.Prefix+name, web.Serve(name))
	}
}
