package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/output"
)

// SetJobs turns the jobs API on (before serving); without it /jobs answers 404.
func (s *Server) SetJobs(j *jobs.Jobs) { s.jobs = j }

var errJobsOff = failure.New(failure.NotFound, "jobs are off on this server (--jobs=false)")

// handleSubmitJob is POST /jobs: the body of /read_ocr, checked as it would be, stored and
// queued; 202 with the job and its Location.
func (s *Server) handleSubmitJob(w http.ResponseWriter, r *http.Request) {
	if s.jobs == nil {
		s.fail(w, r, errJobsOff)
		return
	}
	in, mem, err := s.decode(w, r)
	defer mem.Release()
	annotate(r, func(a *annotations) { a.Source, a.URLHost = in.Source, in.URL.Host() })
	if err != nil {
		s.fail(w, r, err)
		if failure.CodeOf(err) == failure.ServerBusy {
			s.drain(w, r)
		}
		return
	}
	if in.Format == "" && !in.Layout {
		f, err := output.FromAccept(r.Header.Get("Accept"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		in.Format = string(f)
	}
	job, err := s.jobs.Submit(r.Context(), jobs.Submission{Input: in.Input, SubmitOptions: in.SubmitOptions})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/jobs/"+job.ID)
	s.respond(w, http.StatusAccepted, job)
}

// handleGetJob is GET /jobs/{id}.
func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	if s.jobs == nil {
		s.fail(w, r, errJobsOff)
		return
	}
	job, err := s.jobs.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.respond(w, http.StatusOK, job)
}

// handleJobResult is GET /jobs/{id}/result: the bytes /read_ocr would have answered, or the
// error it would have answered.
func (s *Server) handleJobResult(w http.ResponseWriter, r *http.Request) {
	if s.jobs == nil {
		s.fail(w, r, errJobsOff)
		return
	}
	body, contentType, err := s.jobs.Result(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.respondBody(w, http.StatusOK, contentType, body)
}

// handleDeleteJob is DELETE /jobs/{id}: a job not finished is canceled (200 with it); a
// finished one is deleted with its result (204).
func (s *Server) handleDeleteJob(w http.ResponseWriter, r *http.Request) {
	if s.jobs == nil {
		s.fail(w, r, errJobsOff)
		return
	}
	job, deleted, err := s.jobs.Cancel(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if deleted {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.respond(w, http.StatusOK, job)
}
