package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/readocr/readocr/internal/testsupport/proctree"
	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// docReport is what the documents mode measured.
type docReport struct {
	pages                   int
	pagePixels              string
	oneWorker, allWorkers   time.Duration // the 20-page PDF through readocr
	workers                 int
	cliPDF, cliTIFF         time.Duration // the baselines on the same document
	imagesPerSecond         float64       // single pictures, from the service mode
	bigPages                int
	bigPeakKiB, idleKiB     int64
	bigTook                 time.Duration
	aloneP95, duringP95     time.Duration // single pages alone, and while the big document runs
	aloneCount, duringCount int
}

// docPage is one page of the benchmark documents: phototest tiled 2 x 2 (1280 x 960, 300 DPI),
// a page of twelve paragraphs.
func docPage() (image.Image, error) {
	img, err := testdocs.Decode(testimages.Must("phototest.tif").Bytes)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	out := image.NewGray(image.Rect(0, 0, 2*b.Dx(), 2*b.Dy()))
	for y := range out.Rect.Dy() {
		for x := range out.Rect.Dx() {
			out.Set(x, y, img.At(x%b.Dx(), y%b.Dy()))
		}
	}
	return out, nil
}

func repeatPage(img image.Image, n int) []image.Image {
	pages := make([]image.Image, n)
	for i := range pages {
		pages[i] = img
	}
	return pages
}

// postDocument sends a document as a multipart upload and returns how long the answer took.
func postDocument(base string, doc []byte) (time.Duration, error) {
	body := []byte(`{"image":"` + base64.StdEncoding.EncodeToString(doc) + `"}`)
	began := time.Now()
	resp, err := http.Post(base+"/read_ocr", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(answer, []byte("quick brown")) {
		return 0, fmt.Errorf("status %d: %.200s", resp.StatusCode, answer)
	}
	return time.Since(began), nil
}

// runDocuments measures documents: a 20-page PDF on one worker and on all of them (fan-out
// efficiency), the same document through the CLI baselines, and a 50-page PDF's peak memory and
// what it does to single pages sent meanwhile.
func runDocuments(log *slog.Logger, bin string, images []page, imagesPerSecond float64) (*docReport, error) {
	pg, err := docPage()
	if err != nil {
		return nil, err
	}
	cores := runtime.NumCPU()
	rep := &docReport{pages: 20, bigPages: 50, workers: cores, imagesPerSecond: imagesPerSecond,
		pagePixels: fmt.Sprintf("%dx%d", pg.Bounds().Dx(), pg.Bounds().Dy())}
	pdf := testdocs.ScannedPDF(repeatPage(pg, rep.pages), 300)

	for _, w := range []int{1, cores} {
		log.Info("documents: a 20-page PDF", "workers", w)
		t, err := startNative(log, bin, "--workers", strconv.Itoa(w), "--request-timeout", "10m")
		if err != nil {
			return nil, err
		}
		postDocument(t.base, testdocs.ScannedPDF(repeatPage(pg, 1), 300)) // warm
		took, err := postDocument(t.base, pdf)
		t.stop()
		if err != nil {
			return nil, err
		}
		if w == 1 {
			rep.oneWorker = took
		} else {
			rep.allWorkers = took
		}
	}

	log.Info("documents: the baselines (pdftoppm -r 300 + tesseract per page; tesseract on the TIFF)")
	if rep.cliPDF, rep.cliTIFF, err = docBaselines(pdf, testdocs.TIFF(repeatPage(pg, rep.pages), 300), cores); err != nil {
		return nil, err
	}

	log.Info("documents: a 50-page PDF, and single pages meanwhile")
	t, err := startNative(log, bin, "--request-timeout", "10m")
	if err != nil {
		return nil, err
	}
	defer t.stop()
	single := func(stop <-chan struct{}, max int) []time.Duration {
		l := newLoader(t, images[:1], 1)
		var lat []time.Duration
		for len(lat) < max {
			select {
			case <-stop:
				return lat
			default:
			}
			d := make([]time.Duration, 1)
			if l.run(1, d, nil) == 0 {
				lat = append(lat, d[0])
			}
			time.Sleep(100 * time.Millisecond) // a client every 100 ms, not a flood
		}
		return lat
	}
	alone := single(nil, 30)
	rep.idleKiB = proctree.KiB(t.pid, "VmRSS")
	big := testdocs.ScannedPDF(repeatPage(pg, rep.bigPages), 300)
	stopPeak := proctree.Peak(t.pid, 20*time.Millisecond)
	stop := make(chan struct{})
	var during []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() { during = single(stop, 1<<30) })
	rep.bigTook, err = postDocument(t.base, big)
	close(stop)
	wg.Wait()
	rep.bigPeakKiB = stopPeak()
	if err != nil {
		return nil, err
	}
	rep.aloneP95, rep.aloneCount = p95(alone), len(alone)
	rep.duringP95, rep.duringCount = p95(during), len(during)
	return rep, nil
}

func p95(l []time.Duration) time.Duration {
	if len(l) == 0 {
		return 0
	}
	l = slices.Clone(l)
	slices.Sort(l)
	return l[min(len(l)-1, len(l)*95/100)]
}

// docBaselines times what users script today: pdftoppm -r 300 then one tesseract per page
// (cores at a time), and tesseract on the multi-page TIFF (one process reads every page).
func docBaselines(pdf, tiff []byte, cores int) (time.Duration, time.Duration, error) {
	for _, tool := range []string{"pdftoppm", "tesseract"} {
		if _, err := exec.LookPath(tool); err != nil {
			return 0, 0, fmt.Errorf("the document baselines need %s (apt install poppler-utils tesseract-ocr): %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "ocrbench-doc-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "doc.pdf"), pdf, 0o600); err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "doc.tif"), tiff, 0o600); err != nil {
		return 0, 0, err
	}
	env := append(os.Environ(), "OMP_THREAD_LIMIT=1")
	began := time.Now()
	if out, err := exec.Command("pdftoppm", "-r", "300", "-png", filepath.Join(dir, "doc.pdf"), filepath.Join(dir, "p")).CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("pdftoppm: %v: %s", err, out)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "p-*.png"))
	var failed error
	var mu sync.Mutex
	parallel(len(pngs), cores, func(_, i int) {
		cmd := exec.Command("tesseract", pngs[i], "stdout")
		cmd.Env = env
		if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "quick brown") {
			mu.Lock()
			failed = fmt.Errorf("tesseract %s: %v", pngs[i], err)
			mu.Unlock()
		}
	})
	pdfTook := time.Since(began)
	if failed != nil {
		return 0, 0, failed
	}
	began = time.Now()
	cmd := exec.Command("tesseract", filepath.Join(dir, "doc.tif"), "stdout")
	cmd.Env = env
	if out, err := cmd.Output(); err != nil || strings.Count(string(out), "\f") != 19 {
		return 0, 0, fmt.Errorf("tesseract doc.tif: %v (%d pages)", err, strings.Count(string(out), "\f")+1)
	}
	return pdfTook, time.Since(began), nil
}

func (d *docReport) render(b *strings.Builder) {
	ppsAll := float64(d.pages) / d.allWorkers.Seconds()
	fmt.Fprintf(b, "\n### Documents\n\nA scanned PDF of %d pages (%s each, 300 DPI: phototest tiled 2 x 2), base64 JSON, format text.\n\n", d.pages, d.pagePixels)
	b.WriteString("| how | time s | pages/s |\n|---|---:|---:|\n")
	for _, r := range []struct {
		name string
		took time.Duration
	}{
		{"readocr, 1 worker", d.oneWorker},
		{fmt.Sprintf("readocr, %d workers", d.workers), d.allWorkers},
		{fmt.Sprintf("baseline: pdftoppm -r 300, then tesseract per page (%d at a time)", d.workers), d.cliPDF},
		{"baseline: tesseract on the same pages as one multi-page TIFF", d.cliTIFF},
	} {
		fmt.Fprintf(b, "| %s | %.1f | %.2f |\n", r.name, r.took.Seconds(), float64(d.pages)/r.took.Seconds())
	}
	fmt.Fprintf(b, "\nFan-out efficiency t1 / (N x tN) with N = %d workers: **%.2f** (target >= 0.85). readocr/pdftoppm+tesseract: **%.2f**; readocr/tesseract-on-TIFF: **%.2f**.\n",
		d.workers, d.oneWorker.Seconds()/(float64(d.workers)*d.allWorkers.Seconds()), d.cliPDF.Seconds()/d.allWorkers.Seconds(), d.cliTIFF.Seconds()/d.allWorkers.Seconds())
	fmt.Fprintf(b, "Pages of documents %.2f pages/s (each page is 4 of the 640x480 images) against %.1f single images/s in the service mode: %.1f image-equivalents/s.\n",
		ppsAll, d.imagesPerSecond, 4*ppsAll)
	fmt.Fprintf(b, "\nA %d-page PDF took %.1f s; the service's memory (API and workers) went from %.0f MiB idle to a peak of **%.0f MiB**. "+
		"Single pages (a client every 100 ms) answered in p95 **%d ms** alone (%d requests) and p95 **%d ms** while the document ran (%d requests): single pages go to the next free worker before the document's next page.\n",
		d.bigPages, d.bigTook.Seconds(), float64(d.idleKiB)/1024, float64(d.bigPeakKiB)/1024,
		d.aloneP95.Milliseconds(), d.aloneCount, d.duringP95.Milliseconds(), d.duringCount)
}
