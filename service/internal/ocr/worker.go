package ocr

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/otiai10/gosseract/v2"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/glibcmalloc"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// ServeIfWorker turns this process into an OCR worker when the engine started it as one, and
// then never returns. Call it first thing in main (and in TestMain of packages whose tests run
// an Engine): the engine starts workers by running its own executable again.
func ServeIfWorker() {
	if dir := os.Getenv(compileEnv); dir != "" {
		if err := compilePDFium(dir); err != nil {
			fmt.Fprintln(os.Stderr, "compiling PDFium:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if path := os.Getenv(probeEnv); path != "" {
		if err := serveProbe(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(workerEnv) != "1" {
		return
	}
	if err := serveWorker(); err != nil {
		fmt.Fprintln(os.Stderr, "ocr worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serveWorker() error {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(envConfig)), &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// One page at a time: one malloc arena is enough, and freed memory stays in one place where
	// Trim can give it back (glibcmalloc).
	glibcmalloc.LimitArenas(1)
	w := &worker{cfg: cfg}
	jobs := gob.NewDecoder(os.NewFile(fdJobs, "jobs"))
	out := gob.NewEncoder(os.NewFile(fdOutcomes, "outcomes"))
	go w.readStops(gob.NewDecoder(os.NewFile(fdStops, "stops")))

	// The default language is loaded before the worker says it is ready.
	start := outcome{}
	if _, err := w.client(cfg.DefaultLang); err != nil {
		start.Fail, start.Message = failOther, err.Error()
	}
	start.Langs, start.CHeap, start.RSS = w.langs(), glibcmalloc.InUse(), selfRSS()
	if err := out.Encode(start); err != nil {
		return err
	}
	if start.Fail != failNone {
		return fmt.Errorf("%s", start.Message)
	}
	jobCh := make(chan job)
	go func() {
		defer close(jobCh)
		for {
			var j job
			if err := jobs.Decode(&j); err != nil {
				return // the engine closed the pipe: shut down
			}
			jobCh <- j
		}
	}()
	idle := time.NewTimer(time.Hour)
	for pages := 1; ; pages++ {
		var j job
		var ok bool
		if w.doc != nil {
			// A document is kept for its next page; an idle worker gives it back.
			idle.Reset(keepDocument)
			select {
			case j, ok = <-jobCh:
			case <-idle.C:
				w.dropDocument()
				glibcmalloc.Trim()
				debug.FreeOSMemory()
				j, ok = <-jobCh
			}
			idle.Stop()
		} else {
			j, ok = <-jobCh
		}
		if !ok {
			w.dropDocument()
			return nil
		}
		before := selfRSS()
		o := w.run(j)
		o.Seq, o.Langs = j.Seq, w.langs()
		if w.doc != nil {
			o.Doc = w.doc.id
		}
		j = job{} // the image is garbage now
		// A page that grew the heap leaves it grown (glibc keeps what Tesseract freed): give it
		// back at once, so that an idle worker holds its share for the next page. Small pages
		// trim every TrimEvery pages, which costs nothing measurable.
		if selfRSS()-before > growthTrim || (cfg.TrimEvery > 0 && pages%cfg.TrimEvery == 0) {
			glibcmalloc.Trim()
			debug.FreeOSMemory()
		}
		o.CHeap, o.RSS = glibcmalloc.InUse(), selfRSS()
		if err := out.Encode(o); err != nil {
			return err
		}
	}
}

// keepDocument is how long an idle worker keeps the last document it read (its bytes and,
// for a PDF, PDFium's instance) in case its next page comes to this worker.
const keepDocument = 2 * time.Second

// growthTrim is how much a page may grow a worker's resident memory before the worker gives
// the freed memory back at once.
const growthTrim = 16 << 20

// selfRSS is this process's resident memory in bytes.
func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// worker holds warm Tesseract clients, at most MaxClients languages and ModelMemory of models,
// least recently used evicted first (worker_models.go).
type worker struct {
	cfg     workerConfig
	clients []*client // least recently used first
	doc     *heldDocument
	osd     *gosseract.Client // the orientation model alone, for rotate_pages (worker_orient.go)

	mu      sync.Mutex
	running uint64             // Seq of the page being recognised
	stop    context.CancelFunc // stops it
}

// readStops stops the running page when the engine asks (by Seq, so that a late order cannot
// stop the next page).
func (w *worker) readStops(dec *gob.Decoder) {
	for {
		var seq uint64
		if err := dec.Decode(&seq); err != nil {
			return
		}
		w.mu.Lock()
		if w.running == seq && w.stop != nil {
			w.stop()
		}
		w.mu.Unlock()
	}
}

func (w *worker) langs() []string {
	out := make([]string, len(w.clients))
	for i, c := range w.clients {
		out[i] = c.lang
	}
	return out
}

func (w *worker) run(j job) outcome {
	if j.Doc == 0 {
		w.dropDocument() // its memory is the page's now
	} else if err := w.holdDocument(j); err != nil {
		return outcome{Fail: failNeedDoc, Message: err.Error()}
	}
	switch j.Kind {
	case jobInspect:
		return w.inspect(j)
	case jobOverlay:
		return w.overlay(j)
	}
	c, err := w.client(j.Lang)
	if err != nil {
		return failed(err)
	}
	w.makeRoomForOSD(c, j.Settings)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.mu.Lock()
	w.running, w.stop = j.Seq, cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running, w.stop = 0, nil
		w.mu.Unlock()
	}()
	if j.Doc == 0 {
		return c.recognize(ctx, j, func(t *gosseract.Client) error { return t.SetImageFromBytes(j.Image) }, w.cfg)
	}
	if j.DocFormat == imageinput.TIFF {
		return c.recognize(ctx, j, func(t *gosseract.Client) error {
			return t.SetImageFromTIFFPage(w.doc.data, j.TIFFOffset)
		}, w.cfg)
	}
	return w.pdfPage(ctx, c, j)
}

// failed turns an error into an outcome, keeping its failure code.
func failed(err error) outcome {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return outcome{Fail: failCoded, Code: string(fe.Code), Message: failure.MessageOf(err)}
	}
	return outcome{Fail: failOther, Message: err.Error()}
}

// heldDocument is the document a worker keeps between its pages.
type heldDocument struct {
	id     uint64
	format string
	data   []byte
	pdf    *pdfDoc // opened on its first PDF job

	pdfcpu     *model.Context // read by pdfcpu for scanImage, on first use
	parseTried bool
}

// holdDocument makes j's document the one kept, from j.DocData when it is new to this worker.
func (w *worker) holdDocument(j job) error {
	if w.doc != nil && w.doc.id == j.Doc {
		return nil
	}
	w.dropDocument()
	if j.DocData == nil {
		return errNeedDocument
	}
	w.doc = &heldDocument{id: j.Doc, format: j.DocFormat, data: j.DocData}
	return nil
}

var errNeedDocument = errors.New("need the document's bytes")

func (w *worker) dropDocument() {
	if w.doc != nil && w.doc.pdf != nil {
		w.doc.pdf.close()
		w.doc = nil
		runtime.GC() // PDFium's runtime is garbage: give it back before the next page
		debug.FreeOSMemory()
	}
	w.doc = nil
}

// pdf returns the kept document as a PDF, starting PDFium's runtime for it.
func (w *worker) pdf() (*pdfDoc, error) {
	if w.doc.format != imageinput.PDF {
		return nil, fmt.Errorf("document %d is a %s, not a PDF", w.doc.id, w.doc.format)
	}
	if w.doc.pdf == nil {
		d, err := newPDFDoc(w.cfg, w.doc.data)
		if err != nil {
			return nil, err
		}
		w.doc.pdf = d
	}
	return w.doc.pdf, nil
}

func abs(x int) int { return max(x, -x) }

// client is a gosseract client with the defaults of the variables requests may override.
type client struct {
	tess     *gosseract.Client
	lang     string
	defaults map[string]string // allowlisted variables as initialised
	memory   int64             // what its models cost (workerConfig.Costs), the orientation model's once it has it
	osd      bool              // it has read a page with --psm 0 or 1: it holds the orientation model
}

// blankPNG is a small white page, used to make gosseract load the models at once.
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
// the first Text call).
func newClient(tessdata, lang string) (*client, error) {
	t := gosseract.NewClient()
	t.Trim = false // keep the text exactly as the tesseract CLI prints it
	if err := t.SetTessdataPrefix(tessdata); err != nil {
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

// recognize runs one page, set by setImage, with the job's settings over the client's
// defaults, so that nothing carries over to the next page.
func (c *client) recognize(ctx context.Context, j job, setImage func(*gosseract.Client) error, cfg workerConfig) outcome {
	t := c.tess
	defer t.ClearImage()
	settings := map[string]string{}
	for name, def := range c.defaults {
		settings[name] = def
	}
	for name, v := range j.Settings {
		settings[name] = v
	}
	for name, v := range settings {
		if err := t.SetVariable(gosseract.SettableVariable(name), v); err != nil {
			return outcome{Fail: failOther, Message: fmt.Sprintf("setting %s: %v", name, err)}
		}
	}
	if err := setImage(t); err != nil {
		if o := failed(err); o.Fail == failCoded {
			return o
		}
		return outcome{Fail: failUndecodable, Message: err.Error()}
	}
	if err := t.OrientImage(j.Orientation); err != nil {
		return outcome{Fail: failOther, Message: err.Error()}
	}
	// Recognise here, where a stop order ends the page between words; the calls below read the
	// results.
	if err := t.RecognizeContext(ctx); err != nil {
		if ctx.Err() != nil {
			return outcome{Fail: failStopped, Message: "stopped"}
		}
		return outcome{Fail: failOther, Message: err.Error()}
	}
	var o outcome
	if j.Layout {
		boxes, err := t.GetBoundingBoxesVerbose()
		if err != nil {
			return outcome{Fail: failOther, Message: err.Error()}
		}
		o.Boxes = make([]box, len(boxes))
		for i, b := range boxes {
			o.Boxes[i] = box{Text: b.Word, Confidence: b.Confidence,
				X0: b.Box.Min.X, Y0: b.Box.Min.Y, X1: b.Box.Max.X, Y1: b.Box.Max.Y,
				Block: b.BlockNum, Paragraph: b.ParNum, Line: b.LineNum, Word: b.WordNum}
		}
	}
	if !j.TextLayer { // a searchable PDF's answer is the PDF alone: its text would be thrown away
		text, err := t.Text()
		if err != nil {
			return outcome{Fail: failOther, Message: err.Error()}
		}
		o.Text = text
	}
	if err := renderings(t, j, cfg, &o); err != nil {
		return outcome{Fail: failOther, Message: err.Error()}
	}
	return o
}

// renderings adds the hOCR, ALTO, TSV and PDF of the recognised page that j asks for, as the
// tesseract CLI writes them for page j.Page of a document read from standard input (named "-").
func renderings(t *gosseract.Client, j job, cfg workerConfig, o *outcome) error {
	t.SetInputName("-")
	for _, r := range []struct {
		bit, format int
		dst         *string
	}{{outHOCR, gosseract.RenderHOCR, &o.HOCR}, {outALTO, gosseract.RenderALTO, &o.ALTO}, {outTSV, gosseract.RenderTSV, &o.TSV}} {
		if j.Outputs&r.bit == 0 {
			continue
		}
		s, err := t.PageRendering(r.format, j.Page)
		if err != nil {
			return err
		}
		*r.dst = s
	}
	if j.Outputs&outPDF != 0 {
		if cfg.TempDir == "" {
			return errors.New("no directory to write the PDF page in")
		}
		base := filepath.Join(cfg.TempDir, fmt.Sprintf("page-%d-%d", os.Getpid(), j.Seq))
		if err := t.WritePDFPage(base, cfg.TessdataDir, j.TextLayer); err != nil {
			return err
		}
		defer os.Remove(base + ".pdf")
		b, err := os.ReadFile(base + ".pdf")
		if err != nil {
			return err
		}
		o.PDF = b
	}
	if j.EncodeImage {
		img, err := t.EncodeImage()
		if err != nil {
			return err
		}
		o.Image = &img
	}
	return nil
}
