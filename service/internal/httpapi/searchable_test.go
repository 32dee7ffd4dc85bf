package httpapi

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// How far a word of the text layer may sit from the box the JSON layout gives for it: its left
// and right edges by alignTolerance pixels of the page as read (0.96 points at 300 DPI), and
// the centre of the JSON box must lie in the middle verticalShare of the layer's word, which
// is as tall as its line (a word without ascenders sits low in it).
const (
	alignTolerance = 4.0
	verticalShare  = 0.6
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
		dev, matched, total := alignment(t, jp, 72/jp["dpi"].(float64), pdfWords(t, got, i+1))
		t.Logf("page %d (%s): %d of %d words matched, worst deviation %.2f pt", i+1, p.Name, matched, total, dev)
		worst = max(worst, dev)
		if total < 20 || float64(matched) < 0.9*float64(total) {
			t.Errorf("page %d (%s): %d of %d words found in place", i+1, p.Name, matched, total)
		}
	}
	t.Logf("worst deviation over the pages: %.2f pt (tolerance %.2f pt across; vertical deviations scaled to it)", worst, alignTolerance*72/300)

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

// The searchable PDF of an image keeps the image as it came: a JPEG's own bytes, a bilevel
// TIFF as CCITT G4 (1 bit), a gray PNG losslessly (Flate; the same pixels back); the text layer
// sits on the words; a multi-page TIFF gives its pages.
func TestSearchablePDFOfImages(t *testing.T) {
	for _, tool := range []string{"qpdf", "pdftotext", "pdfinfo", "pdfimages"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: make test installs it (hack/install-deps.sh: qpdf, poppler-utils)", tool)
		}
	}
	h := newHarness(t, options{})
	tif := testimages.Get(t, "phototest.tif").Bytes
	decoded, err := testdocs.Decode(tif)
	if err != nil {
		t.Fatal(err)
	}
	var png8 bytes.Buffer
	if err := png.Encode(&png8, testdocs.Gray(decoded)); err != nil {
		t.Fatal(err)
	}
	jpg := testimages.Get(t, "pyt_test.jpg").Bytes
	imgs, _ := docImages(t)
	for _, tc := range []struct {
		name, enc string // pdfimages' encoding
		input     []byte
		bpc       string
		pages     int
	}{
		{"bilevel TIFF", "ccitt", tif, "1", 1},
		{"gray JPEG", "jpeg", jpg, "8", 1},
		{"gray PNG", "image", png8.Bytes(), "8", 1},
		{"two-page TIFF", "image", testdocs.TIFF(imgs[:2], 300), "8", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.postMultipart(map[string]string{"format": "pdf"}, "x", tc.input)
			if r.status != 200 || r.header.Get("Content-Type") != "application/pdf" {
				t.Fatalf("%d %s %.200q", r.status, r.header.Get("Content-Type"), r.body)
			}
			dir := t.TempDir()
			out := filepath.Join(dir, "out.pdf")
			os.WriteFile(out, r.body, 0o600)
			if o, err := exec.Command("qpdf", "--check", out).CombinedOutput(); err != nil {
				t.Errorf("qpdf --check: %v\n%s", err, o)
			}
			list := run(t, "pdfimages", "-list", out)
			if n := strings.Count(list, "\n") - 2; n != tc.pages {
				t.Fatalf("%d images, want %d:\n%s", n, tc.pages, list)
			}
			for _, l := range strings.Split(strings.TrimSpace(list), "\n")[2:] {
				if f := strings.Fields(l); f[8] != tc.enc || f[7] != tc.bpc {
					t.Errorf("image encoded %s with %s bits, want %s with %s:\n%s", f[8], f[7], tc.enc, tc.bpc, list)
				}
			}
			switch tc.name {
			case "gray JPEG":
				if !bytes.Contains(r.body, tc.input) {
					t.Error("the JPEG's bytes are not in the PDF as they came")
				}
			case "gray PNG":
				run(t, "pdfimages", "-png", out, filepath.Join(dir, "img"))
				back, err := os.ReadFile(filepath.Join(dir, "img-000.png"))
				if err != nil {
					t.Fatal(err)
				}
				img, err := testdocs.Decode(back)
				if err != nil {
					t.Fatal(err)
				}
				if g, want := testdocs.Gray(img), testdocs.Gray(decoded); !bytes.Equal(g.Pix, want.Pix) {
					t.Error("the PNG's pixels changed")
				}
			}
			jr := h.postMultipart(map[string]string{"format": "json"}, "x", tc.input)
			for i, p := range jr.json(t)["pages"].([]any) {
				jp := p.(map[string]any)
				pg := strconv.Itoa(i + 1)
				var wPt float64
				if m := regexp.MustCompile(`size:\s+([\d.]+) x`).FindStringSubmatch(run(t, "pdfinfo", "-f", pg, "-l", pg, out)); m != nil {
					wPt, _ = strconv.ParseFloat(m[1], 64)
				}
				_, matched, total := alignment(t, jp, wPt/jp["width"].(float64), pdfWords(t, out, i+1))
				if total < 2 || float64(matched) < 0.9*float64(total) {
					t.Errorf("page %d: %d of %d words found in place", i+1, matched, total)
				}
			}
		})
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

// alignment matches each word of a JSON page (pixels, scale points each) with the nearest word
// of the same text in words, and counts those within the tolerances; dev is the worst
// deviation seen, in points.
func alignment(t *testing.T, page map[string]any, scale float64, words []pdfWord) (dev float64, matched, total int) {
	t.Helper()
	for _, w := range page["words"].([]any) {
		w := w.(map[string]any)
		text := w["text"].(string)
		if len([]rune(text)) < 3 { // short words repeat on a line: "of", "is"
			continue
		}
		total++
		b := w["bbox"].(map[string]any)
		x0, x1 := b["x0"].(float64)*scale, b["x1"].(float64)*scale
		// Tesseract writes each word but a line's last with a space after it, stretched (Tz)
		// over the word's box in its glyphless font, whose glyphs are all as wide: the letters
		// take n/(n+1) of it, and pdftotext's box ends with them.
		n := float64(len([]rune(text)))
		spaced := x0 + (x1-x0)*n/(n+1)
		yc := (b["y0"].(float64) + b["y1"].(float64)) / 2 * scale
		best := math.Inf(1)
		var near pdfWord
		for _, pw := range words {
			if pw.text != text {
				continue
			}
			vertical := math.Abs((pw.y0+pw.y1)/2-yc) / (verticalShare / 2 * (pw.y1 - pw.y0)) // 1 at the limit
			d := max(math.Abs(pw.x0-x0), min(math.Abs(pw.x1-spaced), math.Abs(pw.x1-x1)), vertical*alignTolerance*scale)
			if d < best {
				best, near = d, pw
			}
		}
		if testing.Verbose() && best > alignTolerance*scale {
			t.Logf("%q json [%.1f %.1f yc %.1f] pdf [%.1f %.1f yc %.1f, %.1f-%.1f]", text, x0, x1, yc, near.x0, near.x1, (near.y0+near.y1)/2, near.y0, near.y1)
		}
		if best <= alignTolerance*scale {
			matched++
			dev = max(dev, best)
		}
	}
	return dev, matched, total
}
