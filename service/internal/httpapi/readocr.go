package httpapi

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/metrics"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// handleReadOCR is POST /read_ocr: decode the request (holding its memory share), run the
// pipeline, answer in the format asked (the body's "format", else the Accept header). One error
// exit.
func (s *Server) handleReadOCR(w http.ResponseWriter, r *http.Request) {
	in, mem, err := s.readRequest(w, r)
	defer mem.Release()
	var facts pipeline.Facts
	defer func() {
		if err != errQuotaAnswered { // a refusal by the key's quota is no document read
			s.metrics.work.Read(r.Context(), metrics.Sync, in.Source, facts, err)
		}
	}()
	if err != nil {
		return
	}
	var res pipeline.Result
	res, err = s.pipeline.Run(r.Context(), in.Input, mem, &facts)
	annotate(r, func(a *annotations) { a.facts = facts })
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.countPages(w, r, facts.Pages)
	s.respondBody(w, http.StatusOK, res.ContentType, res.Body)
}

// errQuotaAnswered is readRequest's error when the key's page quota refused the request (the
// 429 is sent).
var errQuotaAnswered = errors.New("refused by the page quota")

// readRequest is the first half of POST /read_ocr and POST /jobs, the one both use: the page
// quota checked before the body is read, the body decoded (holding its memory share), the
// format taken from Accept when the body does not say. When it returns an error it has answered
// (the error, and the unread body drained when the memory was not there); mem is released by
// the caller either way.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request) (request, *membudget.Reservation, error) {
	if !s.checkPages(w, r) { // before the body is read
		return request{}, nil, errQuotaAnswered
	}
	in, mem, err := s.decode(w, r)
	annotate(r, func(a *annotations) { a.Source, a.URLHost = in.Source, in.URL.Host() })
	if err != nil {
		s.fail(w, r, err)
		if failure.CodeOf(err) == failure.ServerBusy {
			s.drain(w, r)
		}
		return in, mem, err
	}
	if in.Format == "" && !in.Layout {
		f, err := output.FromAccept(r.Header.Get("Accept"))
		if err != nil {
			s.fail(w, r, err)
			return in, mem, err
		}
		in.Format = string(f)
	}
	return in, mem, nil
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
