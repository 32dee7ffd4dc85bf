// Package ocr runs Tesseract (through gosseract) behind a bounded pool of warm clients.
//
// Concurrency is bounded by worker slots (one per CPU the process may use: Tesseract is
// CPU-bound and single-threaded with OMP_THREAD_LIMIT=1). Requests beyond the slots wait in a
// bounded queue and are refused at once when it is full. Clients are expensive to create
// (models load in ~50 ms and take tens of MB), so they are kept per language and reused; the
// default language is warmed at start-up, others are created on demand up to a cap, evicting
// idle clients of other languages.
package ocr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otiai10/gosseract/v2"

	"github.com/readocr/readocr/service/internal/cheap"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// Errors of Recognize, mapped to HTTP statuses by the API layer.
var (
	ErrBusy         = errors.New("all OCR workers are busy and the queue is full")
	ErrQueueTimeout = errors.New("timed out waiting for an OCR worker")
	ErrUndecodable  = errors.New("the image could not be decoded by Leptonica")
	ErrClosed       = errors.New("the OCR engine is shut down")
	ErrNoPage       = errors.New("no page: make one with imageinput.Check")
	// ErrStopped wraps ctx's error when the context ended while the page was being recognised.
	ErrStopped = errors.New("recognition stopped before the page was done")
)

// trimEvery is how often (in pages) the freed C heap is given back to the system. glibc keeps
// what Tesseract frees after each page, spread over its arenas, and resident memory creeps up
// over thousands of pages although the bytes in use stay flat. Trimming after every page held
// it flattest but cost ~5-7% throughput; every 32 pages left the service's throughput unchanged
// in `make bench` (README, Benchmarks).
const trimEvery = 32

// DefaultPSM is the tesseract CLI's default page segmentation mode (fully automatic). gosseract
// defaults to 6 (one uniform block), which reads multi-column pages and headings badly and gives
// different text from what users of pytesseract got.
const DefaultPSM = 3

// Config sizes an Engine.
type Config struct {
	TessdataDir  string
	DefaultLang  string
	Workers      int           // OCR running at once
	QueueSize    int           // requests waiting for a worker beyond those running
	QueueTimeout time.Duration // longest wait for a worker
	MaxClients   int           // warm clients kept across all languages (>= Workers)
	Logger       *slog.Logger
}

// Request is one page to read.
type Request struct {
	Page    imageinput.Page // only imageinput.Check makes one: nothing unchecked reaches Tesseract
	Lang    string
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

// Box is a pixel rectangle, top-left origin, X1/Y1 exclusive.
type Box struct{ X0, Y0, X1, Y1 int }

// Word is one recognised word.
type Word struct {
	Text                          string
	Confidence                    float64
	Box                           Box
	Block, Paragraph, Line, Index int
}

// Line is one text line, made from its words.
type Line struct {
	Text                   string
	Confidence             float64
	Box                    Box
	Block, Paragraph, Line int
}

// Engine is the pool. It is safe for concurrent use.
type Engine struct {
	cfg       Config
	log       *slog.Logger
	languages []string
	installed map[string]bool

	admit chan struct{} // running + queued requests
	slots chan struct{} // running requests

	pages atomic.Uint64 // pages recognised, to trim the C heap every trimEvery

	mu     sync.Mutex
	idle   map[string][]*client // by language list
	total  int                  // clients alive, idle or in use
	ready  bool
	closed bool
}

// client is a gosseract client with the defaults of the variables requests may override.
type client struct {
	tess     *gosseract.Client
	lang     string
	defaults map[string]string // allowlisted variables as initialised
}

// New checks the configuration and the installed languages. It does not load any model: call
// Warm before serving.
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
		slots:     make(chan struct{}, cfg.Workers),
		idle:      map[string][]*client{},
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

// TessdataDir returns the model directory in use.
func (e *Engine) TessdataDir() string { return e.cfg.TessdataDir }

// CheckLang validates a language list without running anything.
func (e *Engine) CheckLang(lang string) error { return checkLang(lang, e.installed) }

// Warm creates one default-language client per worker, one at a time, and marks the engine
// ready. Progress is logged: on a small CPU share this takes seconds.
func (e *Engine) Warm(ctx context.Context) error {
	start := time.Now()
	for i := range e.cfg.Workers {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := e.newClient(e.cfg.DefaultLang)
		if err != nil {
			return fmt.Errorf("warming client %d: %w", i+1, err)
		}
		e.mu.Lock()
		e.total++
		e.idle[c.lang] = append(e.idle[c.lang], c)
		e.mu.Unlock()
		e.log.Info("OCR client warm", "lang", c.lang, "n", i+1, "of", e.cfg.Workers)
	}
	e.mu.Lock()
	e.ready = true
	e.mu.Unlock()
	e.log.Info("OCR engine ready", "workers", e.cfg.Workers, "queue", e.cfg.QueueSize,
		"tessdata", e.cfg.TessdataDir, "languages", e.languages, "took_ms", time.Since(start).Milliseconds())
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
}

// Stats returns the current load.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	running := len(e.slots)
	return Stats{Running: running, Waiting: max(len(e.admit)-running, 0), Clients: e.total, Workers: e.cfg.Workers}
}

// Recognize reads one page. It returns ErrBusy at once when the queue is full, and
// ErrQueueTimeout (or ctx's error) when no worker freed up in time.
func (e *Engine) Recognize(ctx context.Context, req Request) (Result, error) {
	if err := e.CheckLang(req.Lang); err != nil {
		return Result{}, err
	}
	if !req.Page.Valid() {
		return Result{}, ErrNoPage
	}
	select {
	case e.admit <- struct{}{}:
	default:
		return Result{}, ErrBusy
	}
	defer func() { <-e.admit }()

	wait, cancel := context.WithTimeout(ctx, e.cfg.QueueTimeout)
	defer cancel()
	select {
	case e.slots <- struct{}{}:
	case <-wait.Done():
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, ErrQueueTimeout
	}
	defer func() { <-e.slots }()

	c, err := e.take(req.Lang)
	if err != nil {
		return Result{}, err
	}
	res, err := c.recognize(ctx, req)
	e.put(c)
	if e.pages.Add(1)%trimEvery == 0 {
		cheap.Trim()
	}
	return res, err
}

// take returns an idle client for lang, or creates one, evicting an idle client of another
// language when the pool is at its cap. The caller holds a worker slot, so at most Workers-1
// clients are in use by others and an idle one exists whenever total >= MaxClients >= Workers.
func (e *Engine) take(lang string) (*client, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if cs := e.idle[lang]; len(cs) > 0 {
		c := cs[len(cs)-1]
		e.idle[lang] = cs[:len(cs)-1]
		e.mu.Unlock()
		return c, nil
	}
	var evicted *client
	if e.total >= e.cfg.MaxClients {
		evicted = e.evictLocked(lang)
	}
	if evicted == nil {
		e.total++
	}
	e.mu.Unlock()

	if evicted != nil {
		evicted.tess.Close()
		e.log.Debug("evicted OCR client", "lang", evicted.lang, "for", lang)
	}
	c, err := e.newClient(lang)
	if err != nil {
		e.mu.Lock()
		e.total--
		e.mu.Unlock()
		return nil, err
	}
	return c, nil
}

// evictLocked removes one idle client of a language other than keep, preferring languages other
// than the default. The slot of the evicted client passes to the caller (total is unchanged).
func (e *Engine) evictLocked(keep string) *client {
	var victim string
	for lang, cs := range e.idle {
		if lang == keep || len(cs) == 0 {
			continue
		}
		if victim == "" || victim == e.cfg.DefaultLang {
			victim = lang
		}
	}
	if victim == "" {
		return nil
	}
	cs := e.idle[victim]
	c := cs[0]
	e.idle[victim] = cs[1:]
	return c
}

func (e *Engine) put(c *client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.total--
		c.tess.Close()
		return
	}
	e.idle[c.lang] = append(e.idle[c.lang], c)
}

// Close marks the engine not ready, waits for running requests to finish (or ctx to end),
// and frees every client.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	// Taking every slot means no request is running.
	for range e.cfg.Workers {
		select {
		case e.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for lang, cs := range e.idle {
		for _, c := range cs {
			c.tess.Close()
			e.total--
		}
		delete(e.idle, lang)
	}
	return nil
}

// blankPNG is a small white page, used to make gosseract load the models at warm-up.
var blankPNG = func() []byte {
	img := image.NewGray(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = 0xFF
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}()

// newClient creates a client for lang and loads its models now (gosseract loads them lazily on
// the first Text call; gosseract serialises model loading process-wide).
func (e *Engine) newClient(lang string) (*client, error) {
	t := gosseract.NewClient()
	t.Trim = false // keep the text exactly as the tesseract CLI prints it
	if err := t.SetTessdataPrefix(e.cfg.TessdataDir); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.SetLanguage(strings.Split(lang, "+")...); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.SetImageFromBytes(blankPNG); err != nil {
		t.Close()
		return nil, fmt.Errorf("warm-up image: %w", err)
	}
	if _, err := t.Text(); err != nil {
		t.Close()
		return nil, fmt.Errorf("loading %s models: %w", lang, err)
	}
	t.ClearImage()
	c := &client{tess: t, lang: lang, defaults: map[string]string{}}
	for _, name := range tessconfig.VariableNames() {
		v, ok := t.GetVariable(gosseract.SettableVariable(name))
		if !ok {
			t.Close()
			return nil, fmt.Errorf("tesseract has no variable %q", name)
		}
		c.defaults[name] = v
	}
	return c, nil
}

// recognize runs one page with the request's options and puts every overridden variable
// back to its default afterwards, so nothing leaks into the next request.
func (c *client) recognize(ctx context.Context, req Request) (res Result, err error) {
	t := c.tess
	defer t.ClearImage()

	psm := req.Options.PSM
	if psm < 0 {
		psm = DefaultPSM
	}
	// SetPageSegMode before the first Text() is lost in gosseract; the variable always holds.
	settings := map[string]string{
		"tessedit_pageseg_mode": strconv.Itoa(psm),
		"user_defined_dpi":      strconv.Itoa(req.Options.DPI),
	}
	for name, def := range c.defaults {
		settings[name] = def
	}
	for name, v := range req.Options.Vars {
		settings[name] = v
	}
	for name, v := range settings {
		if err := t.SetVariable(gosseract.SettableVariable(name), v); err != nil {
			return res, fmt.Errorf("setting %s: %w", name, err)
		}
	}

	if err := t.SetImageFromBytes(req.Page.Data()); err != nil {
		return res, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if err := t.OrientImage(req.Page.Orientation()); err != nil {
		return res, err
	}
	// Recognise here, where the page can be stopped between words when ctx ends (client gone,
	// request budget spent, shutdown cut-off); the calls below read the results.
	if err := t.RecognizeContext(ctx); err != nil {
		if ctx.Err() != nil {
			// The cause says why: the client left, the time ran out, or the server is stopping.
			return res, fmt.Errorf("%w: %w", ErrStopped, context.Cause(ctx))
		}
		return res, err
	}
	if req.Layout {
		boxes, err := t.GetBoundingBoxesVerbose()
		if err != nil {
			return res, err
		}
		res.Words, res.Lines, res.Confidence = layout(boxes)
	}
	res.Text, err = t.Text()
	return res, err
}

// layout turns gosseract's word boxes (in reading order) into words and lines.
func layout(boxes []gosseract.BoundingBox) ([]Word, []Line, float64) {
	words := make([]Word, 0, len(boxes))
	var lines []Line
	var perLine []int // words in each line, to average confidences
	var sum float64
	for _, b := range boxes {
		w := Word{
			Text: b.Word, Confidence: b.Confidence,
			Box:   Box{b.Box.Min.X, b.Box.Min.Y, b.Box.Max.X, b.Box.Max.Y},
			Block: b.BlockNum, Paragraph: b.ParNum, Line: b.LineNum, Index: b.WordNum,
		}
		words = append(words, w)
		sum += w.Confidence
		n := len(lines)
		if n == 0 || lines[n-1].Block != w.Block || lines[n-1].Paragraph != w.Paragraph || lines[n-1].Line != w.Line {
			lines = append(lines, Line{Text: w.Text, Confidence: w.Confidence, Box: w.Box, Block: w.Block, Paragraph: w.Paragraph, Line: w.Line})
			perLine = append(perLine, 1)
			continue
		}
		l := &lines[n-1]
		l.Text += " " + w.Text
		l.Confidence += w.Confidence
		l.Box = Box{min(l.Box.X0, w.Box.X0), min(l.Box.Y0, w.Box.Y0), max(l.Box.X1, w.Box.X1), max(l.Box.Y1, w.Box.Y1)}
		perLine[n-1]++
	}
	for i := range lines {
		lines[i].Confidence /= float64(perLine[i])
	}
	if len(words) == 0 {
		return words, lines, 0
	}
	return words, lines, sum / float64(len(words))
}

// DefaultLang returns the language used when a request names none.
func (e *Engine) DefaultLang() string { return e.cfg.DefaultLang }
