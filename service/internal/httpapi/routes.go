package httpapi

import (
	"net/http"

	"github.com/readocr/readocr/service/internal/apikey"
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

	// Probes never need a key: the kubelet has none.
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	// The web page and its files are public: static, built on the API, and a person types the key
	// into the page (GET / gives API clients the JSON index, behind a key: meta.go).
	for _, name := range web.Files() {
		r.Get(web.Prefix+name, web.Serve(name))
	}
	// Every other route needs a key with its scope when keys are on (auth.go).
	anyKey, ocr, jobs := s.authenticate(""), s.authenticate(apikey.ScopeOCR), s.authenticate(apikey.ScopeJobs)
	r.Get("/", s.handleIndex(anyKey))
	r.With(ocr, s.deadline).Post("/read_ocr", s.handleReadOCR)
	r.With(jobs, s.deadline).Post("/jobs", s.handleSubmitJob)
	r.With(jobs).Get("/jobs/{id}", s.handleGetJob)
	r.With(jobs).Get("/jobs/{id}/result", s.handleJobResult)
	r.With(jobs).Get("/jobs/{id}/events", s.handleJobEvents)
	r.With(jobs).Delete("/jobs/{id}", s.handleDeleteJob)
	r.With(anyKey).Get("/languages", s.handleLanguages)
	r.With(anyKey).Get("/openapi.yaml", s.handleOpenAPIYAML)
	r.With(anyKey).Get("/openapi.json", s.handleOpenAPIJSON)
}
