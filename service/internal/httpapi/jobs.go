package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/jobs"
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
	in, mem, err := s.readRequest(w, r)
	defer mem.Release()
	if err != nil {
		return
	}
	if err := idempotencyHeader(r, &in.SubmitOptions); err != nil {
		s.fail(w, r, err)
		return
	}
	sub := jobs.Submission{Input: in.Input, SubmitOptions: in.SubmitOptions}
	sub.Owner, sub.PagePeriod = s.owner(r)
	job, err := s.jobs.Submit(r.Context(), sub)
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
	job, err := s.jobs.Get(r.Context(), chi.URLParam(r, "id"), caller(r))
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
	id := chi.URLParam(r, "id")
	if spec, ok := r.URL.Query()["pages"]; ok {
		// The pages done so far (a document read as page tasks), whatever the job's status.
		body, contentType, done, total, err := s.jobs.PartialResult(r.Context(), id, caller(r), strings.Join(spec, ","))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Pages-Done", strconv.Itoa(done))
		w.Header().Set("Pages-Selected", strconv.Itoa(total))
		s.respondBody(w, http.StatusOK, contentType, body)
		return
	}
	body, contentType, err := s.jobs.Result(r.Context(), id, caller(r))
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
	job, deleted, err := s.jobs.Cancel(r.Context(), chi.URLParam(r, "id"), caller(r))
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

// idempotencyHeader takes the Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header:
// a Structured Field string, "order-17"; a bare value of printable characters is taken as it
// is, as many clients send it). The body's idempotency_key field is the older way; both may be
// sent only with the same value.
func idempotencyHeader(r *http.Request, o *jobs.SubmitOptions) error {
	h := r.Header.Values("Idempotency-Key")
	if len(h) == 0 {
		return nil
	}
	key, ok := sfString(strings.Join(h, ","))
	switch {
	case !ok:
		return failure.New(failure.BadRequest, `Idempotency-Key must be a string such as "order-17" (a Structured Field string)`)
	case key == "":
		return failure.New(failure.BadRequest, "Idempotency-Key is empty")
	case len(key) > jobs.MaxIdempotencyKey:
		return jobs.ErrKeyLength
	case o.IdempotencyKey != "" && o.IdempotencyKey != key:
		return failure.New(failure.BadRequest, "the Idempotency-Key header and the idempotency_key field differ")
	}
	o.IdempotencyKey = key
	return nil
}

// sfString reads a Structured Field string (RFC 9651 3.3.3), or a bare value of visible ASCII.
func sfString(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, `"`) {
		for i := 0; i < len(v); i++ {
			if v[i] <= ' ' || v[i] > '~' || v[i] == '"' || v[i] == '\\' || v[i] == ',' {
				return "", false
			}
		}
		return v, true
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			if i+1 >= len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
				return "", false
			}
			i++
			b.WriteByte(v[i])
		case c == '"':
			return b.String(), i == len(v)-1
		case c < ' ' || c > '~':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false // no closing quote
}
