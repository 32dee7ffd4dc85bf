package httpapi

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
)

// How far, in points, a word of the text layer may sit from the box the JSON layout gives for
// it: its left and right edges, and its vertical centre (the layer's words have their line's
// height; a line here is 8 points from the next).
const (
	alignTolerance    = 1.0
	verticalTolerance = 2.0
)

// The searchable PDF of a PDF is the PDF as it came plus a text layer aligned with each page as
// it was rendered for OCR, on every page geometry (rotation, crop box, media box off the origin,
// colour): the words pdftotext finds sit where the JSON layout puts them; the original bytes,
// page count and sizes, images and born-digital text are unchanged; qpdf --check passes.
func TestSearchablePDFAligned(t *testing.T) {
	for _, tool := range []string{"qpdf", "pdftotext", "pdfinfo", "pdfimages"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: make test installs it (hack/install-deps.sh: qpdf, poppler-utils)", tool)
		}
	}
	h := newHarness(t, options{})
	src, pages, err := testdocs.GeometryPDF()
	if err != nil {
		t.Fatal(err)
	}
	r := h.postMultipart(map[string]string{"format": "json"}, "geometry.pdf", src)
	if r.status != 200 {
		t.Fatalf("json: %d %s", r.status, r.body)
	}
	layout := r.json(t)["pages"].([]any)
	r = h.postMultipart(map[string]string{"format": "pdf"}, "geometry.pdf", src)
	if r.status != 200 || r.header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("pdf: %d %s %.200q", r.status, r.header.Get("Content-Type"), r.body)
	}
	out := r.body
	dir := t.TempDir()
	in, got := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pdf")
	os.WriteFile(in, src, 0o600)
	os.WriteFile(got, out, 0o600)

	if !bytes.HasPrefix(out, src) {
		t.Error("the original PDF's bytes were changed")
	}
	if o, err := exec.Command("qpdf", "--check", got).CombinedOutput(); err != nil {
		t.Errorf("qpdf --check: %v\n%s", err, o)
	}
	n := strconv.Itoa(len(pages))
	for _, args := range [][]string{{"pdfinfo", "-f", "1", "-l", n}, {"pdfimages", "-list"}} {
		if a, b := run(t, args[0], append(args[1:], in)...), run(t, args[0], append(args[1:], got)...); sizesAndImages(a) != sizesAndImages(b) {
			t.Errorf("%s differs:\n in: %s\nout: %s", args[0], sizesAndImages(a), sizesAndImages(b))
		}
	}
	worst := 0.0
	for i, p := range pages {
		pg := strconv.Itoa(i + 1)
		if p.BornDigital {
			if a, b := run(t, "pdftotext", "-f", pg, "-l", pg, in, "-"), run(t, "pdftotext", "-f", pg, "-l", pg, got, "-"); a != b || !strings.Contains(a, "born-digital") {
				t.Errorf("page %d (born-digital) text changed:\n in %q\nout %q", i+1, a, b)
			}
			continue
		}
		jp := layout[i].(map[string]any)
		dev, matched, total := alignment(t, jp, pdfWords(t, got, i+1))
		t.Logf("page %d (%s): %d of %d words matched, worst deviation %.2f pt", i+1, p.Name, matched, total, dev)
		worst = max(worst, dev)
		if total < 20 || float64(matched) < 0.9*float64(total) {
			t.Errorf("page %d (%s): %d of %d words found in place", i+1, p.Name, matched, total)
		}
	}
	t.Logf("worst deviation over the pages: %.2f pt across, vertical deviations scaled by %.1f/%.1f", worst, alignTolerance, verticalTolerance)

	// force_ocr lays a layer over the born-digital page too; skip_text (the default) did not.
	r = h.postMultipart(map[string]string{"format": "pdf", "ocr_mode": "force_ocr"}, "geometry.pdf", src)
	if r.status != 200 {
		t.Fatalf("force_ocr: %d %s", r.status, r.body)
	}
	forced := filepath.Join(dir, "forced.pdf")
	os.WriteFile(forced, r.body, 0o600)
	for i, p := range pages {
		if p.BornDigital {
			pg := strconv.Itoa(i + 1)
			a, b := run(t, "pdftotext", "-f", pg, "-l", pg, in, "-"), run(t, "pdftotext", "-f", pg, "-l", pg, forced, "-")
			if len(strings.Fields(b)) < 2*len(strings.Fields(a))-2 {
				t.Errorf("force_ocr: the born-digital page has no text layer: %q", b)
			}
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// sizesAndImages keeps pdfinfo's page sizes and rotations, and pdfimages' list (the images,
// their encodings and sizes), and drops what an update changes (file size, dates, producer).
func sizesAndImages(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "Page ") || strings.HasPrefix(l, "Pages:") || regexp.MustCompile(`^\s*\d+\s+\d+\s+\w+`).MatchString(l) {
			keep = append(keep, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(keep, "; ")
}

type pdfWord struct {
	text           string
	x0, y0, x1, y1 float64
}

var bboxWord = regexp.MustCompile(`<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">([^<]*)</word>`)

// pdfWords are the words pdftotext -bbox finds on page n, in points from the top left corner
// of the crop box as displayed (rotation applied): the frame of the image rendered for OCR.
func pdfWords(t *testing.T, path string, n int) []pdfWord {
	t.Helper()
	pg := strconv.Itoa(n)
	var words []pdfWord
	for _, m := range bboxWord.FindAllStringSubmatch(run(t, "pdftotext", "-bbox", "-cropbox", "-f", pg, "-l", pg, path, "-"), -1) {
		w := pdfWord{text: m[5]}
		for k, dst := range []*float64{&w.x0, &w.y0, &w.x1, &w.y1} {
			*dst, _ = strconv.ParseFloat(m[k+1], 64)
		}
		words = append(words, w)
	}
	return words
}

// alignment matches each word of a JSON page (pixels at its DPI) with the nearest word of the
// same text in words, and counts those within alignTolerance; dev is the worst deviation seen.
func alignment(t *testing.T, page map[string]any, words []pdfWord) (dev float64, matched, total int) {
	t.Helper()
	scale := 72 / page["dpi"].(float64)
	for _, w := range page["words"].([]any) {
		w := w.(map[string]any)
		text := w["text"].(string)
		if len([]rune(text)) < 3 { // short words repeat on a line: "of", "is"
			continue
		}
		total++
		b := w["bbox"].(map[string]any)
		x0, x1 := b["x0"].(float64)*scale, b["x1"].(float64)*scale
		// Tesseract writes each word with a space after it, stretched (Tz) over the word's box
		// in its glyphless font, whose glyphs are all as wide: the letters take n/(n+1) of it,
		// and pdftotext's box ends with them.
		n := float64(len([]rune(text)))
		x1 = x0 + (x1-x0)*n/(n+1)
		yc := (b["y0"].(float64) + b["y1"].(float64)) / 2 * scale
		best := math.Inf(1)
		var near pdfWord
		for _, pw := range words {
			if pw.text != text {
				continue
			}
			d := max(math.Abs(pw.x0-x0), math.Abs(pw.x1-x1), math.Abs((pw.y0+pw.y1)/2-yc)*alignTolerance/verticalTolerance)
			if d < best {
				best, near = d, pw
			}
		}
		if testing.Verbose() && best > alignTolerance {
			t.Logf("%q json [%.1f %.1f yc %.1f] pdf [%.1f %.1f yc %.1f, %.1f-%.1f]", text, x0, x1, yc, near.x0, near.x1, (near.y0+near.y1)/2, near.y0, near.y1)
		}
		if best <= alignTolerance {
			matched++
			dev = max(dev, best)
		}
	}
	return dev, matched, total
}
