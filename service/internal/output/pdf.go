package output

import (
	"bytes"
	"errors"
	"io"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// mergePDF joins the one-page PDFs Tesseract's PDF renderer wrote for each page (in the
// workers, in parallel) into one document, with pdfcpu. These PDFs are Tesseract's, never the
// client's: no client PDF is parsed outside a worker.
func mergePDF(w io.Writer, pages []Page) error {
	if len(pages) == 0 {
		return errors.New("no pages")
	}
	if len(pages) == 1 {
		_, err := w.Write(pages[0].Result.PDF)
		return err
	}
	rs := make([]io.ReadSeeker, len(pages))
	for i, p := range pages {
		rs[i] = bytes.NewReader(p.Result.PDF)
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	return api.MergeRaw(rs, w, false, conf)
}
