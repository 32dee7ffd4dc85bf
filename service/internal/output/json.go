package output

import "github.com/readocr/readocr/service/internal/ocr"

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
	Page       int     `json:"page"`
	Block      int     `json:"block"`
	Paragraph  int     `json:"paragraph"`
	Line       int     `json:"line"`
}

type word struct {
	line
	Word int `json:"word"`
}

type jsonPage struct {
	Page       int      `json:"page"`
	Width      int      `json:"width"`
	Height     int      `json:"height"`
	DPI        int      `json:"dpi,omitempty"`
	Source     string   `json:"source"` // ocr, or pdf_text when the text is the PDF's own
	Text       string   `json:"text"`
	Confidence *float64 `json:"confidence,omitempty"`
	Lines      []line   `json:"lines"`
	Words      []word   `json:"words"`
}

// jsonDocument is format=json (the original layout=true answer, with pages): the text as in
// format=text, the mean confidence of every recognised word, every line and word (with its page),
// and each page on its own.
type jsonDocument struct {
	Text       string     `json:"text"`
	Confidence float64    `json:"confidence"`
	Lines      []line     `json:"lines"`
	Words      []word     `json:"words"`
	Pages      []jsonPage `json:"pages"`
	// PageErrors are the pages not read (a job's), absent from pages.
	PageErrors []PageError `json:"page_errors,omitempty"`
}

func jsonBody(pages []Page) jsonDocument {
	doc := jsonDocument{Text: JoinText(pages), Lines: []line{}, Words: []word{}, Pages: []jsonPage{}}
	var sum float64
	var words int
	doc.PageErrors = pageErrors(pages)
	for _, p := range read(pages) {
		jp := jsonPage{Page: p.Number, Width: p.Width, Height: p.Height, DPI: p.DPI, Source: "ocr",
			Text: p.Result.Text, Lines: []line{}, Words: []word{}}
		if p.Result.Extracted {
			jp.Source = "pdf_text"
		} else {
			c := round1(p.Result.Confidence)
			jp.Confidence = &c
		}
		for _, l := range p.Result.Lines {
			jp.Lines = append(jp.Lines, line{l.Text, round1(l.Confidence), box(l.Box), p.Number, l.Block, l.Paragraph, l.Line})
		}
		for _, w := range p.Result.Words {
			jp.Words = append(jp.Words, word{line{w.Text, round1(w.Confidence), box(w.Box), p.Number, w.Block, w.Paragraph, w.Line}, w.Index})
			sum += w.Confidence
			words++
		}
		doc.Lines = append(doc.Lines, jp.Lines...)
		doc.Words = append(doc.Words, jp.Words...)
		doc.Pages = append(doc.Pages, jp)
	}
	if words > 0 {
		doc.Confidence = round1(sum / float64(words))
	}
	return doc
}

func box(b ocr.Box) bbox { return bbox{b.X0, b.Y0, b.X1, b.Y1} }

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }
