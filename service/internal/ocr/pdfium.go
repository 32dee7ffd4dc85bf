package ocr

import (
	"errors"
	"fmt"
	"image"
	"io"
	"runtime"
	"runtime/debug"
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
// no system library, and the renderer runs in a sandbox that can open no file, in a worker that
// is killed if it takes too much memory or time. Compiling the module to machine code takes
// seconds and ~300 MB, so the engine compiles it once, in a process of its own that then exits
// (Engine.compilePDFium), into its private directory; workers load the compiled code from there in ~0.1 s when a document arrives.

// pdfRuntime returns wazero's configuration, with the compiled code in dir. The instance's
// memory is PDFium's module's own cap (2 GiB); the engine's watchdog holds the worker to less.
func pdfRuntime(dir string) (wazero.RuntimeConfig, error) {
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, err
	}
	return wazero.NewRuntimeConfig().WithCompilationCache(cache).
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling), nil
}

// newPDFiumPool starts a runtime for one instance at a time, compiling the module into dir's
// cache when it is not there yet. Instances see no file system and print nowhere.
func newPDFiumPool(dir string) (pdfium.Pool, error) {
	rc, err := pdfRuntime(dir)
	if err != nil {
		return nil, err
	}
	return webassembly.Init(webassembly.Config{MinIdle: 0, MaxIdle: 0, MaxTotal: 1, RuntimeConfig: rc,
		FSConfig: wazero.NewFSConfig(), Stdout: io.Discard, Stderr: io.Discard})
}

// compilePDFium compiles PDFium into dir and returns.
func compilePDFium(dir string) error {
	pool, err := newPDFiumPool(dir)
	if err != nil {
		return err
	}
	return pool.Close()
}

// pdfDoc is a PDF a worker keeps, and PDFium's runtime to read it with. Each use opens it in a
// fresh instance and closes that instance after (open): an instance's memory only grows, and
// a page's rendering must not hold PDFium's memory while Tesseract reads the page.
type pdfDoc struct {
	pool pdfium.Pool
	data []byte
}

func newPDFDoc(cfg workerConfig, data []byte) (*pdfDoc, error) {
	pool, err := newPDFiumPool(cfg.PDFiumDir)
	if err != nil {
		return nil, fmt.Errorf("starting PDFium: %w", err)
	}
	return &pdfDoc{pool: pool, data: data}, nil
}

func (d *pdfDoc) close() { d.pool.Close() }

// openPDF is the document open in an instance of its own.
type openPDF struct {
	inst pdfium.Pdfium
	doc  references.FPDF_DOCUMENT
}

// use opens the document in a new instance, calls f, and closes the instance, giving its
// memory back to the system. Errors opening it carry their failure codes.
func (d *pdfDoc) use(f func(o openPDF) error) error {
	inst, err := d.pool.GetInstance(30 * time.Second)
	if err != nil {
		return fmt.Errorf("starting PDFium: %w", err)
	}
	defer func() {
		inst.Close()
		runtime.GC() // the instance's memory is garbage now
		debug.FreeOSMemory()
	}()
	res, err := inst.OpenDocument(&requests.OpenDocument{File: &d.data})
	if err != nil {
		switch {
		case errors.Is(err, pdfiumerrors.ErrPassword):
			return failure.New(failure.EncryptedPDF, "the PDF is encrypted: it cannot be opened without its password")
		case errors.Is(err, pdfiumerrors.ErrSecurity):
			return failure.New(failure.EncryptedPDF, "the PDF is encrypted with a scheme PDFium does not support")
		}
		return failure.New(failure.UndecodableDocument, "PDFium could not read the PDF (%s)", pdfiumMessage(err))
	}
	defer inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: res.Document})
	return f(openPDF{inst: inst, doc: res.Document})
}

func (d openPDF) page(i int) requests.Page {
	return requests.Page{ByIndex: &requests.PageByIndex{Document: d.doc, Index: i}}
}

func (d openPDF) pageCount() (int, error) {
	res, err := d.inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: d.doc})
	if err != nil {
		return 0, err
	}
	return res.PageCount, nil
}

// encrypted reports whether the document is encrypted (it opened: with an owner password only).
func (d openPDF) encrypted() bool {
	res, err := d.inst.FPDF_GetSecurityHandlerRevision(&requests.FPDF_GetSecurityHandlerRevision{Document: d.doc})
	return err != nil || res.SecurityHandlerRevision >= 0
}

// size is page i's width and height in points, as it is displayed (its /Rotate applied).
func (d openPDF) size(i int) (float64, float64, error) {
	res, err := d.inst.GetPageSize(&requests.GetPageSize{Page: d.page(i)})
	if err != nil {
		return 0, 0, err
	}
	return res.Width, res.Height, nil
}

// text is the text page i carries ("" when it has none, e.g. a scan), lines ended by "\n".
func (d openPDF) text(i int) (string, error) {
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
func (d openPDF) render(i, dpi int, colour bool) (rendered, error) {
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

// pdfiumMessage is PDFium's error without go-pdfium's number prefix ("3: incorrect format").
func pdfiumMessage(err error) string {
	m := err.Error()
	if _, rest, ok := strings.Cut(m, ": "); ok && len(rest) > 0 && len(m)-len(rest) <= 4 {
		return rest
	}
	return m
}
