package ocr

import (
	"github.com/otiai10/gosseract/v2"
)

// Turning a PDF page before it is read, for a searchable PDF (rotate_pages, deskew): the page's
// image is turned in Tesseract's client (Leptonica), and the worker says how, so that the text
// layer is laid over the page turned the same way (textlayer: /Rotate for quarter turns, the
// page's content drawn turned for a skew).

// rotateThreshold is the orientation confidence below which a page is left as it is:
// OCRmyPDF's default (--rotate-pages-threshold 14).
const rotateThreshold = 14

// Skews smaller than minSkew degrees, or found with less confidence than minSkewConfidence,
// are left alone: Leptonica's pixDeskew's own limits.
const (
	minSkew           = 0.1
	minSkewConfidence = 3.0
)

// turned is how a page was turned before it was read, clockwise: a quarter turn in degrees,
// then a skew in degrees.
type turned struct {
	rotate int
	skew   float64
}

// straighten turns the page image set in t as j asks, and records it in turn.
func (w *worker) straighten(t *gosseract.Client, j job, turn *turned) error {
	if j.RotatePages {
		osd, err := w.orienter()
		if err != nil {
			return err
		}
		// A page Tesseract cannot tell (a blank one, one without enough text) is left as it is.
		quads, conf, err := osd.DetectOrientation(t)
		if err == nil && conf >= rotateThreshold && quads != 0 {
			if err := t.RotateImage(quads); err != nil {
				return err
			}
			turn.rotate = quads * 90
		}
	}
	if j.Deskew {
		angle, err := t.DeskewImage(minSkew, minSkewConfidence)
		if err != nil {
			return err
		}
		turn.skew = angle
	}
	return nil
}

// orienter is the worker's client of the orientation model, loaded on first use within the
// worker's model memory (its cost is the model share's orientation part, membudget.Plan).
func (w *worker) orienter() (*gosseract.Client, error) {
	if w.osd != nil {
		return w.osd, nil
	}
	w.evict(w.cfg.OSDMemory, 0, 1)
	t := gosseract.NewClient()
	if err := t.SetTessdataPrefix(w.cfg.TessdataDir); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.SetLanguage(osdName); err != nil {
		t.Close()
		return nil, err
	}
	w.osd = t // loaded on its first page (DetectOrientation)
	return t, nil
}
