// Package pipeline is the one path a request to read an image or a document takes, whoever asks
// (the HTTP handler today, a job worker next): check the options and the language, fetch the
// input if it is a URL, check it, read its pages (spread over the OCR workers), and encode the
// answer. Every step that can fail returns an error that carries its code (package failure);
// the caller has one error exit.
package pipeline

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/otiai10/gosseract/v2"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/errgroup"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/telemetry"
	"github.com/readocr/readocr/service/internal/tessconfig"
	"github.com/readocr/readocr/service/internal/textlayer"
)

// Config holds the limits the pipeline applies.
type Config struct {
	MaxPixels int64 // largest page, width x height, checked from its header (or a PDF page's size)
	MaxPages  int   // most pages one request may read
	// DocumentWorkers is how many of a document's pages are read at once (at most; single pages
	// go first). 0: as many as there are workers.
	DocumentWorkers int
}

// DefaultConfig is the pipeline's configuration unless flags say otherwise.
func DefaultConfig() Config { return Config{MaxPixels: 40_000_000, MaxPages: 100} }

// Input is one image or document to read, as the client gave it.
type Input struct {
	Image  []byte    // the input, for base64, data: URIs and uploads; or
	URL    fetch.URL // where to fetch it
	Source string    // url, base64, data_uri or multipart: for logs and metrics
	Options

	// For jobs: Background puts every page behind single pages sent synchronously (as a
	// document's pages are), and Progress, if set, hears of each page read.
	Background bool
	Progress   func(done, total int)
}

// Facts are what the pipeline learned about a request, for its log line and metrics. Run
// fills them as it goes, so they are there when it fails too.
type Facts struct {
	Lang          string
	Format        string        // of the input
	Output        output.Format // of the answer
	Width, Height int           // of the first page read
	Pages         int           // pages read
	OCR           time.Duration // from the first page's wait for a worker to the last page's end
}

// Pipeline reads images and documents. It is safe for concurrent use.
type Pipeline struct {
	cfg     Config
	engine  *ocr.Engine
	fetcher *fetch.Fetcher
	version string
}

// New returns a pipeline over an engine and a fetcher.
func New(cfg Config, engine *ocr.Engine, fetcher *fetch.Fetcher) *Pipeline {
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = DefaultConfig().MaxPages
	}
	return &Pipeline{cfg: cfg, engine: engine, fetcher: fetcher, version: gosseract.TesseractVersion()}
}

// options are a request's checked options.
type options struct {
	tess    tessconfig.Options
	lang    ocr.Lang
	format  output.Format
	pages   imageinput.Selection
	spec    string // the selection as written, for the worker that resolves a PDF's
	pdfText int
	// rotate and deskew: format pdf of a PDF, its pages turned before they are read
	rotate, deskew bool
	pdfa           bool // output_type pdfa: the searchable PDF of a PDF is PDF/A-2b
}

// Check makes the checks Run makes before reading any input: the options and the language.
// A job is checked so before it is queued.
func (p *Pipeline) Check(in Input) error {
	_, err := p.check(in)
	return err
}

// check reads the options, cheap checks that come before any download.
func (p *Pipeline) check(in Input) (options, error) {
	var o options
	var err error
	if o.tess, err = tessconfig.Parse(in.Config); err != nil {
		return o, err
	}
	if o.lang, err = p.engine.Lang(in.Lang); err != nil {
		return o, err
	}
	if o.format, err = output.ParseFormat(in.Format); err != nil {
		return o, err
	}
	if in.Layout {
		if in.Format != "" && o.format != output.JSON {
			return o, failure.Detail(output.ErrFormat, "layout=true asks for format json, and format is %s", o.format)
		}
		o.format = output.JSON
	}
	if o.pages, err = imageinput.ParsePages(string(in.Pages)); err != nil {
		return o, err
	}
	o.spec = string(in.Pages)
	switch strings.ToLower(in.PDFText) {
	case "", "ocr":
		o.pdfText = ocr.PDFTextOCR
	case "extract":
		o.pdfText = ocr.PDFTextExtract
	case "auto":
		o.pdfText = ocr.PDFTextAuto
	default:
		return o, failure.Detail(output.ErrFormat, "pdf_text %q is not one of ocr, extract, auto", in.PDFText)
	}
	if o.pdfText != ocr.PDFTextOCR && o.format != output.Text && o.format != output.JSON {
		return o, failure.Detail(output.ErrFormat, "pdf_text=%s gives text without OCR: it works with format text or json, not %s", in.PDFText, o.format)
	}
	if err := checkOCRMode(in.OCRMode, &o); err != nil {
		return o, err
	}
	return o, p.checkTurns(in.Options, &o)
}

// checkTurns reads rotate_pages and deskew into o: for format pdf only (their turns are the
// output page's), with the orientation model for rotate_pages, and not with redo_ocr (the page
// keeps its visible text, which a deskew would turn; OCRmyPDF refuses the pair too).
func (p *Pipeline) checkTurns(in Options, o *options) error {
	o.rotate, o.deskew = in.RotatePages, in.Deskew
	for _, f := range []struct {
		on   bool
		name string
	}{{in.RotatePages, "rotate_pages"}, {in.Deskew, "deskew"}} {
		if f.on && o.format != output.PDF {
			return failure.Detail(output.ErrFormat, "%s turns the pages of a searchable PDF: it works with format pdf, not %s", f.name, o.format)
		}
	}
	switch strings.ToLower(in.OutputType) {
	case "", "pdf":
	case "pdfa", "pdfa-2":
		if o.format != output.PDF {
			return failure.Detail(output.ErrFormat, "output_type=%s is a kind of searchable PDF: it works with format pdf, not %s", in.OutputType, o.format)
		}
		o.pdfa = true
	default:
		return failure.Detail(output.ErrFormat, "output_type %q is not one of pdf, pdfa (PDF/A-2b; pdfa-2 is the same)", in.OutputType)
	}
	if in.Deskew && o.pdfText == ocr.PDFTextRedo {
		return failure.Detail(output.ErrFormat, "deskew turns the whole page, and redo_ocr keeps its visible text as it is: ask for one of them")
	}
	if in.RotatePages && !p.engine.CanOrient() {
		return failure.New(failure.UnknownLanguage, "rotate_pages needs the orientation model (osd), which is not installed")
	}
	return nil
}

// OCR modes of a searchable PDF made from a PDF, as OCRmyPDF's users know them.
const (
	SkipText = "skip_text" // pages that have text are kept as they are, without OCR (the default)
	ForceOCR = "force_ocr" // every page is OCRed, and its layer added over any text it has
	// RedoOCR: every page's earlier OCR layer (its invisible text) is removed and the page
	// OCRed again, its visible text hidden from Tesseract (kept in the output, not read twice).
	RedoOCR = "redo_ocr"
)

// checkOCRMode reads ocr_mode into o: for format pdf only, where it decides which pages of a
// PDF get a text layer, through the same detection as pdf_text=auto.
func checkOCRMode(mode string, o *options) error {
	if o.format != output.PDF {
		if mode != "" {
			return failure.Detail(output.ErrFormat, "ocr_mode=%s decides which pages of a searchable PDF are OCRed: it works with format pdf, not %s", mode, o.format)
		}
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "", SkipText:
		o.pdfText = ocr.PDFTextAuto
	case ForceOCR:
		o.pdfText = ocr.PDFTextOCR
	case RedoOCR:
		o.pdfText = ocr.PDFTextRedo
	default:
		return failure.Detail(output.ErrFormat, "ocr_mode %q is not one of %s, %s, %s", mode, SkipText, ForceOCR, RedoOCR)
	}
	return nil
}

// Result is an answer: its body in the format asked, and that format's media type.
type Result struct {
	Body        []byte
	ContentType string
	Pages       []output.Page
}

// Run reads one image or document. The cheap checks come first, so that a bad option or
// language costs no download. A fetched input is accounted to mem (the request's reservation)
// before it is read, as are the renderings of the pages as they arrive.
func (p *Pipeline) Run(ctx context.Context, in Input, mem *membudget.Reservation, facts *Facts) (Result, error) {
	opts, err := p.check(in)
	if err != nil {
		return Result{}, err
	}
	facts.Lang, facts.Output = opts.lang.String(), opts.format
	data := in.Image
	if in.URL.Valid() {
		sctx, span := telemetry.Stage(ctx, "fetch")
		data, err = p.fetcher.Get(sctx, in.URL, mem.Grow)
		telemetry.End(span, err)
		if err != nil {
			return Result{}, err
		}
	}
	_, span := telemetry.Stage(ctx, "decode", attribute.Int("readocr.input.bytes", len(data)))
	doc, err := imageinput.Open(data, p.cfg.MaxPixels)
	if err == nil {
		span.SetAttributes(attribute.String("readocr.input.format", doc.Format()))
	}
	telemetry.End(span, err)
	if err != nil {
		return Result{}, err
	}
	facts.Format = doc.Format()
	if err := checkPDFOptions(opts, doc.Format()); err != nil {
		return Result{}, err
	}
	_, span = telemetry.Stage(ctx, "admit")
	release, err := p.engine.Admit()
	telemetry.End(span, err)
	if err != nil {
		return Result{}, err
	}
	defer release()
	sctx, span := telemetry.Stage(ctx, "render")
	pages, err := p.pages(sctx, doc, opts)
	telemetry.End(span, err)
	if err != nil {
		return Result{}, err
	}
	facts.Pages, facts.Width, facts.Height = len(pages), pages[0].Width(), pages[0].Height()
	start := time.Now()
	sctx, span = telemetry.Stage(ctx, "recognise", attribute.Int("readocr.pages", len(pages)), attribute.String("readocr.lang", facts.Lang))
	read, err := p.read(sctx, pages, opts, mem, in)
	telemetry.End(span, err)
	facts.OCR = time.Since(start)
	if err != nil {
		return Result{}, err
	}
	sctx, span = telemetry.Stage(ctx, "encode", attribute.String("readocr.output.format", string(opts.format)))
	res, err := p.encode(sctx, doc, read, opts, mem, in.Background)
	telemetry.End(span, err)
	return res, err
}

// checkPDFOptions refuses the options that only a PDF input takes, for any other input.
func checkPDFOptions(opts options, f string) error {
	if (opts.rotate || opts.deskew) && f != imageinput.PDF {
		return failure.Detail(output.ErrFormat, "rotate_pages and deskew turn the pages of a PDF; this input is a %s image (its EXIF orientation is applied)", f)
	}
	if opts.pdfa && f != imageinput.PDF {
		return failure.Detail(output.ErrFormat, "output_type=pdfa makes a PDF/A of a PDF; this input is a %s image: ask for output_type=pdf", f)
	}
	return nil
}

// encode writes the answer in the format asked.
func (p *Pipeline) encode(ctx context.Context, doc imageinput.Document, read []output.Page, opts options, mem *membudget.Reservation, background bool) (Result, error) {
	if opts.format == output.PDF && doc.Format() == imageinput.PDF {
		body, err := p.addTextLayers(ctx, doc, read, opts, mem, background)
		if err != nil {
			return Result{}, err
		}
		return Result{Body: body, ContentType: opts.format.ContentType(), Pages: read}, nil
	}
	var body bytes.Buffer
	if err := output.Encode(&body, opts.format, read, p.version); err != nil {
		return Result{}, failure.Wrap(failure.Internal, err, "encoding the answer")
	}
	return Result{Body: body.Bytes(), ContentType: opts.format.ContentType(), Pages: read}, nil
}

// addTextLayers is the searchable PDF of a PDF: the document as it came, with the text layer
// of each page that was OCRed laid over it (pages that kept their own text get none); with
// redo_ocr, every page read loses its earlier layer, whether or not it has a new one.
func (p *Pipeline) addTextLayers(ctx context.Context, doc imageinput.Document, pages []output.Page, opts options, mem *membudget.Reservation, background bool) ([]byte, error) {
	var layers []textlayer.Layer
	redo := opts.pdfText == ocr.PDFTextRedo
	for _, pg := range pages {
		if len(pg.Result.PDF) > 0 || redo {
			layers = append(layers, textlayer.Layer{Page: pg.Number - 1, PDF: pg.Result.PDF, Redo: redo,
				Rotate: pg.Result.Rotate, Skew: pg.Result.Skew})
		}
	}
	if err := mem.Grow(ctx, int64(len(doc.Data()))); err != nil { // the answer holds the document again
		return nil, err
	}
	return p.engine.AddTextLayers(ctx, doc, layers, opts.pdfa, len(pages) > 1 || background)
}

// pages are the selected pages of doc, each checked: from their headers for images and TIFFs;
// for a PDF, from the sizes a worker measured, at the resolution that fits the limits.
func (p *Pipeline) pages(ctx context.Context, doc imageinput.Document, opts options) ([]imageinput.Page, error) {
	var pages []imageinput.Page
	if doc.Format() != imageinput.PDF {
		numbers, err := opts.pages.Resolve(doc.PageCount(), p.cfg.MaxPages)
		if err != nil {
			return nil, err
		}
		for _, n := range numbers {
			pg, err := doc.Page(n, p.cfg.MaxPixels)
			if err != nil {
				return nil, err
			}
			pages = append(pages, pg)
		}
		return pages, nil
	}
	info, err := p.engine.InspectPDF(ctx, doc, opts.spec, p.cfg.MaxPages, false)
	if err != nil {
		return nil, err
	}
	if info.Encrypted && opts.format == output.PDF {
		// Its text layer's streams would have to be encrypted with the document's key; OCRmyPDF
		// refuses such files too. Said before any page is read.
		return nil, errEncrypted
	}
	for i, n := range info.Selected {
		colourContent := i < len(info.Colour) && info.Colour[i]
		pg, err := doc.PDFPage(n, info.Sizes[i][0], info.Sizes[i][1], opts.tess.DPI, p.pdfMaxPixels(doc, colourContent), pdfColour)
		if err != nil {
			return nil, err
		}
		pages = append(pages, pg.WithColourContent(colourContent))
	}
	return pages, nil
}

// Every format renders PDF pages in gray (black and white ones in 1 bit): a searchable PDF
// keeps the original page, so the rendering is Tesseract's input only, and colour gives it
// nothing gray does not (less: its colour thresholding takes a yellow highlighter, dark in
// blue, for ink), at 4 bytes a pixel instead of 1.
const pdfColour = false

// pdfMaxPixels is the largest rendering of a page of doc (a PDF) that fits the limits;
// colourContent: the page holds colour (PDFium decodes its images in colour whatever it renders).
func (p *Pipeline) pdfMaxPixels(doc imageinput.Document, colourContent bool) int64 {
	maxPixels := p.cfg.MaxPixels
	if m := p.engine.MaxPDFPixels(int64(len(doc.Data())), pdfColour, colourContent); m >= 0 {
		maxPixels = min(maxPixels, m)
	}
	return maxPixels
}

// read recognises pages, spread over the workers, and returns them in order. The first page
// that fails stops the others.
func (p *Pipeline) read(ctx context.Context, pages []imageinput.Page, opts options, mem *membudget.Reservation, in Input) ([]output.Page, error) {
	out := make([]output.Page, len(pages))
	var mu sync.Mutex
	done := 0
	if in.Progress != nil {
		in.Progress(0, len(pages))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.documentWorkers())
	for i, pg := range pages {
		g.Go(func() error {
			var err error
			out[i], err = p.readPage(gctx, pg, opts, mem, len(pages) > 1 || in.Background)
			if err != nil {
				if ctx.Err() == nil && gctx.Err() != nil && failure.CodeOf(err) == failure.ClientClosedRequest {
					return nil // stopped because another page failed: that page's error is the answer
				}
				return err
			}
			if in.Progress != nil {
				mu.Lock()
				done++
				in.Progress(done, len(pages))
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// readPage recognises one page, holding its renderings' memory in mem.
func (p *Pipeline) readPage(ctx context.Context, pg imageinput.Page, opts options, mem *membudget.Reservation, batch bool) (output.Page, error) {
	pctx, span := telemetry.Stage(ctx, "recognise page", attribute.Int("readocr.page", pg.Number()))
	res, err := p.engine.RecognizePage(pctx, ocr.Request{Page: pg, Lang: opts.lang, Options: opts.tess,
		Layout: opts.format.Layout(), Outputs: opts.format.Outputs(), PDFText: opts.pdfText, Batch: batch,
		RotatePages: opts.rotate, Deskew: opts.deskew})
	telemetry.End(span, err)
	if err != nil {
		return output.Page{}, err
	}
	if err := mem.Grow(ctx, int64(len(res.PDF)+len(res.HOCR)+len(res.ALTO)+len(res.TSV)+len(res.Text))); err != nil {
		return output.Page{}, err
	}
	out := output.Page{Number: pg.Number(), Width: pg.Width(), Height: pg.Height(), DPI: pg.DPI(), Result: res}
	if opts.format == output.PDF && pg.KeepsJPEG() {
		out.JPEG, out.JPEGComponents = pg.Data(), pg.Components()
	}
	return out, nil
}

func (p *Pipeline) documentWorkers() int {
	if p.cfg.DocumentWorkers > 0 {
		return p.cfg.DocumentWorkers
	}
	return max(p.engine.Stats().Workers, 1)
}
