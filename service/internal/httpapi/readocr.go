package httpapi

import (
	"io"
	"net/http"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/metrics"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// handleReadOCR is POST /read_ocr: decode the request (holding its memory share), run the
// pipeline, answer in the format asked (the body's "format", else the Accept header). One error
// exit.
func (s *Server) handleReadOCR(w http.ResponseWriter, r *http.Request) {
	if !s.checkPages(w, r) { // before the body is read
		return
	}
	in, mem, err := s.decode(w, r)
	defer mem.Release()
	annotate(r, func(a *annotations) { a.Source, a.URLHost = in.Source, in.URL.Host() })
	var facts pipeline.Facts
	defer func() { s.metrics.work.Read(r.Context(), metrics.Sync, in.Source, facts, err) }()
	if err != nil {
		s.fail(w, r, err)
		if failure.CodeOf(err) == failure.ServerBusy {
			s.drain(w, r)
		}
		return
	}
	if in.Format == "" && !in.Layout {
		var f output.Format
		if f, err = output.FromAccept(r.Header.Get("Accept")); err != nil {
			s.fail(w, r, err)
			return
		}
		in.Format = string(f)
	}
	res, err := s.pipeline.Run(r.Context(), in.Input, mem, &facts)
	annotate(r, func(a *annotations) { a.facts = facts })
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.countPages(r, facts.Pages)
	s.respondBody(w, http.StatusOK, res.ContentType, res.Body)
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
