// Package ocr runs Tesseract in a pool of worker processes, one page at a time each.
//
// A worker is this same binary started again (ServeIfWorker), holding warm Tesseract clients
// for up to a few languages. Pages go to workers one at a time; beyond the workers, requests
// wait in a bounded queue and are refused at once when it is full.
//
// Processes rather than threads, because some of Tesseract's work cannot be stopped from
// inside: it checks for cancellation between words only, and its layout analysis of a page of
// scattered specks grows with the square of their number (8 megapixels took 34 s here, none of
// it stoppable). A process can always be killed: a page whose request is over is stopped between
// words when it can be and killed when it cannot, and the request is answered at once either
// way. A worker that crashes on a hostile image takes only its page with it, and one that uses
// more memory for a page than its share is killed before the pod runs out (PageMemory).
//
// Where things are: engine.go the Engine, its configuration and its end (Close); warm.go its
// start; recognize.go the calls that read pages and PDFs; pool.go which request gets the next
// idle worker; exchange.go one job with one worker (watched, stopped, replaced); process.go and
// protocol.go the worker processes and what they exchange; worker*.go the worker's side.
package ocr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// Errors of Recognize (besides the context's, see failure.FromContext).
var (
	ErrBusy         = failure.New(failure.QueueFull, "all OCR workers are busy and the queue is full")
	ErrQueueTimeout = failure.New(failure.QueueTimeout, "timed out waiting for an OCR worker")
	ErrUndecodable  = failure.New(failure.UndecodableImage, "the image could not be decoded by Leptonica")
	ErrClosed       = failure.New(failure.NotReady, "the OCR engine is shut down")
	ErrTooLarge     = failure.New(failure.ImageTooLarge, "the page needs more memory than an OCR worker has")
	ErrNoPage       = errors.New("no page: make one with imageinput.Check")
)

// trimEvery is how often (in pages) a worker gives its freed C heap back to the system. glibc
// keeps what Tesseract frees after each page, and resident memory creeps up over thousands of
// pages although the bytes in use stay flat. Trimming after every page held it flattest but cost
// ~5-7% throughput; every 32 pages left throughput unchanged in `make bench` (README).
const trimEvery = 32

// stopGrace is how long a worker gets to stop a page between words before it is killed.
const stopGrace = time.Second

// watchEvery is how often a busy worker's resident memory is checked against its share.
const watchEvery = 20 * time.Millisecond

// DefaultPSM is the tesseract CLI's default page segmentation mode (fully automatic). gosseract
// defaults to 6 (one uniform block), which reads multi-column pages and headings badly and gives
// different text from what users of pytesseract got.
const DefaultPSM = 3

// Config sizes an Engine.
type Config struct {
	TessdataDir  string // the image's models ("": $TESSDATA_PREFIX, else the distribution's)
	LangpackDir  string // language packs ("": DefaultLangpackDir when it exists)
	DefaultLang  string
	MaxLanguages int // models one request may name (0: MaxLanguages)
	// Languages are the models found and measured (OpenLanguages); nil: New finds them.
	Languages *Languages
	// ModelMemory is what a worker's loaded models may cost together (Languages.WorkerModelMemory
	// is enough for any request); workers evict the least recently used beyond it. 0: no limit.
	ModelMemory  int64
	Workers      int           // worker processes: pages recognised at once
	QueueSize    int           // requests waiting for a worker beyond those running
	QueueTimeout time.Duration // longest wait for a worker
	MaxClients   int           // languages kept loaded, over all workers (each keeps at least one)
	// PageMemory is what a worker may use for one page: pages estimated to need more are
	// refused (ErrTooLarge). 0: no limit.
	PageMemory int64
	// WorkerMemory is the most resident memory a worker may have, its page included: one that
	// goes past it is killed and its page refused (ErrTooLarge). 0: no limit.
	WorkerMemory int64
	WorkerEnv    []string // extra environment for the worker processes
	// NoPDF turns PDF input off: PDFium is not compiled at start (~4 s of a CPU and ~300 MB for a
	// moment), and PDFs are refused (searchable PDF output still works: Tesseract writes it).
	NoPDF bool
	// TempDir is where the engine makes its private directory ("": os.TempDir()).
	TempDir string
	// PDFiumCache is a directory of PDFium's compiled code to use instead of compiling it into
	// the private directory: for tests, which start many engines. Whoever can write there can
	// run code in the workers.
	PDFiumCache string
	Output      io.Writer // where what workers print goes; nil: logged as debug records
	Logger      *slog.Logger
}

// DefaultConfig is the engine's configuration on a machine with cpus usable CPUs: one worker
// per CPU (Tesseract is CPU-bound and, with OMP_THREAD_LIMIT=1, single-threaded).
func DefaultConfig(cpus int) Config {
	return Config{DefaultLang: "eng", MaxLanguages: MaxLanguages, Workers: cpus, QueueSize: 4 * cpus, QueueTimeout: 20 * time.Second}
}

// Lang is a checked list of installed languages joined with "+"; make one with Engine.Lang.
type Lang struct{ s string }

func (l Lang) String() string { return l.s }

// Request is one page to read.
type Request struct {
	// Page is made by imageinput (Check, or a Document's Page or PDFPage): nothing unchecked
	// reaches Tesseract.
	Page    imageinput.Page
	Lang    Lang // the zero Lang is the default language
	Options tessconfig.Options
	Layout  bool    // also return words and lines with boxes
	Outputs Outputs // renderings besides the text
	PDFText int     // a PDF page: PDFTextOCR, PDFTextExtract or PDFTextAuto
	// RotatePages and Deskew turn a PDF page upright (orientation detection) and level (its
	// text lines' skew) before it is read; Result.Rotate and Skew say by how much.
	RotatePages, Deskew bool
	// Batch marks a page of a multi-page document: it waits for a worker behind every single
	// page, so that a long document cannot hold up short requests.
	Batch bool
}

// Outputs are the renderings a page is read into besides its text.
type Outputs struct {
	HOCR, ALTO, TSV bool
	PDF             bool // a searchable PDF page
	// TextLayer makes the PDF page the invisible text alone (no image): for AddTextLayers, or
	// with the image as it came (Result.Image), for output's image PDFs.
	TextLayer bool
}

func (o Outputs) bits() int {
	var b int
	for _, f := range []struct {
		on  bool
		bit int
	}{{o.HOCR, outHOCR}, {o.ALTO, outALTO}, {o.TSV, outTSV}, {o.PDF, outPDF}} {
		if f.on {
			b |= f.bit
		}
	}
	return b
}

// Result is what Tesseract read.
type Result struct {
	Text       string
	Confidence float64 // mean word confidence, with Layout
	Words      []Word
	Lines      []Line
	// The renderings Outputs asked for: what Tesseract's renderers write for this page (hOCR,
	// ALTO and TSV without their document's head and tail: see Head and Tail), and a one-page
	// searchable PDF.
	HOCR, ALTO, TSV string
	PDF             []byte
	Extracted       bool   // the text is the PDF page's own (PDFTextExtract, PDFTextAuto): no OCR
	Depth           string // a PDF page: what it was rendered in (bilevel, gray, colour)
	// Rotate and Skew: how a PDF page was turned before it was read (Request.RotatePages,
	// Deskew), clockwise, in degrees: its text layer is for the page turned so.
	Rotate int
	Skew   float64
	// Image is an image page losslessly encoded, with Outputs.TextLayer (nil for a PDF's page,
	// and for a JPEG a PDF holds as it is: imageinput.Page.KeepsJPEG).
	Image *PageImage
}

// Engine is the pool. It is safe for concurrent use.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	langs    *Languages
	tessdata string // the one model directory workers are given: links to every usable model (Warm)

	costOf func(imageinput.Page) int64 // PageCost; tests replace it

	admit  chan struct{} // running + queued requests
	seq    atomic.Uint64
	nextID atomic.Int64

	replaced atomic.Uint64                // workers replaced since the start (died, killed, stuck)
	onWait   atomic.Pointer[WaitObserver] // hears how long each page waited for a worker

	pdfium   chan struct{} // closed once PDFium is compiled (or could not be)
	pdfErr   error         // why not, then
	tempDir  string        // the engine's private directory
	ownsTemp bool          // Close removes it

	mu        sync.Mutex
	idle      []*process
	waiting   [2][]*waiter // for a worker: single pages first, then pages of documents
	all       map[*process]bool
	running   int // workers taken by requests
	replacing int // workers being replaced
	ready     bool
	closed    bool
	done      chan struct{}  // closed by Close
	drained   chan struct{}  // closed when, once closed, no worker is running or being replaced
	wg        sync.WaitGroup // workers being stopped or replaced
}

// waiter is a request waiting for a worker.
type waiter struct {
	got chan *process // buffered: put hands it a worker
}

// New checks the configuration and the installed languages. It starts no worker: call Warm.
func New(cfg Config) (*Engine, error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("workers must be at least 1, got %d", cfg.Workers)
	}
	if cfg.QueueSize < 0 {
		return nil, fmt.Errorf("queue size must not be negative, got %d", cfg.QueueSize)
	}
	cfg.MaxClients = max(cfg.MaxClients, cfg.Workers)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxLanguages == 0 {
		cfg.MaxLanguages = MaxLanguages
	}
	if cfg.MaxLanguages < 1 || cfg.MaxLanguages > MaxLanguages {
		return nil, fmt.Errorf("max languages must be 1 to %d, got %d", MaxLanguages, cfg.MaxLanguages)
	}
	langs := cfg.Languages
	if langs == nil {
		var err error
		langs, err = OpenLanguages(context.Background(), LanguagesConfig{TessdataDir: cfg.TessdataDir,
			LangpackDir: cfg.LangpackDir, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
	}
	def, err := langs.Parse(cfg.DefaultLang, cfg.MaxLanguages)
	if err != nil {
		return nil, fmt.Errorf("default language: %s", failure.MessageOf(err))
	}
	cfg.DefaultLang = def
	e := &Engine{
		cfg:     cfg,
		log:     cfg.Logger,
		langs:   langs,
		admit:   make(chan struct{}, cfg.Workers+cfg.QueueSize),
		all:     map[*process]bool{},
		done:    make(chan struct{}),
		drained: make(chan struct{}),
		pdfium:  make(chan struct{}),
	}
	e.costOf = e.pageCost
	return e, nil
}

// Languages returns what lang= accepts: the usable language and script models.
func (e *Engine) Languages() []string { return e.langs.Names() }

// Models returns the models found: usable, and unusable with why.
func (e *Engine) Models() *Languages { return e.langs }

// DefaultLang returns the language used when a request names none.
func (e *Engine) DefaultLang() string { return e.cfg.DefaultLang }

// MaxLanguages returns how many models one request may name.
func (e *Engine) MaxLanguages() int { return e.cfg.MaxLanguages }

// PageMemory returns what a worker may use for one page (0: no limit).
func (e *Engine) PageMemory() int64 { return e.cfg.PageMemory }

// Lang checks a "+"-joined language list; "" is the default language.
func (e *Engine) Lang(s string) (Lang, error) {
	if s == "" {
		return Lang{e.cfg.DefaultLang}, nil
	}
	l, err := e.langs.Parse(s, e.cfg.MaxLanguages)
	if err != nil {
		return Lang{}, err
	}
	return Lang{l}, nil
}

// CanOrient reports whether the orientation model (osd) is installed: rotate_pages needs it.
func (e *Engine) CanOrient() bool { return e.langs != nil && e.langs.osd != nil }

// Ready reports whether Warm finished and Close has not begun.
func (e *Engine) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ready && !e.closed
}

// Stats is a snapshot for metrics.
type Stats struct {
	Running, Waiting, Clients, Workers int
	CHeap                              uint64 // C heap in use over all workers, as last reported
	Replaced                           uint64 // workers replaced since the start: a counter
}

// WaitObserver hears, for each page, how long it waited for a worker (batch: a page of a
// document or a job, behind single pages) and whether it got one.
type WaitObserver func(wait time.Duration, batch, got bool)

// ObserveWaits makes f hear every page's wait for a worker (metrics).
func (e *Engine) ObserveWaits(f WaitObserver) { e.onWait.Store(&f) }

// Stats returns the current load.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Running: e.running, Waiting: len(e.waiting[0]) + len(e.waiting[1]), Workers: e.cfg.Workers,
		Replaced: e.replaced.Load()}
	for p := range e.all {
		s.Clients += len(p.langs)
		s.CHeap += p.cheap
	}
	return s
}

// WorkerRSS returns the resident memory of the worker processes, in bytes.
func (e *Engine) WorkerRSS() int64 {
	e.mu.Lock()
	procs := make([]*process, 0, len(e.all))
	for p := range e.all {
		procs = append(procs, p)
	}
	e.mu.Unlock()
	var sum int64
	for _, p := range procs {
		sum += p.rss()
	}
	return sum
}

// Close marks the engine not ready, waits for running pages to finish (or ctx to end), and
// stops every worker; workers still busy when ctx ends are killed.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		close(e.done)
	}
	e.closed = true
	for prio := range e.waiting { // nobody will hand these a worker now
		for _, w := range e.waiting[prio] {
			w.got <- nil
		}
		e.waiting[prio] = nil
	}
	e.checkDrained()
	e.mu.Unlock()
	var err error
	select {
	case <-e.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	e.mu.Lock()
	procs := make([]*process, 0, len(e.all))
	for p := range e.all {
		procs = append(procs, p)
	}
	e.all, e.idle = map[*process]bool{}, nil
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			if err != nil {
				p.kill("shutdown")
				<-p.exited
				return
			}
			p.shutdown(2 * time.Second)
		})
	}
	wg.Wait()
	e.wg.Wait()
	if e.ownsTemp {
		os.RemoveAll(e.tempDir)
	}
	return err
}
