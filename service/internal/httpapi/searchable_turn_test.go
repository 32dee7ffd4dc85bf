package httpapi

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
)

// rotate_pages: a scanned page turned by 90, 180 and 270 degrees comes back displayed upright
// (its /Rotate set, its image as it was), and the words of its text layer sit where the JSON
// layout of the upright page puts them; an upright page keeps /Rotate 0.
func TestSearchablePDFRotatePages(t *testing.T) {
	needTools(t)
	h := newHarness(t, options{})
	upright, err := testdocs.ScanPage(0)
	if err != nil {
		t.Fatal(err)
	}
	layout := jsonPage(t, h, testdocs.ScannedPDF([]image.Image{upright}, 300))
	for _, tc := range []struct {
		name   string
		turned image.Image
		rotate int // the /Rotate that shows it upright
	}{
		{"upright", upright, 0},
		{"turned 90 counter-clockwise", imaging.Rotate90(upright), 90},
		{"upside down", imaging.Rotate180(upright), 180},
		{"turned 90 clockwise", imaging.Rotate270(upright), 270},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testdocs.ScannedPDF([]image.Image{tc.turned}, 300)
			out := searchable(t, h, src, map[string]string{"format": "pdf", "rotate_pages": "true"})
			if got := pageRotation(t, out); got != tc.rotate {
				t.Errorf("/Rotate %d, want %d", got, tc.rotate)
			}
			in := filepath.Join(t.TempDir(), "in.pdf")
			os.WriteFile(in, src, 0o600)
			if a, b := run(t, "pdfimages", "-list", in), run(t, "pdfimages", "-list", out); sizesAndImages(a) != sizesAndImages(b) {
				t.Errorf("the page's image changed:\n%s\n%s", a, b)
			}
			dev, matched, total := alignment(t, layout, 72.0/300, pdfWords(t, out, 1))
			t.Logf("%d of %d words in place, worst %.2f pt", matched, total, dev)
			if total < 20 || float64(matched) < 0.9*float64(total) {
				t.Errorf("%d of %d words found in place", matched, total)
			}
		})
	}
}

// deskew: a scanned page whose lines are skewed by 2 degrees (a born-digital page rendered by
// pdftoppm, whose lines are level, then turned: the test scans are skewed themselves) is
// displayed level (its content
// drawn turned, its image unchanged in the file: as rendered by pdftoppm it is much nearer the
// level page than the skewed input was), and its text layer's words sit where the JSON layout
// of the level page puts them.
func TestSearchablePDFDeskew(t *testing.T) {
	needTools(t)
	h := newHarness(t, options{})
	var lines []string
	for i := range 4 {
		lines = append(lines, testdocs.BornDigitalLines(i)...)
	}
	level := rendered(t, testdocs.TextPDF(lines))
	skewed := testdocs.Gray(imaging.CropCenter(imaging.Rotate(level, 2, color.White), level.Rect.Dx(), level.Rect.Dy()))
	layout := jsonPage(t, h, testdocs.ScannedPDF([]image.Image{level}, 300))
	src := testdocs.ScannedPDF([]image.Image{skewed}, 300)
	out := searchable(t, h, src, map[string]string{"format": "pdf", "deskew": "true"})
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pdf")
	os.WriteFile(in, src, 0o600)
	if a, b := run(t, "pdfimages", "-list", in), run(t, "pdfimages", "-list", out); sizesAndImages(a) != sizesAndImages(b) {
		t.Errorf("the page's image changed:\n%s\n%s", a, b)
	}
	shown, _ := os.ReadFile(out)
	before, after := inkDifference(level, skewed), inkDifference(level, rendered(t, shown))
	t.Logf("pixels differing from the level page: skewed input %.4f, output as displayed %.4f", before, after)
	if after > before/3 {
		t.Errorf("the output is not displayed level: %.4f of pixels differ from the level page (the skewed input: %.4f)", after, before)
	}
	dev, matched, total := alignment(t, layout, 72.0/300, pdfWords(t, out, 1))
	t.Logf("%d of %d words in place, worst %.2f pt", matched, total, dev)
	if total < 20 || float64(matched) < 0.9*float64(total) {
		t.Errorf("%d of %d words found in place", matched, total)
	}
}

// rendered is page 1 of pdf as pdftoppm renders it at 300 DPI in gray.
func rendered(t *testing.T, pdf []byte) *image.Gray {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.pdf"), pdf, 0o600)
	run(t, "pdftoppm", "-r", "300", "-gray", "-png", "-singlefile", "-f", "1", "-l", "1", filepath.Join(dir, "in.pdf"), filepath.Join(dir, "page"))
	b, err := os.ReadFile(filepath.Join(dir, "page.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := testdocs.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return testdocs.Gray(img)
}

// searchable posts src with fields and returns the path of the PDF answered, checked by qpdf.
func searchable(t *testing.T, h *harness, src []byte, fields map[string]string) string {
	t.Helper()
	r := h.postMultipart(fields, "in.pdf", src)
	if r.status != 200 || r.header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("%v: %d %.300s", fields, r.status, r.body)
	}
	out := filepath.Join(t.TempDir(), "out.pdf")
	os.WriteFile(out, r.body, 0o600)
	qpdfCheckFile(t, out)
	return out
}

func jsonPage(t *testing.T, h *harness, src []byte) map[string]any {
	t.Helper()
	r := h.postMultipart(map[string]string{"format": "json"}, "in.pdf", src)
	if r.status != 200 {
		t.Fatalf("json: %d %s", r.status, r.body)
	}
	return r.json(t)["pages"].([]any)[0].(map[string]any)
}

var rotLine = regexp.MustCompile(`Page\s+1 rot:\s+(\d+)`)

func pageRotation(t *testing.T, path string) int {
	t.Helper()
	m := rotLine.FindStringSubmatch(run(t, "pdfinfo", "-f", "1", "-l", "1", path))
	if m == nil {
		t.Fatal("pdfinfo gave no rotation")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// inkDifference is the share of pixels that are ink (dark) in one image and paper in the
// other, over the size both have.
func inkDifference(a, b *image.Gray) float64 {
	w, h := min(a.Rect.Dx(), b.Rect.Dx()), min(a.Rect.Dy(), b.Rect.Dy())
	diff := 0
	for y := range h {
		for x := range w {
			if (a.Pix[y*a.Stride+x] < 128) != (b.Pix[y*b.Stride+x] < 128) {
				diff++
			}
		}
	}
	return float64(diff) / float64(w*h)
}
