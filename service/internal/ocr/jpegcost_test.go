package ocr

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// A colour JPEG page admitted at the cap (the page share set to its estimate, PageCost) stays
// within it: the watchdog, set to that estimate over the worker's idle memory, lets the page
// through, for a colour scan and for colour noise (the costliest content), read for text and
// for a searchable PDF (the text layer over the JPEG as it came).
func TestColourJPEGPageCost(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory inflates every measurement (go test without -race runs it)")
	}
	scan, err := testdocs.ScanPage(0)
	if err != nil {
		t.Fatal(err)
	}
	noise := image.NewRGBA(scan.Rect) // Letter at 300 DPI: 8.4 MP
	r := rand.New(rand.NewPCG(3, 4))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(r.UintN(2) * 255)
		if i%4 == 3 {
			noise.Pix[i] = 255
		}
	}
	for _, tc := range []struct {
		name string
		img  image.Image
		pdf  bool
	}{
		{"colour scan, text", testdocs.Colourise(scan, 0), false},
		{"colour scan, searchable PDF", testdocs.Colourise(scan, 0), true},
		{"colour noise, text", noise, false},
		{"colour noise, searchable PDF", noise, true},
	} {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, tc.img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		pg := page(t, b.Bytes())
		if pg.Gray() {
			t.Fatalf("%s: the JPEG was taken for gray", tc.name)
		}
		cost := PageCost(pg)
		probe := newEngine(t, Config{Workers: 1})
		idle := workerRSS(probe)
		e := newEngine(t, Config{Workers: 1, PageMemory: cost, WorkerMemory: idle + cost})
		stop := proctreePeak(e)
		_, err = e.Recognize(context.Background(), Request{Page: pg, Options: tessconfig.Options{PSM: -1},
			Outputs: Outputs{PDF: tc.pdf, TextLayer: tc.pdf}})
		peak := stop()
		t.Logf("%s: %dx%d (%d KB), idle %d MiB, peak %d MiB over idle (%.1f bytes a pixel), estimate %d MiB",
			tc.name, pg.Width(), pg.Height(), b.Len()>>10, idle>>20, (peak-idle)>>20, float64(peak-idle-pageOverhead)/float64(pg.Pixels()), cost>>20)
		if errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: the worker went past the estimate (%d MiB over idle): %v", tc.name, cost>>20, err)
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// The same pages as colour JPEGs in a PDF, read as a searchable PDF reads them (rendered in
// gray; PDFium decodes the colour JPEG to draw it), admitted at the cap (the page share and the
// watchdog set to the estimate, pageCost, for the page as the worker's inspection marks it:
// colour content) stay within it. With the estimate before (18 bytes a pixel whatever the page
// held) the watchdog stopped both: they peaked at 320 and 421 MiB over idle against 202 and
// 214 estimated.
func TestColourJPEGPDFPageCost(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory inflates every measurement (go test without -race runs it)")
	}
	scan, err := testdocs.ScanPage(0)
	if err != nil {
		t.Fatal(err)
	}
	noise := image.NewRGBA(scan.Rect)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(r.UintN(256))
		if i%4 == 3 {
			noise.Pix[i] = 255
		}
	}
	for _, tc := range []struct {
		name string
		img  image.Image
	}{{"colour scan", testdocs.Colourise(scan, 0)}, {"colour noise", noise}} {
		pdf, err := testdocs.JPEGPagePDF(tc.img, 90)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := imageinput.Open(pdf, 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		// At 299 DPI, not the JPEG's 300: the page is rendered by PDFium, not read from its JPEG
		// (jpegImage), which is what is measured here.
		pg, err := doc.PDFPage(1, 612, 792, 299, 1<<40, false)
		if err != nil {
			t.Fatal(err)
		}
		probe := newEngine(t, Config{Workers: 1})
		idle := workerRSS(probe) // before the inspection: a worker keeps the document it read
		info, err := probe.InspectPDF(context.Background(), doc, "", 1, false)
		if err != nil || len(info.Colour) != 1 || !info.Colour[0] {
			t.Fatalf("%s: the inspection did not find colour: %+v %v", tc.name, info, err)
		}
		pg = pg.WithColourContent(true)
		cost := probe.pageCost(pg)
		e := newEngine(t, Config{Workers: 1, PageMemory: cost, WorkerMemory: idle + cost})
		stop := proctreePeak(e)
		_, err = e.Recognize(context.Background(), Request{Page: pg, Options: tessconfig.Options{PSM: -1},
			Outputs: Outputs{PDF: true, TextLayer: true}})
		peak := stop()
		t.Logf("%s: %dx%d (PDF %d KB), idle %d MiB, peak %d MiB over idle (%.1f bytes a pixel over PDFium's base), estimate %d MiB",
			tc.name, pg.Width(), pg.Height(), len(pdf)>>10, idle>>20, (peak-idle)>>20, float64(peak-idle-pdfiumBase-2*int64(len(pdf)))/float64(pg.Pixels()), cost>>20)
		if errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: the worker went past the estimate (%d MiB over idle): %v", tc.name, cost>>20, err)
		} else if err != nil {
			t.Fatal(err)
		}
	}
}
