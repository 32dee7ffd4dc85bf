package ocr

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/otiai10/gosseract/v2"

	"github.com/readocr/readocr/service/internal/glibcmalloc"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// ServeIfWorker turns this process into an OCR worker when the engine started it as one, and
// then never returns. Call it first thing in main (and in TestMain of packages whose tests run
// an Engine): the engine starts workers by running its own executable again.
func ServeIfWorker() {
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
	for pages := 1; ; pages++ {
		var j job
		if err := jobs.Decode(&j); err != nil {
			return nil // the engine closed the pipe: shut down
		}
		before := selfRSS()
		o := w.run(j)
		o.Seq, o.Langs = j.Seq, w.langs()
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

// worker holds warm Tesseract clients, at most MaxClients languages, least recently used
// evicted first.
type worker struct {
	cfg     workerConfig
	clients []*client // least recently used first

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

// client returns the warm client for lang, creating it (and evicting the least recently used
// one beyond MaxClients) if needed.
func (w *worker) client(lang string) (*client, error) {
	for i, c := range w.clients {
		if c.lang == lang {
			w.clients = append(slices.Delete(w.clients, i, i+1), c)
			return c, nil
		}
	}
	c, err := newClient(w.cfg.TessdataDir, lang)
	if err != nil {
		return nil, err
	}
	if len(w.clients) >= max(w.cfg.MaxClients, 1) {
		w.clients[0].tess.Close()
		w.clients = w.clients[1:]
	}
	w.clients = append(w.clients, c)
	return c, nil
}

func (w *worker) run(j job) outcome {
	c, err := w.client(j.Lang)
	if err != nil {
		return outcome{Fail: failOther, Message: err.Error()}
	}
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
	return c.recognize(ctx, j)
}

// client is a gosseract client with the defaults of the variables requests may override.
type client struct {
	tess     *gosseract.Client
	lang     string
	defaults map[string]string // allowlisted variables as initialised
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

// recognize runs one page with the job's settings over the client's defaults, so that nothing
// carries over to the next page.
func (c *client) recognize(ctx context.Context, j job) outcome {
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
	if err := t.SetImageFromBytes(j.Image); err != nil {
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
	text, err := t.Text()
	if err != nil {
		return outcome{Fail: failOther, Message: err.Error()}
	}
	o.Text = text
	return o
}
