package httpapi

import (
	"net/http"

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
