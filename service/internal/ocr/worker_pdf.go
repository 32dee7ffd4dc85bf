package ocr

import (
	"context"
	"errors"
	"fmt"

	"github.com/otiai10/gosseract/v2"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/textlayer"
)

// A worker's PDF jobs: inspecting a document, reading a page (its own text, its scan image or
// its rendering), laying text layers over the pages.

// inspect counts the kept PDF's pages, resolves the job's selection and measures those pages.
func (w *worker) inspect(j job) outcome {
	d, err := w.pdf()
	if err != nil {
		return failed(err)
	}
	var o outcome
	err = d.use(func(pdf openPDF) error {
		n, err := pdf.pageCount()
		if err != nil {
			return failure.New(failure.UndecodableDocument, "PDFium could not count the pages (%s)", pdfiumMessage(err))
		}
		if n < 1 {
			return failure.New(failure.UndecodableDocument, "the PDF has no pages")
		}
		sel, err := imageinput.ParsePages(j.Pages)
		if err != nil {
			return err
		}
		pages, err := sel.Resolve(n, j.MaxPages)
		if err != nil {
			return err
		}
		o = outcome{PageCount: n, Selected: pages, Sizes: make([][2]float64, len(pages)), Colour: make([]bool, len(pages)), Encrypted: pdf.encrypted()}
		for i, p := range pages {
			wpt, hpt, err := pdf.size(p - 1)
			if err != nil {
				return failure.New(failure.UndecodableDocument, "page %d: PDFium could not read it (%s)", p, pdfiumMessage(err))
			}
			o.Sizes[i] = [2]float64{wpt, hpt}
			// A page that holds colour costs more to render, in gray too: PDFium decodes its
			// colour images (pageCost). Its objects are walked, nothing is rendered.
			o.Colour[i] = pdf.depth(p-1) == depthColour
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	return o
}

// pdfPage reads a page of the kept PDF: its own text, or its rendering recognised.
func (w *worker) pdfPage(ctx context.Context, c *client, j job) outcome {
	d, err := w.pdf()
	if err != nil {
		return failed(err)
	}
	tiff, scan := w.scanImage(j) // a page that is a bilevel scan: no text, and its image is read
	var jpg []byte
	var colourJPEG bool
	if !scan { // or a colour or gray scan, one JPEG
		jpg, colourJPEG, scan = w.jpegImage(j)
	}
	if j.PDFText == PDFTextExtract || j.PDFText == PDFTextAuto {
		var text string
		if !scan {
			err := d.use(func(pdf openPDF) error {
				var err error
				if text, err = pdf.text(j.Page); err != nil {
					return failure.New(failure.UndecodableDocument, "page %d: PDFium could not read its text (%s)", j.Page+1, pdfiumMessage(err))
				}
				return nil
			})
			if err != nil {
				return failed(err)
			}
		}
		if j.PDFText == PDFTextExtract || text != "" {
			return outcome{Text: text, Extracted: true}
		}
	}
	if scan {
		var turn turned
		o := c.recognize(ctx, j, func(t *gosseract.Client) error {
			if jpg != nil {
				if err := t.SetImageFromBytes(jpg); err != nil {
					return err
				}
				if err := t.SetResolution(j.DPI); err != nil {
					return err
				}
				if colourJPEG {
					if err := t.GrayImage(); err != nil {
						return err
					}
				}
			} else if err := t.SetImageFromBytes(tiff); err != nil {
				return err
			}
			return w.straighten(t, j, &turn)
		}, w.cfg)
		o.Depth = depthBilevel.String() + " (the scan's image)"
		if jpg != nil {
			o.Depth = depthGray.String() + " (the scan's JPEG)"
		}
		o.Rotate, o.Skew = turn.rotate, turn.skew
		return o
	}
	return w.renderedPage(ctx, c, d, j)
}

// renderedPage recognises page j.Page of d as PDFium renders it.
func (w *worker) renderedPage(ctx context.Context, c *client, d *pdfDoc, j job) outcome {
	var depth pageDepth
	var turn turned
	o := c.recognize(ctx, j, func(t *gosseract.Client) error {
		err := d.use(func(pdf openPDF) error {
			if j.PDFText == PDFTextRedo {
				// The text stays in the output as it is: Tesseract reads the rest. This instance
				// of the document is closed after the page, so the page is only changed here.
				if err := pdf.hideText(j.Page); err != nil {
					return failure.New(failure.UndecodableDocument, "page %d: PDFium could not set its text aside (%s)", j.Page+1, pdfiumMessage(err))
				}
			}
			// In the page's own depth: black and white pages in 1 bit, which Tesseract need not
			// threshold; colour only where the page has colour and the job asks for it.
			depth = pdf.depth(j.Page)
			r, err := pdf.render(j.Page, j.DPI, j.Colour && depth == depthColour)
			if err != nil {
				return failure.New(failure.UndecodableDocument, "page %d: PDFium could not render it (%s)", j.Page+1, pdfiumMessage(err))
			}
			defer r.release() // the pix is a copy
			if abs(r.width-j.Width) > 1 || abs(r.height-j.Height) > 1 {
				return fmt.Errorf("page %d rendered at %dx%d, %dx%d were accounted", j.Page+1, r.width, r.height, j.Width, j.Height)
			}
			if err := t.SetImageFromPixels(r.pix, r.width, r.height, r.stride, r.channels, j.DPI); err != nil {
				return err
			}
			if depth == depthBilevel {
				return t.ThresholdImage(bilevelThreshold)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return w.straighten(t, j, &turn)
	}, w.cfg)
	o.Depth = depth.String()
	o.Rotate, o.Skew = turn.rotate, turn.skew
	return o
}

// bilevelThreshold is where a black and white page rendered in gray is cut: its gray pixels
// are the anti-aliased edges of black on white, half of each.
const bilevelThreshold = 128

// overlay lays the job's text layers over the kept PDF's pages (package textlayer).
func (w *worker) overlay(j job) outcome {
	if w.doc.format != imageinput.PDF {
		return outcome{Fail: failOther, Message: fmt.Sprintf("document %d is a %s, not a PDF", w.doc.id, w.doc.format)}
	}
	add := textlayer.Add
	if j.PDFA {
		add = textlayer.AddPDFA
	}
	out, err := add(w.doc.data, j.Layers)
	switch {
	case errors.Is(err, textlayer.ErrNotPDFA):
		return failed(failure.New(failure.NotPDFA, "output_type=pdfa: %v", err))
	case errors.Is(err, textlayer.ErrEncrypted):
		return failed(failure.New(failure.EncryptedPDF, "the PDF is encrypted: a text layer cannot be added to it (decrypt it first, e.g. qpdf --decrypt)"))
	case err != nil:
		return failed(failure.New(failure.UndecodableDocument, "the text layer could not be added to the PDF (%v)", err))
	}
	return outcome{PDF: out}
}
