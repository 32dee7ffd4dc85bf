package httpapi

import (
	"io"
	"net/http"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// handleReadOCR is POST /read_ocr: decode the request (holding its memory share), run the
// pipeline, answer. One error exit.
func (s *Server) handleReadOCR(w http.ResponseWriter, r *http.Request) {
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
	var facts pipeline.Facts
	res, err := s.pipeline.Run(r.Context(), in, mem, &facts)
	annotate(r, func(a *annotations) { a.facts = facts })
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.ocr.WithLabelValues(in.Source).Observe(facts.OCR.Seconds())
	s.respond(w, http.StatusOK, resultBody(res, in.Layout))
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

// resultBody is {"text": ...} exactly as the original service answered, plus boxes on request.
func resultBody(res ocr.Result, layout bool) any {
	if !layout {
		return struct {
			Text string `json:"text"`
		}{res.Text}
	}
	type bbox struct {
		X0 int `json:"x0"`
		Y0 int `json:"y0"`
		X1 int `json:"x1"`
		Y1 int `json:"y1"`
	}
	type line struct {
		Text       string  `json:"text"`
		Confidence float64 `json:"confidence"`
		BBox       bbox    `json:"bbox"`
		Block      int     `json:"block"`
		Paragraph  int     `json:"paragraph"`
		Line       int     `json:"line"`
	}
	type word struct {
		line
		Word int `json:"word"`
	}
	out := struct {
		Text       string  `json:"text"`
		Confidence float64 `json:"confidence"`
		Lines      []line  `json:"lines"`
		Words      []word  `json:"words"`
	}{Text: res.Text, Confidence: round1(res.Confidence), Lines: []line{}, Words: []word{}}
	for _, l := range res.Lines {
		out.Lines = append(out.Lines, line{l.Text, round1(l.Confidence), bbox(l.Box), l.Block, l.Paragraph, l.Line})
	}
	for _, w := range res.Words {
		out.Words = append(out.Words, word{line{w.Text, round1(w.Confidence), bbox(w.Box), w.Block, w.Paragraph, w.Line}, w.Index})
	}
	return out
}

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }
