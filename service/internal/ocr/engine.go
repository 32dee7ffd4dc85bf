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
package ocr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/tessconfig"
	"github.com/readocr/readocr/service/internal/textlayer"
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

// Warm makes the engine's private directory, starts the workers (they load the default
// language at once, in parallel) and compiles PDFium, and then marks the engine ready.
// Progress is logged: on a small CPU share this takes seconds.
func (e *Engine) Warm(ctx context.Context) error {
	start := time.Now()
	if err := e.makeTempDir(); err != nil {
		return err
	}
	if e.tessdata == "" {
		dir := filepath.Join(e.tempDir, "tessdata")
		if err := e.langs.link(dir); err != nil {
			return fmt.Errorf("linking the language models: %w", err)
		}
		e.tessdata = dir
	}
	go e.compilePDFium(ctx)
	type started struct {
		p   *process
		err error
	}
	results := make(chan started, e.cfg.Workers)
	for range e.cfg.Workers {
		go func() {
			p, err := startProcess(int(e.nextID.Add(1)), e.workerConfig(), e.cfg, e.log)
			results <- started{p, err}
		}()
	}
	var errs []error
	for i := range e.cfg.Workers {
		var r started
		select {
		case r = <-results:
		case <-ctx.Done():
			// The workers still starting are shut down as they arrive.
			go func(n int) {
				for range n {
					if r := <-results; r.p != nil {
						r.p.shutdown(time.Second)
					}
				}
			}(e.cfg.Workers - i)
			return ctx.Err()
		}
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		e.mu.Lock()
		e.all[r.p] = true
		e.mu.Unlock()
		e.put(r.p)
		e.log.Info("OCR worker warm", "lang", e.cfg.DefaultLang, "n", i+1-len(errs), "of", e.cfg.Workers,
			"worker_rss_mib", r.p.rss()>>20)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	select {
	case <-e.pdfium:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	e.ready = true
	e.mu.Unlock()
	e.log.Info("OCR engine ready", "workers", e.cfg.Workers, "queue", e.cfg.QueueSize,
		"tessdata", e.langs.tessdata, "langpacks", e.langs.packs, "languages", e.langs.Names(),
		"model_memory_mib", e.cfg.ModelMemory>>20, "page_memory_mib", e.cfg.PageMemory>>20,
		"pdf", e.pdfErr == nil, "took_ms", time.Since(start).Milliseconds())
	return nil
}

// makeTempDir makes the directory only this engine writes: PDFium's compiled code (which
// workers run, so nobody else may write there) and PDF pages being written.
func (e *Engine) makeTempDir() error {
	if e.tempDir != "" {
		return nil
	}
	dir, err := os.MkdirTemp(e.cfg.TempDir, "readocr-")
	if err != nil {
		return fmt.Errorf("documents need a writable temporary directory (set TMPDIR; in a container with a read-only root, mount one at /tmp): %w", err)
	}
	e.tempDir, e.ownsTemp = dir, true
	return nil
}

func (e *Engine) pdfiumDir() string {
	if e.cfg.PDFiumCache != "" {
		return e.cfg.PDFiumCache
	}
	return e.tempDir
}

// compilePDFium compiles PDFium into the engine's directory, in a process of its own: the
// compiler's ~300 MB are given back when it exits. Documents wait for it; images do not.
func (e *Engine) compilePDFium(ctx context.Context) {
	defer close(e.pdfium)
	if e.cfg.NoPDF {
		e.pdfErr = failure.New(failure.UnsupportedMediaType, "PDF input is turned off on this server (--pdf=false)")
		return
	}
	start := time.Now()
	exe, err := os.Executable()
	if err == nil {
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), compileEnv+"="+e.pdfiumDir())
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var out []byte
		if out, err = cmd.CombinedOutput(); err != nil {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if err != nil {
		e.pdfErr = failure.Wrap(failure.Internal, err, "PDFium could not be compiled")
		e.log.Error("PDF rendering is unavailable: PDFium could not be compiled", "err", err)
		return
	}
	e.log.Info("PDFium compiled", "took_ms", time.Since(start).Milliseconds())
}

func (e *Engine) workerConfig() workerConfig {
	costs := map[string]int64{}
	for _, m := range e.langs.Models() {
		costs[m.Name] = m.Memory
	}
	return workerConfig{TessdataDir: e.tessdata, DefaultLang: e.cfg.DefaultLang,
		MaxClients: max(e.cfg.MaxClients/e.cfg.Workers, 1), ModelMemory: e.cfg.ModelMemory,
		Costs: costs, OSDMemory: e.langs.OSDMemory(), TrimEvery: trimEvery,
		TempDir: e.tempDir, PDFiumDir: e.pdfiumDir()}
}

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

// take waits for an idle worker (one that keeps doc or has lang loaded, when one does) behind
// every request that waited before it, and behind every single page when batch: at most
// QueueTimeout for a single page; a page of a document waits as long as its request lasts.
func (e *Engine) take(ctx context.Context, batch bool, lang string, doc uint64) (p *process, err error) {
	if f := e.onWait.Load(); f != nil {
		start := time.Now()
		defer func() { (*f)(time.Since(start), batch, err == nil) }()
	}
	prio := 0
	if batch {
		prio = 1
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if len(e.idle) > 0 {
		i := slices.IndexFunc(e.idle, func(p *process) bool { return doc != 0 && p.doc == doc })
		if i < 0 {
			i = slices.IndexFunc(e.idle, func(p *process) bool { return slices.Contains(p.langs, lang) })
		}
		i = max(i, 0)
		p = e.idle[i]
		e.idle = slices.Delete(e.idle, i, i+1)
		e.running++
		e.mu.Unlock()
		return p, nil
	}
	w := &waiter{got: make(chan *process, 1)}
	e.waiting[prio] = append(e.waiting[prio], w)
	e.mu.Unlock()

	var timeout <-chan time.Time
	if !batch {
		timer := time.NewTimer(e.cfg.QueueTimeout)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case p := <-w.got:
		if p == nil {
			return nil, ErrClosed
		}
		return p, nil
	case <-timeout:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = failure.FromContext(ctx, failure.QueueTimeout, "waiting for an OCR worker")
	}
	e.mu.Lock()
	if i := slices.Index(e.waiting[prio], w); i >= 0 {
		e.waiting[prio] = slices.Delete(e.waiting[prio], i, i+1)
		e.mu.Unlock()
		return nil, err
	}
	e.mu.Unlock()
	// A worker was handed over as the wait ended: pass it on.
	if p := <-w.got; p != nil {
		e.release(p, true)
	}
	return nil, err
}

// record keeps what a worker reported about itself after a page.
func (e *Engine) record(p *process, o outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p.langs, p.cheap, p.doc = o.Langs, o.CHeap, o.Doc
}

// release ends a request's hold on p: to the next waiter or the idle list, or replaced when it
// died.
func (e *Engine) release(p *process, healthy bool) {
	if !healthy {
		e.replace(p)
		return
	}
	e.mu.Lock()
	e.running--
	e.mu.Unlock()
	e.put(p)
}

// put makes p available: to the first single page waiting, else the first document page, else
// idle. Once the engine is closing, p is stopped instead.
func (e *Engine) put(p *process) {
	e.mu.Lock()
	if e.closed {
		e.checkDrained()
		e.mu.Unlock()
		p.shutdown(2 * time.Second)
		return
	}
	for prio := range e.waiting {
		if len(e.waiting[prio]) > 0 {
			w := e.waiting[prio][0]
			e.waiting[prio] = e.waiting[prio][1:]
			e.running++
			e.mu.Unlock()
			w.got <- p
			return
		}
	}
	e.idle = append(e.idle, p)
	e.mu.Unlock()
}

// checkDrained closes drained once the engine is closed and no worker is running or being
// replaced. e.mu is held.
func (e *Engine) checkDrained() {
	if e.closed && e.running == 0 && e.replacing == 0 {
		select {
		case <-e.drained:
		default:
			close(e.drained)
		}
	}
}

// errWorkerGone is exchange's error when p died before it got the job (a worker killed while
// idle, say by the kernel's OOM killer): the job is given to another worker.
var errWorkerGone = errors.New("the OCR worker was gone before it got the job")

// exchangeAny takes a worker as take does and exchanges j with it, once more with another
// worker when the first was gone before it got the job.
func (e *Engine) exchangeAny(ctx context.Context, batch bool, lang string, j job) (outcome, error) {
	for attempt := 0; ; attempt++ {
		p, err := e.take(ctx, batch, lang, j.Doc)
		if err != nil {
			return outcome{}, err
		}
		o, err := e.exchange(ctx, p, j)
		if errors.Is(err, errWorkerGone) && attempt == 0 {
			e.log.Warn("OCR worker gone before its job: retrying on another", "worker", p.id, "err", err)
			continue
		}
		if err != nil && errors.Is(err, errWorkerGone) {
			return o, failure.Wrap(failure.Internal, err, "OCR workers are failing")
		}
		return o, err
	}
}

// exchange sends j to p (with its document's bytes only when p may not have them) and waits
// for its outcome or the end of ctx. It gives p back either way.
func (e *Engine) exchange(ctx context.Context, p *process, j job) (outcome, error) {
	data := j.DocData
	if j.Doc != 0 && p.doc == j.Doc {
		j.DocData = nil // the worker said it keeps it
	}
	watchDone := make(chan struct{})
	if e.cfg.WorkerMemory > 0 {
		go e.watch(p, e.cfg.WorkerMemory, watchDone)
	}
	defer close(watchDone)
	for {
		j.Seq = e.seq.Add(1)
		if err := p.send(j); err != nil {
			p.kill("broken pipe")
			e.release(p, false)
			return outcome{}, fmt.Errorf("%w: %w", errWorkerGone, err)
		}
		select {
		case o, ok := <-p.outcomes:
			if !ok {
				err := e.crashed(p)
				e.release(p, false)
				return outcome{}, err
			}
			e.record(p, o)
			if o.Fail == failNeedDoc && j.DocData == nil && j.Doc != 0 {
				j.DocData = data // it gave it back since
				continue
			}
			e.release(p, true)
			return o, nil
		case <-ctx.Done():
			// Answer now; the worker is stopped (or killed) and given back in the background.
			e.wg.Add(1)
			go func(seq uint64) {
				defer e.wg.Done()
				e.stopPage(p, seq)
			}(j.Seq)
			return outcome{}, failure.FromContext(ctx, failure.OCRTimeout, "the page was being recognised")
		}
	}
}

// stopPage stops p's page between words, or kills p when it does not stop within stopGrace
// (layout analysis, for one, never checks the stop flag; nor does PDF rendering), and gives the
// worker back.
func (e *Engine) stopPage(p *process, seq uint64) {
	p.stop(seq)
	select {
	case o, ok := <-p.outcomes:
		if ok {
			e.record(p, o)
			e.release(p, true)
			return
		}
	case <-time.After(stopGrace):
		e.log.Info("OCR worker did not stop its page in time: killed", "worker", p.id, "grace", stopGrace.String())
		p.kill("stop")
	}
	e.release(p, false)
}

// watch kills p when its resident memory goes past limit, until done.
func (e *Engine) watch(p *process, limit int64, done <-chan struct{}) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if rss := p.rss(); rss > limit {
				e.log.Warn("OCR worker went past its memory share: killed", "worker", p.id,
					"rss_mib", rss>>20, "limit_mib", limit>>20)
				p.kill("memory")
				return
			}
		}
	}
}

// crashed says why p died in the middle of a page.
func (e *Engine) crashed(p *process) error {
	<-p.exited
	switch p.killedFor() {
	case "memory":
		return failure.Detail(ErrTooLarge, "this page needed more than the %d MiB a worker may use", e.cfg.WorkerMemory>>20)
	case "":
		e.log.Warn("OCR worker died reading a page", "worker", p.id, "err", fmt.Sprint(p.exitErr))
		return failure.Detail(ErrUndecodable, "the OCR worker stopped while reading this image (%v)", p.exitErr)
	}
	return failure.Wrap(failure.Internal, p.exitErr, "OCR worker lost")
}

// replace starts a worker in place of p (dead or killed, and taken by a request until now) and
// makes it available, retrying until it starts or the engine closes.
func (e *Engine) replace(p *process) {
	e.mu.Lock()
	delete(e.all, p)
	e.running--
	e.replacing++
	e.replaced.Add(1)
	e.wg.Add(1)
	e.mu.Unlock()
	p.kill("replaced")
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			e.replacing--
			e.checkDrained()
			e.mu.Unlock()
		}()
		<-p.exited
		for delay := 100 * time.Millisecond; ; delay = min(delay*2, 10*time.Second) {
			select {
			case <-e.done:
				return
			default:
			}
			np, err := startProcess(int(e.nextID.Add(1)), e.workerConfig(), e.cfg, e.log)
			if err == nil {
				e.log.Info("OCR worker replaced", "old", p.id, "new", np.id, "reason", p.killedFor())
				e.mu.Lock()
				e.all[np] = true
				e.mu.Unlock()
				e.put(np)
				return
			}
			e.log.Error("could not start an OCR worker", "err", err, "retry_in", delay.String())
			select {
			case <-time.After(delay):
			case <-e.done:
				return
			}
		}
	}()
}

// result turns a worker's outcome into a Result or an error.
func (e *Engine) result(o outcome, withLayout bool) (Result, error) {
	switch o.Fail {
	case failNone:
	case failUndecodable:
		return Result{}, failure.Detail(ErrUndecodable, "%s", o.Message)
	case failStopped:
		return Result{}, failure.New(failure.Internal, "the page was stopped")
	case failCoded:
		return Result{}, failure.New(failure.Code(o.Code), "%s", o.Message)
	default:
		return Result{}, failure.Wrap(failure.Internal, errors.New(o.Message), "OCR failed")
	}
	res := Result{Text: o.Text, HOCR: o.HOCR, ALTO: o.ALTO, TSV: o.TSV, PDF: o.PDF, Extracted: o.Extracted, Depth: o.Depth, Image: o.Image,
		Rotate: o.Rotate, Skew: o.Skew}
	if withLayout {
		res.Words, res.Lines, res.Confidence = layout(o.Boxes)
	}
	return res, nil
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
