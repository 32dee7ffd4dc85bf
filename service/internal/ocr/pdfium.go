package ocr

import (
	"errors"
	"fmt"
	"image"
	"io"
	"strings"
	"time"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/readocr/readocr/service/internal/failure"
)

// PDF pages are rendered by PDFium compiled to WebAssembly (go-pdfium, run by wazero): no cgo,
// no system library, and the renderer runs in a sandbox whose memory is capped and that can
// open no file. Compiling the module to machine code takes seconds and ~300 MB, so the engine
// compiles it once, in a process of its own that then exits (CompilePDFium), into its private
// directory; workers load the compiled code from there in ~0.1 s when a document arrives.

// pdfRuntime returns wazero's configuration: the compiled code in dir, memory capped.
func pdfRuntime(dir string, memory int64) (wazero.RuntimeConfig, error) {
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, err
	}
	rc := wazero.NewRuntimeConfig().WithCompilationCache(cache).
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling)
	if memory > 0 {
		rc = rc.WithMemoryLimitPages(uint32(min(memory>>16, 65536))) // 64 KiB pages, 4 GiB at most
	}
	return rc, nil
}

// newPDFiumPool starts a runtime for one instance, compiling the module into dir's cache when
// it is not there yet. The instance sees no file system and prints nowhere.
func newPDFiumPool(dir string, memory int64) (pdfium.Pool, error) {
	rc, err := pdfRuntime(dir, memory)
	if err != nil {
		return nil, err
	}
	return webassembly.Init(webassembly.Config{MinIdle: 0, MaxIdle: 1, MaxTotal: 1, RuntimeConfig: rc,
		FSConfig: wazero.NewFSConfig(), Stdout: io.Discard, Stderr: io.Discard})
}

// compilePDFium compiles PDFium into dir and returns.
func compilePDFium(dir string) error {
	pool, err := newPDFiumPool(dir, 0)
	if err != nil {
		return err
	}
	return pool.Close()
}

// pdfDoc is a PDF open in a PDFium instance of its own, which closing frees.
type pdfDoc struct {
	pool pdfium.Pool
	inst pdfium.Pdfium
	doc  references.FPDF_DOCUMENT
	data []byte // PDFium reads from it while the document is open
}

// openPDF opens data in a new PDFium instance. Errors carry their failure codes.
func openPDF(cfg workerConfig, data []byte) (*pdfDoc, error) {
	pool, err := newPDFiumPool(cfg.PDFiumDir, cfg.PDFMemory)
	if err != nil {
		return nil, fmt.Errorf("starting PDFium: %w", err)
	}
	inst, err := pool.GetInstance(30 * time.Second)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("starting PDFium: %w", err)
	}
	d := &pdfDoc{pool: pool, inst: inst, data: data}
	res, err := inst.OpenDocument(&requests.OpenDocument{File: &d.data})
	if err != nil {
		d.close()
		switch {
		case errors.Is(err, pdfiumerrors.ErrPassword):
			return nil, failure.New(failure.EncryptedPDF, "the PDF is encrypted: it cannot be opened without its password")
		case errors.Is(err, pdfiumerrors.ErrSecurity):
			return nil, failure.New(failure.EncryptedPDF, "the PDF is encrypted with a scheme PDFium does not support")
		}
		return nil, failure.New(failure.UndecodableDocument, "PDFium could not read the PDF (%s)", pdfiumMessage(err))
	}
	d.doc = res.Document
	return d, nil
}

// pdfiumMessage is PDFium's error without go-pdfium's number prefix ("3: incorrect format").
func pdfiumMessage(err error) string {
	m := err.Error()
	if _, rest, ok := strings.Cut(m, ": "); ok && len(rest) > 0 && len(m)-len(rest) <= 4 {
		return rest
	}
	return m
}

func (d *pdfDoc) close() {
	if d.doc != "" {
		d.inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: d.doc})
	}
	d.inst.Close()
	d.pool.Close()
}

func (d *pdfDoc) page(i int) requests.Page {
	return requests.Page{ByIndex: &requests.PageByIndex{Document: d.doc, Index: i}}
}

func (d *pdfDoc) pageCount() (int, error) {
	res, err := d.inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: d.doc})
	if err != nil {
		return 0, err
	}
	return res.PageCount, nil
}

// size is page i's width and height in points, as it is displayed (its /Rotate applied).
func (d *pdfDoc) size(i int) (float64, float64, error) {
	res, err := d.inst.GetPageSize(&requests.GetPageSize{Page: d.page(i)})
	if err != nil {
		return 0, 0, err
	}
	return res.Width, res.Height, nil
}

// text is the text page i carries ("" when it has none, e.g. a scan), lines ended by "\n".
func (d *pdfDoc) text(i int) (string, error) {
	res, err := d.inst.GetPageText(&requests.GetPageText{Page: d.page(i)})
	if err != nil {
		return "", err
	}
	t := strings.ReplaceAll(res.Text, "\r\n", "\n")
	if strings.TrimSpace(t) == "" {
		return "", nil
	}
	if !strings.HasSuffix(t, "\n") {
		t += "\n"
	}
	return t, nil
}

// rendered is a page's pixels, valid until release.
type rendered struct {
	pix                   []byte
	width, height, stride int
	channels              int
	release               func()
}

// render draws page i at dpi, in gray or RGBA, on white.
func (d *pdfDoc) render(i, dpi int, colour bool) (rendered, error) {
	format := requests.RenderImageFormatGrayscale
	if colour {
		format = requests.RenderImageFormatRGBA
	}
	res, err := d.inst.RenderPageInDPI(&requests.RenderPageInDPI{Page: d.page(i), DPI: dpi, ImageFormat: format})
	if err != nil {
		return rendered{}, err
	}
	switch img := res.Result.RenderedImage.(type) {
	case *image.Gray:
		return rendered{img.Pix, img.Rect.Dx(), img.Rect.Dy(), img.Stride, 1, res.Cleanup}, nil
	case *image.RGBA:
		return rendered{img.Pix, img.Rect.Dx(), img.Rect.Dy(), img.Stride, 4, res.Cleanup}, nil
	}
	res.Cleanup()
	return rendered{}, fmt.Errorf("PDFium rendered a %T", res.Result.RenderedImage)
}
