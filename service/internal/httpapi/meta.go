package httpapi

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/readocr/readocr/service/api"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/web"
)

func (s *Server) handleIndex(auth func(http.Handler) http.Handler) http.HandlerFunc {
	index := auth(http.HandlerFunc(s.handleAPIIndex))
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept")
		if web.WantsPage(r) { // a browser: the page, built on this API
			web.ServePage(w, r)
			return
		}
		index.ServeHTTP(w, r)
	}
}

// handleAPIIndex is the JSON index of GET /.
func (s *Server) handleAPIIndex(w http.ResponseWriter, r *http.Request) {
	// "API Documentation" is the key the original service answered with; it now names the contract.
	s.respond(w, http.StatusOK, map[string]any{
		"API Documentation": "/openapi.yaml",
		"version":           s.version,
		"auth":              s.AuthMode(),
		"endpoints": map[string]string{
			"POST /read_ocr":    `read an image: {"image": "<url|base64|data: URI>", "lang": "eng", "config": ""} or multipart`,
			"POST /jobs":        "the same body, read asynchronously: 202 and Location /jobs/{id}",
			"GET /jobs/{id}":    "a job's status and progress (GET /jobs/{id}/result: its output; DELETE: cancel)",
			"GET /languages":    "installed languages and scripts (lang=deu+eng, lang=Latin)",
			"GET /openapi.json": "the contract as JSON",
			"GET /healthz":      "liveness",
			"GET /readyz":       "readiness",
		},
	})
}

// languagesAnswer is GET /languages: what lang= accepts, and each model with its script.
type languagesAnswer struct {
	Languages    []string    `json:"languages"` // every name lang= accepts, as tesseract --list-langs sorts them
	Scripts      []string    `json:"scripts"`   // those that are script models (lang=Latin reads every language written in Latin)
	Default      string      `json:"default"`
	MaxLanguages int         `json:"max_languages"`
	Models       []ocr.Model `json:"models"`
	Unusable     []ocr.Model `json:"unusable"` // found, but cannot be loaded: with the problem
}

func (s *Server) handleLanguages(w http.ResponseWriter, r *http.Request) {
	models := s.engine.Models()
	a := languagesAnswer{Languages: s.engine.Languages(), Scripts: []string{}, Default: s.engine.DefaultLang(),
		MaxLanguages: s.engine.MaxLanguages(), Models: models.Models(), Unusable: models.Unusable()}
	for _, m := range a.Models {
		if m.Type == "script" {
			a.Scripts = append(a.Scripts, m.Name)
		}
	}
	s.respond(w, http.StatusOK, a)
}

type probeStatus struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Auth   string `json:"auth,omitempty"` // readiness: "api_keys", or "none" (an open service says so)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.respond(w, http.StatusOK, probeStatus{Status: "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.draining.Load():
		s.respond(w, http.StatusServiceUnavailable, probeStatus{Status: "unavailable", Reason: "draining"})
	case !s.engine.Ready():
		s.respond(w, http.StatusServiceUnavailable, probeStatus{Status: "unavailable", Reason: "warming up"})
	default:
		s.respond(w, http.StatusOK, probeStatus{Status: "ok", Auth: s.AuthMode()})
	}
}

func (s *Server) handleOpenAPIYAML(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(api.OpenAPIYAML)
}

var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIYAML)
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
})

func (s *Server) handleOpenAPIJSON(w http.ResponseWriter, r *http.Request) {
	b, err := openAPIJSON()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
