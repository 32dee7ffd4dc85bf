package httpapi

import (
	"io"
	"net/http"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// handleReadOCR is POST /read_ocr: decode the request (holding its memory share), run the
// pipeline, answer in the format asked (the body's "format", else the Accept header). One error
// exit.
func (s *Server) handleReadOCR(w http.ResponseWriter, r *http.Request) {
	in, mem, ok := s.readRequest(w, r)
	defer mem.Release()
	if !ok {
		return
	}
	var facts pipeline.Facts
	res, err := s.pipeline.Run(r.Context(), in.Input, mem, &facts)
	annotate(r, func(a *annotations) { a.facts = facts })
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ObserveFacts(in.Source, facts)
	s.countPages(r, facts.Pages)
	s.respondBody(w, http.StatusOK, res.ContentType, res.Body)
}

// readRequest is the first half of POST /read_ocr and POST /jobs, the one both use: the page
// quota checked before the body is read, the body decoded (holding its memory share), the
// format taken from Accept when the body does not say. When it returns false it has answered
// (the error, and the unread body drained when the memory was not there); mem is released by
// the caller either way.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request) (request, *membudget.Reservation, bool) {
	if !s.checkPages(w, r) { // before the body is read
		return request{}, nil, false
	}
	in, mem, err := s.decode(w, r)
	annotate(r, func(a *annotations) { a.Source, a.URLHost = in.Source, in.URL.Host() })
	if err != nil {
		s.fail(w, r, err)
		if failure.CodeOf(err) == failure.ServerBusy {
			s.drain(w, r)
		}
		return in, mem, false
	}
	if in.Format == "" && !in.Layout {
		f, err := output.FromAccept(r.Header.Get("Accept"))
		if err != nil {
			s.fail(w, r, err)
			return in, mem, false
		}
		in.Format = string(f)
	}
	return in, mem, true
}

// ObserveFacts records what the pipeline learned about one input read (its OCR time and pages)
// in the metrics: /read_ocr's requests and the jobs' pages alike (the runner calls it too).
func (s *Server) ObserveFacts(source string, facts pipeline.Facts) {
	if facts.Pages == 0 {
		return
	}
	s.metrics.ocr.WithLabelValues(source).Observe(facts.OCR.Seconds())
	s.metrics.pages.WithLabelValues(facts.Format).Add(float64(facts.Pages))
}

// drainTime is how long a refused request's unread body is read and thrown away.
const drainTime = 2 * time.Second

// drain reads and discards the body of a request refused before its body was read, for at most
// drainTime, after sending the answer. Closing a connection with unread data makes the kernel
// send a reset, and a client still sending its body then loses the answer already on its way
// (seen with 16 uploads of 25 MB at once). Discarding costs a 32 KiB buffer, not memory.
func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	rc.Flush()
	rc.SetReadDeadline(time.Now().Add(drainTime))
	io.Copy(io.Discard, io.LimitReader(r.Body, s.cfg.maxJSONBody()+s.cfg.maxMultipartBody()))
}
