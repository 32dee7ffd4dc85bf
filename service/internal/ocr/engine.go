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
	"slices"
	"strconv"
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
	TessdataDir  string
	DefaultLang  string
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
	WorkerEnv    []string  // extra environment for the worker processes
	Output       io.Writer // where what workers print goes; nil: logged as debug records
	Logger       *slog.Logger
}

// DefaultConfig is the engine's configuration on a machine with cpus usable CPUs: one worker
// per CPU (Tesseract is CPU-bound and, with OMP_THREAD_LIMIT=1, single-threaded).
func DefaultConfig(cpus int) Config {
	return Config{DefaultLang: "eng", Workers: cpus, QueueSize: 4 * cpus, QueueTimeout: 20 * time.Second}
}

// Lang is a checked list of installed languages joined with "+"; make one with Engine.Lang.
type Lang struct{ s string }

func (l Lang) String() string { return l.s }

// Request is one page to read.
type Request struct {
	Page    imageinput.Page // only imageinput.Check makes one: nothing unchecked reaches Tesseract
	Lang    Lang            // the zero Lang is the default language
	Options tessconfig.Options
	Layout  bool // also return words and lines with boxes
}

// Result is what Tesseract read.
type Result struct {
	Text       string
	Confidence float64 // mean word confidence, with Layout
	Words      []Word
	Lines      []Line
}

// Engine is the pool. It is safe for concurrent use.
type Engine struct {
	cfg       Config
	log       *slog.Logger
	languages []string
	installed map[string]bool

	costOf func(imageinput.Page) int64 // PageCost; tests replace it

	admit  chan struct{} // running + queued requests
	free   chan struct{} // one token per idle worker
	seq    atomic.Uint64
	nextID atomic.Int64

	mu      sync.Mutex
	idle    []*process
	all     map[*process]bool
	running int
	ready   bool
	closed  bool
	done    chan struct{}  // closed by Close
	wg      sync.WaitGroup // workers being stopped or replaced
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
	dir, err := FindTessdata(cfg.TessdataDir)
	if err != nil {
		return nil, err
	}
	cfg.TessdataDir = dir
	langs, err := installedLanguages(dir)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger,
		languages: langs,
		installed: map[string]bool{},
		admit:     make(chan struct{}, cfg.Workers+cfg.QueueSize),
		free:      make(chan struct{}, cfg.Workers),
		all:       map[*process]bool{},
		done:      make(chan struct{}),
		costOf:    PageCost,
	}
	for _, l := range langs {
		e.installed[l] = true
	}
	if err := checkLang(cfg.DefaultLang, e.installed); err != nil {
		return nil, fmt.Errorf("default language: %w", err)
	}
	return e, nil
}

// Languages returns the installed language codes.
func (e *Engine) Languages() []string { return slices.Clone(e.languages) }

// DefaultLang returns the language used when a request names none.
func (e *Engine) DefaultLang() string { return e.cfg.DefaultLang }

// TessdataDir returns the model directory in use.
func (e *Engine) TessdataDir() string { return e.cfg.TessdataDir }

// PageMemory returns what a worker may use for one page (0: no limit).
func (e *Engine) PageMemory() int64 { return e.cfg.PageMemory }

// Lang checks a "+"-joined language list; "" is the default language.
func (e *Engine) Lang(s string) (Lang, error) {
	if s == "" {
		return Lang{e.cfg.DefaultLang}, nil
	}
	if err := checkLang(s, e.installed); err != nil {
		return Lang{}, err
	}
	return Lang{s}, nil
}

// Warm starts the workers (they load the default language at once, in parallel) and marks the
// engine ready. Progress is logged: on a small CPU share this takes seconds.
func (e *Engine) Warm(ctx context.Context) error {
	start := time.Now()
	type started struct {
		p   *process
		err error
	}
	results := make(chan started, e.cfg.Workers)
	for range e.cfg.Workers {
		go func() {
			p, err := startProcess(int(e.nextID.Add(1)), e.cfg, e.log)
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
		e.put(r.p)
		e.log.Info("OCR worker warm", "lang", e.cfg.DefaultLang, "n", i+1-len(errs), "of", e.cfg.Workers,
			"worker_rss_mib", r.p.rss()>>20)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.mu.Lock()
	e.ready = true
	e.mu.Unlock()
	e.log.Info("OCR engine ready", "workers", e.cfg.Workers, "queue", e.cfg.QueueSize,
		"tessdata", e.cfg.TessdataDir, "languages", e.languages, "page_memory_mib", e.cfg.PageMemory>>20,
		"took_ms", time.Since(start).Milliseconds())
	return nil
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
}

// Stats returns the current load.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Running: e.running, Waiting: max(len(e.admit)-e.running, 0), Workers: e.cfg.Workers}
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
	if !req.Page.Valid() {
		return Result{}, ErrNoPage
	}
	if req.Lang.s == "" {
		req.Lang = Lang{e.cfg.DefaultLang}
	}
	if need := e.costOf(req.Page); e.cfg.PageMemory > 0 && need > e.cfg.PageMemory {
		return Result{}, failure.Detail(ErrTooLarge, "this %dx%d %s page needs about %d MiB, a worker has %d MiB (more memory for the pod raises it; see README, Limits)",
			req.Page.Width(), req.Page.Height(), colorName(req.Page), need>>20, e.cfg.PageMemory>>20)
	}
	select {
	case e.admit <- struct{}{}:
	default:
		return Result{}, ErrBusy
	}
	defer func() { <-e.admit }()

	p, err := e.take(ctx, req.Lang.s)
	if err != nil {
		return Result{}, err
	}
	return e.run(ctx, p, req)
}

func colorName(p imageinput.Page) string {
	if p.Gray() {
		return "grayscale"
	}
	return "colour"
}

// take waits for an idle worker, preferring one that has lang loaded.
func (e *Engine) take(ctx context.Context, lang string) (*process, error) {
	timer := time.NewTimer(e.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case <-e.free:
	case <-timer.C:
		return nil, ErrQueueTimeout
	case <-ctx.Done():
		return nil, failure.FromContext(ctx, failure.QueueTimeout, "waiting for an OCR worker")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.free <- struct{}{} // let Close count this worker idle
		return nil, ErrClosed
	}
	i := slices.IndexFunc(e.idle, func(p *process) bool { return slices.Contains(p.langs, lang) })
	if i < 0 {
		i = 0
	}
	p := e.idle[i]
	e.idle = slices.Delete(e.idle, i, i+1)
	e.running++
	return p, nil
}

// record keeps what a worker reported about itself after a page.
func (e *Engine) record(p *process, o outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p.langs, p.cheap = o.Langs, o.CHeap
}

// put makes p idle (or stops it, once the engine is closing).
func (e *Engine) put(p *process) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		p.shutdown(2 * time.Second)
		e.free <- struct{}{}
		return
	}
	e.all[p] = true
	e.idle = append(e.idle, p)
	e.mu.Unlock()
	e.free <- struct{}{}
}

// release ends a request's hold on p: back to the pool, or replaced when it died.
func (e *Engine) release(p *process, healthy bool) {
	e.mu.Lock()
	e.running--
	e.mu.Unlock()
	if healthy {
		e.put(p)
		return
	}
	e.replace(p)
}

// run sends the page to p and waits for its outcome or the end of ctx.
func (e *Engine) run(ctx context.Context, p *process, req Request) (Result, error) {
	seq := e.seq.Add(1)
	j := job{Seq: seq, Lang: req.Lang.s, Image: req.Page.Data(), Orientation: req.Page.Orientation(),
		Settings: settings(req.Options), Layout: req.Layout}
	watchDone := make(chan struct{})
	if e.cfg.WorkerMemory > 0 {
		go e.watch(p, e.cfg.WorkerMemory, watchDone)
	}
	defer close(watchDone)
	if err := p.send(j); err != nil {
		p.kill("broken pipe")
		e.release(p, false)
		return Result{}, fmt.Errorf("sending a page to an OCR worker: %w", err)
	}
	select {
	case o, ok := <-p.outcomes:
		if !ok {
			err := e.crashed(p)
			e.release(p, false)
			return Result{}, err
		}
		e.record(p, o)
		e.release(p, true)
		return e.result(o, req.Layout)
	case <-ctx.Done():
		// Answer now; the worker is stopped (or killed) and given back in the background.
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.stopPage(p, seq)
		}()
		return Result{}, failure.FromContext(ctx, failure.OCRTimeout, "the page was being recognised")
	}
}

// stopPage stops p's page between words, or kills p when it does not stop within stopGrace
// (layout analysis, for one, never checks the stop flag), and gives the worker back.
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

// replace starts a worker in place of p (dead or killed) and makes it idle, retrying until it
// starts or the engine closes.
func (e *Engine) replace(p *process) {
	e.mu.Lock()
	delete(e.all, p)
	closed := e.closed
	if !closed {
		e.wg.Add(1)
	}
	e.mu.Unlock()
	p.kill("replaced")
	if closed {
		e.free <- struct{}{} // Close counts it as stopped
		return
	}
	go func() {
		defer e.wg.Done()
		<-p.exited
		for delay := 100 * time.Millisecond; ; delay = min(delay*2, 10*time.Second) {
			np, err := startProcess(int(e.nextID.Add(1)), e.cfg, e.log)
			if err == nil {
				e.log.Info("OCR worker replaced", "old", p.id, "new", np.id, "reason", p.killedFor())
				e.put(np)
				return
			}
			e.log.Error("could not start an OCR worker", "err", err, "retry_in", delay.String())
			select {
			case <-time.After(delay):
			case <-e.done:
				e.free <- struct{}{} // Close counts it as stopped
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
	default:
		return Result{}, failure.Wrap(failure.Internal, errors.New(o.Message), "OCR failed")
	}
	res := Result{Text: o.Text}
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
	e.mu.Unlock()
	var err error
	// Every worker idle (or gone) once all its tokens are back.
	for range e.cfg.Workers {
		select {
		case <-e.free:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
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
