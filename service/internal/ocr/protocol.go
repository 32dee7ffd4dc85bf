package ocr

import (
	"github.com/otiai10/gosseract/v2"

	"github.com/readocr/readocr/service/internal/textlayer"
)

// PageImage is an image page as a searchable PDF holds it: losslessly encoded by Leptonica.
type PageImage = gosseract.PageImage

// The engine and its worker processes (this same binary, started again with workerEnv set)
// talk over three pipes, each a gob stream: jobs (parent to worker, fd 3 in the worker),
// outcomes (worker to parent, fd 4) and stop orders (parent to worker, fd 5). The worker's
// stdout and stderr carry what Tesseract and Leptonica print, which the parent logs.

const (
	workerEnv  = "READOCR_OCR_WORKER"         // "1" makes ServeIfWorker serve instead of returning
	envConfig  = "READOCR_OCR_WORKER_CONFIG"  // workerConfig as JSON
	compileEnv = "READOCR_PDFIUM_COMPILE_DIR" // makes ServeIfWorker compile PDFium into this directory

	fdJobs     = 3
	fdOutcomes = 4
	fdStops    = 5
)

// workerConfig is what a worker needs to start, passed as JSON in envConfig.
type workerConfig struct {
	TessdataDir string
	DefaultLang string
	MaxClients  int // languages kept loaded
	// ModelMemory is what the loaded models may cost together (0: no limit); Costs is each
	// model's cost and OSDMemory the orientation model's, as measured at start.
	ModelMemory int64
	Costs       map[string]int64
	OSDMemory   int64
	TrimEvery   int
	TempDir     string // the engine's private directory: PDF pages being written; the working directory
	PDFiumDir   string // PDFium's compiled code
}

// Kinds of job.
const (
	jobPage    = iota // recognise one page
	jobInspect        // count a PDF's pages and measure the selected ones
	jobOverlay        // lay text layers over the pages of a PDF (textlayer.Add)
)

// How a PDF page's text is read (PDFText).
const (
	PDFTextOCR     = iota // render and recognise every page
	PDFTextExtract        // return the text the PDF carries, without OCR
	PDFTextAuto           // the PDF's text where a page has some, OCR where it has none
	// PDFTextRedo recognises every page as rendered without its text (ocr_mode=redo_ocr): the
	// page's visible text is kept in the output, and must not be read again.
	PDFTextRedo
)

// Renderings a job may ask for besides the text (bits of job.Outputs).
const (
	outHOCR = 1 << iota
	outALTO
	outTSV
	outPDF
)

// job is one page for a worker, or a question about a document.
type job struct {
	Seq  uint64
	Kind int

	// The page: an image's bytes; or page Page (from 0) of document Doc, whose bytes (DocData)
	// are sent when the worker may not have them (it keeps the last document it read).
	Image      []byte
	Doc        uint64
	DocData    []byte
	DocFormat  string // imageinput.TIFF or imageinput.PDF
	Page       int
	TIFFOffset uint64 // a TIFF page's IFD
	DPI        int    // a PDF page's rendering resolution
	Width      int    // a PDF page's size at DPI, as the engine accounted it
	Height     int
	Colour     bool // render a PDF page in colour (for searchable PDFs), else in gray
	PDFText    int
	// A PDF page for a searchable PDF: turned upright by orientation detection (RotatePages),
	// its text lines made level (Deskew), before it is read (outcome.Rotate, outcome.Skew).
	RotatePages, Deskew bool

	Lang        string
	Orientation int
	Settings    map[string]string // Tesseract variables for this page only
	Layout      bool
	Outputs     int
	TextLayer   bool // with outPDF: the page's invisible text alone, to lay over a PDF's page
	EncodeImage bool // with TextLayer: the page's image too, losslessly encoded (outcome.Image)

	// jobOverlay: the text layers of the document's pages, and whether the answer is PDF/A-2b.
	Layers []textlayer.Layer
	PDFA   bool

	// jobInspect: the page selection (imageinput.ParsePages) and the most pages it may select.
	Pages    string
	MaxPages int
}

// Kinds of failure a worker reports.
const (
	failNone        = iota
	failUndecodable // Leptonica could not decode the bytes
	failStopped     // a stop order ended the page between words
	failOther       // Tesseract or the client setup failed
	failNeedDoc     // the job names a document the worker does not have: send its bytes
	failCoded       // a failure with its code (Code), e.g. an encrypted PDF
)

// outcome is a worker's answer to a job (Seq 0: to its start).
type outcome struct {
	Seq     uint64
	Text    string
	Boxes   []box // word boxes in reading order, with Layout
	Fail    int
	Code    string // with failCoded: a failure.Code
	Message string
	Langs   []string // loaded languages, most recently used last
	Doc     uint64   // the document the worker keeps
	CHeap   uint64   // C heap in use after the page
	RSS     int64    // resident memory after the page (and a trim, when the page grew it)

	// A page's renderings, as Outputs asked; Extracted when its text came from the PDF itself.
	HOCR, ALTO, TSV string
	PDF             []byte
	Extracted       bool
	Depth           string // a PDF page: what it was rendered in (bilevel, gray, colour)
	Image           *PageImage
	Rotate          int     // RotatePages: the clockwise turn (0, 90, 180, 270) read before OCR
	Skew            float64 // Deskew: the clockwise turn in degrees read before OCR

	// jobInspect.
	Encrypted bool // the PDF opened without a password but is encrypted (an owner password)
	PageCount int
	Selected  []int        // the selected pages, from 1
	Sizes     [][2]float64 // their width and height in points
	Colour    []bool       // whether each holds colour (depth), which rendering it costs
}

// box is one recognised word with its place in the page's structure.
type box struct {
	Text                         string
	Confidence                   float64
	X0, Y0, X1, Y1               int
	Block, Paragraph, Line, Word int
}
