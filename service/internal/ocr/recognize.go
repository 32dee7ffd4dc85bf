package ocr

// Reading pages and PDFs: the engine's calls that hand a job to a worker.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/tessconfig"
	"github.com/readocr/readocr/service/internal/textlayer"
)

// Recognize reads one page. It refuses at once when the queue is full (ErrBusy) or the page
// needs more memory than a worker has (ErrTooLarge), waits at most QueueTimeout for a worker,
// and returns as soon as ctx ends, whatever the worker is doing (failure.FromContext says why).
func (e *Engine) Recognize(ctx context.Context, req Request) (Result, error) {
	release, err := e.Admit()
	if err != nil {
		return Result{}, err
	}
	defer release()
	return e.RecognizePage(ctx, req)
}

// Admit holds a place among the requests running and queued (ErrBusy when there is none) until
// release: Recognize does, and a document does for all its pages (RecognizePage).
func (e *Engine) Admit() (release func(), err error) {
	select {
	case e.admit <- struct{}{}:
		return func() { <-e.admit }, nil
	default:
		return nil, ErrBusy
	}
}

// RecognizePage reads one page for a request that Admit admitted. Pages of a document are read
// in parallel by calling it from several goroutines.
func (e *Engine) RecognizePage(ctx context.Context, req Request) (Result, error) {
	if !req.Page.Valid() {
		return Result{}, ErrNoPage
	}
	if req.Lang.s == "" {
		req.Lang = Lang{e.cfg.DefaultLang}
	}
	if req.Page.Format() == imageinput.PDF {
		if err := e.pdfReady(ctx); err != nil {
			return Result{}, err
		}
	}
	if need := e.costOf(req.Page); e.cfg.PageMemory > 0 && need > e.cfg.PageMemory {
		return Result{}, failure.Detail(ErrTooLarge, "%sthis %dx%d %s page needs about %d MiB, a worker has %d MiB (more memory for the pod raises it; see README, Limits)",
			pagePrefix(req.Page), req.Page.Width(), req.Page.Height(), colorName(req.Page), need>>20, e.cfg.PageMemory>>20)
	}
	o, err := e.exchangeAny(ctx, req.Batch, req.Lang.s, e.pageJob(req))
	if err != nil {
		if req.Page.Document() != 0 {
			return Result{}, failure.Wrap(failure.CodeOf(err), err, "page %d: %s", req.Page.Number(), failure.MessageOf(err))
		}
		return Result{}, err
	}
	res, err := e.result(o, req.Layout)
	if err != nil && req.Page.Document() != 0 && !strings.HasPrefix(failure.MessageOf(err), "page ") {
		return res, failure.Wrap(failure.CodeOf(err), err, "page %d: %s", req.Page.Number(), failure.MessageOf(err))
	}
	return res, err
}

func pagePrefix(p imageinput.Page) string {
	if p.Document() == 0 {
		return ""
	}
	return fmt.Sprintf("page %d: ", p.Number())
}

// pdfReady waits for PDFium's compilation, which Warm started.
func (e *Engine) pdfReady(ctx context.Context) error {
	select {
	case <-e.pdfium:
		return e.pdfErr
	case <-ctx.Done():
		return failure.FromContext(ctx, failure.QueueTimeout, "waiting for PDFium to be compiled")
	}
}

// pageJob is the job that reads req's page on p.
func (e *Engine) pageJob(req Request) job {
	pg := req.Page
	j := job{Kind: jobPage, Lang: req.Lang.s, Orientation: pg.Orientation(), Settings: settings(req.Options),
		Layout: req.Layout, Outputs: req.Outputs.bits(), TextLayer: req.Outputs.PDF && req.Outputs.TextLayer, Page: pg.Number() - 1}
	j.EncodeImage = j.TextLayer && pg.Format() != imageinput.PDF && !pg.KeepsJPEG()
	if pg.Document() == 0 {
		j.Image = pg.Data()
		return j
	}
	j.Doc, j.DocFormat, j.DocData, j.TIFFOffset = pg.Document(), pg.Format(), pg.Data(), pg.TIFFOffset()
	j.DPI, j.Width, j.Height, j.Colour, j.PDFText = pg.DPI(), pg.Width(), pg.Height(), !pg.Gray(), req.PDFText
	j.RotatePages, j.Deskew = req.RotatePages, req.Deskew
	return j
}

// PDFInfo is what a worker found in a PDF.
type PDFInfo struct {
	Encrypted bool // opened without a password, but encrypted (an owner password)
	PageCount int
	Selected  []int        // the pages selected, from 1, in order
	Sizes     [][2]float64 // their width and height in points
	Colour    []bool       // whether each holds colour (imageinput.Page.WithColourContent)
}

// InspectPDF counts doc's pages, resolves the selection pages (imageinput.ParsePages) against
// them and maxPages, and measures the selected pages, in a worker: a PDF is parsed only there.
func (e *Engine) InspectPDF(ctx context.Context, doc imageinput.Document, pages string, maxPages int, batch bool) (PDFInfo, error) {
	if err := e.pdfReady(ctx); err != nil {
		return PDFInfo{}, err
	}
	o, err := e.exchangeAny(ctx, batch, "", job{Kind: jobInspect, Doc: doc.ID(), DocFormat: doc.Format(), DocData: doc.Data(),
		Pages: pages, MaxPages: maxPages})
	if err != nil {
		return PDFInfo{}, err
	}
	if o.Fail != failNone {
		_, err := e.result(o, false)
		return PDFInfo{}, err
	}
	return PDFInfo{Encrypted: o.Encrypted, PageCount: o.PageCount, Selected: o.Selected, Sizes: o.Sizes, Colour: o.Colour}, nil
}

// AddTextLayers returns doc (a PDF) with each layer (a page's Result.PDF, read with
// Outputs.TextLayer) laid over its page, in a worker: the client's PDF is parsed only there.
func (e *Engine) AddTextLayers(ctx context.Context, doc imageinput.Document, layers []textlayer.Layer, pdfa, batch bool) ([]byte, error) {
	o, err := e.exchangeAny(ctx, batch, "", job{Kind: jobOverlay, Doc: doc.ID(), DocFormat: doc.Format(), DocData: doc.Data(), Layers: layers, PDFA: pdfa})
	if err != nil {
		return nil, err
	}
	res, err := e.result(o, false)
	return res.PDF, err
}

func colorName(p imageinput.Page) string {
	if p.Gray() {
		return "grayscale"
	}
	return "colour"
}

// settings are the Tesseract variables of a request.
func settings(o tessconfig.Options) map[string]string {
	psm := o.PSM
	if psm < 0 {
		psm = DefaultPSM
	}
	// SetPageSegMode before the first Text() is lost in gosseract; the variable always holds.
	s := map[string]string{
		"tessedit_pageseg_mode": strconv.Itoa(psm),
		"user_defined_dpi":      strconv.Itoa(o.DPI),
	}
	for name, v := range o.Vars {
		s[name] = v
	}
	return s
}
