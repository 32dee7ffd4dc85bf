package ocr

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// tiffDoc opens a TIFF of n copies of img.
func tiffDoc(t *testing.T, img testimages.Image, n int) imageinput.Document {
	t.Helper()
	decoded, err := testdocs.Decode(img.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]image.Image, n)
	for i := range pages {
		pages[i] = decoded
	}
	doc, err := imageinput.Open(testdocs.TIFF(pages, 300), 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func docPage(t *testing.T, doc imageinput.Document, n int) imageinput.Page {
	t.Helper()
	p, err := doc.Page(n, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// With one worker busy on a document, a single page that arrives is read next, before the
// document's waiting pages: a long document does not hold up short requests.
func TestSinglePagesGoFirst(t *testing.T) {
	e := newEngine(t, Config{Workers: 1})
	doc := tiffDoc(t, testimages.Get(t, "phototest.tif"), 6)
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for n := 1; n <= 6; n++ {
		wg.Go(func() {
			if _, err := e.RecognizePage(context.Background(), Request{Page: docPage(t, doc, n), Options: tessconfig.Options{PSM: -1}, Batch: true}); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, "doc")
			mu.Unlock()
		})
	}
	for e.Stats().Waiting < 5 { // one page running, five waiting
		time.Sleep(time.Millisecond)
	}
	single := page(t, testimages.Get(t, "gos_001-helloworld.png").Bytes)
	if _, err := e.Recognize(context.Background(), Request{Page: single, Options: tessconfig.Options{PSM: -1}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before := len(order)
	mu.Unlock()
	wg.Wait()
	// The page running when it arrived, and at most the one the worker took as it was queued.
	if before > 2 {
		t.Errorf("the single page waited for %d document pages: %v", before, order)
	}
}

// A document's pages are read on every worker at once, and a worker keeps the document between
// its pages; one that gave it back (idle for keepDocument) is sent it again.
func TestDocumentPagesSpreadAndKept(t *testing.T) {
	e := newEngine(t, Config{Workers: 2})
	img := testimages.Get(t, "phototest.tif")
	doc := tiffDoc(t, img, 4)
	var wg sync.WaitGroup
	most := 0
	done, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			default:
				most = max(most, e.Stats().Running)
				time.Sleep(time.Millisecond)
			}
		}
	}()
	texts := make([]string, 4)
	for n := 1; n <= 4; n++ {
		wg.Go(func() {
			res, err := e.RecognizePage(context.Background(), Request{Page: docPage(t, doc, n), Options: tessconfig.Options{PSM: -1}, Batch: true})
			if err != nil {
				t.Error(err)
			}
			texts[n-1] = res.Text
		})
	}
	wg.Wait()
	close(done)
	<-sampled
	if most != 2 {
		t.Errorf("at most %d pages were read at once on 2 workers", most)
	}
	for i, text := range texts {
		if testimages.Normalize(text) != testimages.Normalize(img.Expected) {
			t.Errorf("page %d: %q", i+1, text)
		}
	}
	held := 0
	e.mu.Lock()
	for p := range e.all {
		if p.doc == doc.ID() {
			held++
		}
	}
	e.mu.Unlock()
	if held != 2 {
		t.Errorf("%d workers keep the document after its pages, want 2", held)
	}
	time.Sleep(keepDocument + 500*time.Millisecond) // the workers give it back
	res, err := e.RecognizePage(context.Background(), Request{Page: docPage(t, doc, 3), Options: tessconfig.Options{PSM: -1}, Batch: true})
	if err != nil || testimages.Normalize(res.Text) != testimages.Normalize(img.Expected) {
		t.Errorf("a page after the workers gave the document back: %v %q", err, res.Text)
	}
}

// What reading a PDF page costs a worker stays within the engine's estimate (pageCost, with
// pdfiumBase measured here): the watchdog, set to the estimate over a worker's base, lets the
// page through, in gray and in colour, for text and for noise (the costliest content).
func TestPDFPageCost(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory inflates every measurement (go test without -race runs it)")
	}
	text := testimages.Get(t, "phototest.tif")
	decoded, err := testdocs.Decode(text.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	noise := image.NewGray(image.Rect(0, 0, 2550, 3300)) // Letter at 300 DPI: 8.4 MP
	r := rand.New(rand.NewPCG(1, 2))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(r.UintN(2) * 255)
	}
	textPage := image.NewGray(noise.Rect)
	for i := range textPage.Pix {
		textPage.Pix[i] = 0xFF
	}
	for y := 0; y+decoded.Bounds().Dy() <= 3300; y += decoded.Bounds().Dy() {
		for x := 0; x+decoded.Bounds().Dx() <= 2550; x += decoded.Bounds().Dx() {
			for yy := range decoded.Bounds().Dy() {
				for xx := range decoded.Bounds().Dx() {
					textPage.Set(x+xx, y+yy, color.GrayModel.Convert(decoded.At(xx, yy)))
				}
			}
		}
	}
	for _, tc := range []struct {
		name   string
		img    image.Image
		colour bool
	}{{"text in gray", textPage, false}, {"noise in gray", noise, false}, {"text in colour", textPage, true}, {"noise in colour", noise, true}} {
		doc, err := imageinput.Open(testdocs.ScannedPDF([]image.Image{tc.img}, 300), 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		pg, err := doc.PDFPage(1, 612, 792, 300, 1<<40, tc.colour)
		if err != nil {
			t.Fatal(err)
		}
		probe := newEngine(t, Config{Workers: 1})
		cost := probe.pageCost(pg)
		idle := workerRSS(probe)
		e := newEngine(t, Config{Workers: 1, PageMemory: cost, WorkerMemory: idle + cost})
		stop := proctreePeak(e)
		_, err = e.Recognize(context.Background(), Request{Page: pg, Options: tessconfig.Options{PSM: -1}, Outputs: Outputs{PDF: tc.colour}})
		peak := stop()
		t.Logf("%s: %dx%d, idle %d MiB, peak %d MiB, estimate %d MiB over idle", tc.name, pg.Width(), pg.Height(), idle>>20, peak>>20, cost>>20)
		if errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: the worker went past the estimate (%d MiB over idle): %v", tc.name, cost>>20, err)
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

var fuzzEngine struct {
	once sync.Once
	e    *Engine
}

// FuzzDocumentPages reads arbitrary bytes as a document through real workers: every page that
// passes the checks is decoded by Leptonica (TIFF pages by their IFD) or rendered by PDFium. A
// hostile page may fail, or crash its worker, but the engine must answer every page with an
// error or a result, and keep reading pages.
func FuzzDocumentPages(f *testing.F) {
	img, err := testdocs.Decode(testimages.Get(f, "phototest.tif").Bytes)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(testdocs.TIFF([]image.Image{img, img}, 300))
	f.Add(testdocs.TIFFUnreadablePage2(img))
	f.Add(testdocs.ScannedPDF([]image.Image{img}, 300))
	f.Add(testdocs.TextPDF([]string{"hello"}))
	f.Add(testdocs.BlankPDF(2, 100, 100))
	fuzzEngine.once.Do(func() { fuzzEngine.e = newEngine(f, Config{Workers: 1, QueueTimeout: time.Minute}) })
	e := fuzzEngine.e
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxPixels = 1_000_000 // small pages: many inputs a second
		doc, err := imageinput.Open(b, maxPixels)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var pages []imageinput.Page
		if doc.Format() == imageinput.PDF {
			info, err := e.InspectPDF(ctx, doc, "1-3", 3, true)
			if err != nil {
				return
			}
			for i, n := range info.Selected {
				if p, err := doc.PDFPage(n, info.Sizes[i][0], info.Sizes[i][1], 72, maxPixels, false); err == nil {
					pages = append(pages, p)
				}
			}
		} else {
			for n := 1; n <= min(doc.PageCount(), 3); n++ {
				if p, err := doc.Page(n, maxPixels); err == nil {
					pages = append(pages, p)
				}
			}
		}
		for _, p := range pages {
			e.RecognizePage(ctx, Request{Page: p, Options: tessconfig.Options{PSM: -1}, Batch: true})
		}
	})
	img2 := testimages.Get(f, "phototest.tif")
	if got := read(f, e, img2.Bytes, "eng", ""); testimages.Normalize(got) != testimages.Normalize(img2.Expected) {
		f.Errorf("after the fuzzed documents: %q", got)
	}
}

// With PDF input off, PDFium is never compiled and a PDF gets a clear 415; images still read.
func TestPDFTurnedOff(t *testing.T) {
	e := newEngine(t, Config{Workers: 1, NoPDF: true, PDFiumCache: t.TempDir()})
	doc, err := imageinput.Open(testdocs.BlankPDF(1, 612, 792), 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.InspectPDF(context.Background(), doc, "", 10, false); failure.CodeOf(err) != failure.UnsupportedMediaType {
		t.Errorf("PDF with --pdf=false: %v", err)
	}
	img := testimages.Get(t, "phototest.tif")
	if got := read(t, e, img.Bytes, "eng", ""); testimages.Normalize(got) != testimages.Normalize(img.Expected) {
		t.Errorf("image with --pdf=false: %q", got)
	}
}
