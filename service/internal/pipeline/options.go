package pipeline

import (
	"encoding/json"

	"github.com/readocr/readocr/service/internal/failure"
)

// Options are how the client asked for an input to be read: the one list of the request's
// fields besides the input itself. The JSON body, the multipart form (by the same names) and a
// job's message on the stream all carry this struct, so a new option is added here, in the
// contract (service/api/openapi.yaml) and where it is used, nowhere else.
type Options struct {
	Lang    string `json:"lang,omitempty"`     // "" for the default
	Config  string `json:"config,omitempty"`   // Tesseract CLI options, see tessconfig
	Format  string `json:"format,omitempty"`   // an output.Format; "" is text, or json with Layout
	Layout  bool   `json:"layout,omitempty"`   // the original way to ask for words and lines: format json
	Pages   Pages  `json:"pages,omitempty"`    // page selection, e.g. "1-3,7" ("": every page)
	PDFText string `json:"pdf_text,omitempty"` // ocr (default), extract or auto
	OCRMode string `json:"ocr_mode,omitempty"` // format pdf: skip_text (default), force_ocr or redo_ocr, as OCRmyPDF names them
	// Format pdf of a PDF: pages turned upright by orientation detection (/Rotate), and text
	// lines made level (the page's content drawn turned), as OCRmyPDF's --rotate-pages, --deskew.
	RotatePages bool `json:"rotate_pages,omitempty"`
	// OutputType of a searchable PDF of a PDF: pdf (the default) or pdfa (PDF/A-2b), as
	// OCRmyPDF's --output-type names them (its pdfa is PDF/A-2b too; pdfa-2 is taken as well).
	OutputType string `json:"output_type,omitempty"`
	Deskew     bool   `json:"deskew,omitempty"`
}

// Pages is a page selection such as "1-3,7"; in JSON also a page number.
type Pages string

// UnmarshalJSON takes "1-3,7" or 7.
func (p *Pages) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*p = Pages(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return failure.New(failure.InvalidPages, `"pages" must be a string such as "1-3,7" or a page number`)
	}
	*p = Pages(s)
	return nil
}
