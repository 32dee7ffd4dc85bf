package httpapi

import (
	"bytes"
	"image"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// The pages of the test documents: clean text pages with ground truth that Go can decode.
var docPages = []string{"phototest.tif", "gos_001-helloworld.png", "pyt_test.jpg"}

func docImages(t *testing.T) ([]image.Image, []testimages.Image) {
	t.Helper()
	var imgs []image.Image
	var src []testimages.Image
	for _, name := range docPages {
		ti := testimages.Get(t, name)
		img, err := testdocs.Decode(ti.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		imgs, src = append(imgs, img), append(src, ti)
	}
	return imgs, src
}

// cli runs the tesseract CLI on input read from standard input, as the renderers name it "-".
func cli(t *testing.T, input []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("tesseract"); err != nil {
		t.Skip("tesseract CLI not installed")
	}
	cmd := exec.Command("tesseract", append([]string{"-", "-"}, args...)...)
	cmd.Stdin = bytes.NewReader(input)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tesseract - - %v: %v", args, err)
	}
	return out
}

// Every output format is byte for byte what the tesseract CLI writes, for every test image
// and for a multi-page TIFF; the Content-Type says which format it is.
func TestRenderersMatchCLI(t *testing.T) {
	h := newHarness(t, options{})
	imgs, _ := docImages(t)
	inputs := map[string][]byte{"three-page TIFF": testdocs.TIFF(imgs, 300)}
	for _, img := range testimages.All(t, "images/") {
		inputs[img.Name] = img.Bytes
	}
	types := map[string]string{"hocr": "text/html; charset=utf-8", "alto": "application/xml; charset=utf-8",
		"tsv": "text/tab-separated-values; charset=utf-8"}
	for name, input := range inputs {
		for _, format := range []string{"hocr", "alto", "tsv"} {
			want := cli(t, input, "-l", "eng", format)
			r := h.postMultipart(map[string]string{"format": format}, "x", input)
			if r.status != 200 {
				t.Fatalf("%s %s: %d %s", name, format, r.status, r.body)
			}
			if r.header.Get("Content-Type") != types[format] {
				t.Errorf("%s %s: Content-Type %q", name, format, r.header.Get("Content-Type"))
			}
			if !bytes.Equal(r.body, want) {
				t.Errorf("%s %s differs from the CLI's:\n got %.400q\nwant %.400q", name, format, r.body, want)
			}
		}
	}
}

// A multi-page TIFF: every page, the text joined as the CLI joins it, each page against its
// ground truth, page selection, and the same pages through JSON as through multipart.
func TestMultiPageTIFF(t *testing.T) {
	h := newHarness(t, options{})
	imgs, src := docImages(t)
	tiff := testdocs.TIFF(imgs, 300)

	r := h.postMultipart(nil, "scan.tif", tiff)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got, want := r.json(t)["text"], string(cli(t, tiff, "-l", "eng")); got != want {
		t.Errorf("text differs from `tesseract - -`:\n got %q\nwant %q", got, want)
	}

	r = h.postJSON(map[string]any{"image": b64(tiff), "format": "json"})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	pages := r.json(t)["pages"].([]any)
	if len(pages) != len(src) {
		t.Fatalf("%d pages, want %d", len(pages), len(src))
	}
	for i, p := range pages {
		p := p.(map[string]any)
		if p["page"].(float64) != float64(i+1) || p["source"] != "ocr" {
			t.Errorf("page %d: %v", i+1, p)
		}
		if acc := testimages.Accuracy(p["text"].(string), src[i].Expected); acc < 0.95 {
			t.Errorf("page %d (%s): accuracy %.3f: %q", i+1, src[i].Name, acc, p["text"])
		}
		words := p["words"].([]any)
		if len(words) == 0 || words[0].(map[string]any)["page"].(float64) != float64(i+1) {
			t.Errorf("page %d: words %v", i+1, words)
		}
	}

	// Pages 2 and 3 are what the CLI reads from those pages alone.
	r = h.postMultipart(map[string]string{"pages": "2-3"}, "scan.tif", tiff)
	want := string(cli(t, testdocs.TIFF(imgs[1:2], 300), "-l", "eng")) + "\f" + string(cli(t, testdocs.TIFF(imgs[2:3], 300), "-l", "eng"))
	if got := r.json(t)["text"]; got != want {
		t.Errorf("pages 2-3:\n got %q\nwant %q", got, want)
	}
	r = h.postJSON(map[string]any{"image": b64(tiff), "pages": 3})
	if got, want := r.json(t)["text"], string(cli(t, testdocs.TIFF(imgs[2:3], 300), "-l", "eng")); got != want {
		t.Errorf("pages: 3 (a number):\n got %q\nwant %q", got, want)
	}
}

// PDF: scanned pages read against their ground truth, a searchable PDF that qpdf accepts and
// pdftotext reads, the PDF's own text without OCR, and both mixed with pdf_text=auto.
func TestPDF(t *testing.T) {
	h := newHarness(t, options{})
	imgs, src := docImages(t)
	scan := testdocs.ScannedPDF(imgs, 300)

	r := h.postJSON(map[string]any{"image": b64(scan), "format": "json"})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	pages := r.json(t)["pages"].([]any)
	if len(pages) != len(src) {
		t.Fatalf("%d pages, want %d", len(pages), len(src))
	}
	var texts []string
	for i, p := range pages {
		p := p.(map[string]any)
		b := imgs[i].Bounds()
		// go-pdfium rounds the size up: 153.6 pt at 300 DPI is 640.0000000000001 pixels, so 641.
		if w, h := p["width"].(float64), p["height"].(float64); p["dpi"].(float64) != 300 ||
			w < float64(b.Dx()) || w > float64(b.Dx()+1) || h < float64(b.Dy()) || h > float64(b.Dy()+1) {
			t.Errorf("page %d rendered %vx%v at %v DPI, want %dx%d (+1) at 300", i+1, w, h, p["dpi"], b.Dx(), b.Dy())
		}
		if acc := testimages.Accuracy(p["text"].(string), src[i].Expected); acc < 0.95 {
			t.Errorf("page %d (%s): accuracy %.3f: %q", i+1, src[i].Name, acc, p["text"])
		}
		texts = append(texts, p["text"].(string))
	}

	r = h.postMultipart(map[string]string{"format": "pdf"}, "scan.pdf", scan)
	if r.status != 200 || r.header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("format pdf: %d %s %.200q", r.status, r.header.Get("Content-Type"), r.body)
	}
	checkSearchablePDF(t, r.body, len(pages), strings.Join(texts, "\n"))

	lines := []string{"Invoice number 12345", "The quick brown fox jumps over the lazy dog."}
	r = h.postMultipart(map[string]string{"pdf_text": "extract"}, "text.pdf", testdocs.TextPDF(lines))
	if got, want := r.json(t)["text"], strings.Join(lines, "\n")+"\n"; got != want {
		t.Errorf("pdf_text=extract: %q, want %q", got, want)
	}
	mixed := testdocs.MixedPDF(lines, imgs[0], 300)
	r = h.postMultipart(map[string]string{"pdf_text": "auto", "format": "json"}, "mixed.pdf", mixed)
	pages = r.json(t)["pages"].([]any)
	if len(pages) != 2 || pages[0].(map[string]any)["source"] != "pdf_text" || pages[1].(map[string]any)["source"] != "ocr" {
		t.Fatalf("pdf_text=auto: %s", r.body)
	}
	if acc := testimages.Accuracy(pages[1].(map[string]any)["text"].(string), src[0].Expected); acc < 0.95 {
		t.Errorf("pdf_text=auto, the scanned page: accuracy %.3f", acc)
	}
	// With OCR (the default), the text page is rendered and read too.
	r = h.postMultipart(nil, "text.pdf", testdocs.TextPDF(lines))
	if got := testimages.Normalize(r.json(t)["text"].(string)); got != testimages.Normalize(strings.Join(lines, " ")) {
		t.Errorf("text page by OCR: %q", got)
	}
}

// checkSearchablePDF holds pdf to qpdf --check and pdftotext (poppler), when they are installed.
func checkSearchablePDF(t *testing.T, pdf []byte, pages int, text string) {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %.100q", pdf)
	}
	for _, tool := range []string{"qpdf", "pdftotext", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: make test installs it (hack/install-deps.sh: qpdf, poppler-utils)", tool)
		}
	}
	f := filepath.Join(t.TempDir(), "out.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qpdf", "--check", f).CombinedOutput(); err != nil {
		t.Errorf("qpdf --check: %v\n%s", err, out)
	}
	info, _ := exec.Command("pdfinfo", f).Output()
	if !regexp.MustCompile(`(?m)^Pages:\s+` + strconv.Itoa(pages) + `$`).Match(info) {
		t.Errorf("pdfinfo: %s, want %d pages", info, pages)
	}
	got, err := exec.Command("pdftotext", f, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	if acc := testimages.Accuracy(string(got), text); acc < 0.98 {
		t.Errorf("pdftotext of the searchable PDF: accuracy %.3f against the recognised text\n got %q\nwant %q", acc, got, text)
	}
}

// Bad documents: each a clear JSON error with the right status, fast, and the service still
// reads the next page.
func TestBadDocuments(t *testing.T) {
	h := newHarness(t, options{requestTimeout: 3 * time.Second})
	imgs, _ := docImages(t)
	scan := testdocs.ScannedPDF(imgs[:1], 300)
	encrypted, err := testdocs.Encrypt(scan, "secret")
	if err != nil {
		t.Fatal(err)
	}
	ownerOnly, err := testdocs.Encrypt(scan, "") // opens without a password
	if err != nil {
		t.Fatal(err)
	}
	tiff := testdocs.TIFF(imgs, 300)
	tests := []struct {
		name   string
		input  []byte
		fields map[string]string
		status int
		code   string
		says   string // in the message
		within time.Duration
	}{
		{"encrypted PDF", encrypted, nil, 422, "encrypted_pdf", "password", 5 * time.Second},
		{"malformed PDF", []byte("%PDF-1.7\nthis is not a PDF\n"), nil, 422, "undecodable_document", "PDFium", 5 * time.Second},
		{"truncated PDF", scan[:len(scan)/3], nil, 422, "undecodable_document", "", 5 * time.Second},
		{"3,000-page PDF", testdocs.BlankPDF(3000, 612, 792), nil, 413, "too_many_pages", "3000 pages", 5 * time.Second},
		{"200 x 200 inch page", testdocs.BlankPDF(1, 14400, 14400), nil, 413, "image_too_large", "200 x 200 inches", 5 * time.Second},
		{"a page that renders too long", testdocs.SlowPDF(4, 200), nil, 504, "ocr_timeout", "", 6 * time.Second},
		{"500-page TIFF", testdocs.TIFFPages(500), nil, 413, "too_many_pages", "500 pages", 2 * time.Second},
		{"TIFF page claiming 100000x100000", testdocs.TIFFClaiming(100000, 100000), nil, 413, "image_too_large", "page 1", 2 * time.Second},
		{"TIFF with an unreadable page 2", testdocs.TIFFUnreadablePage2(imgs[0]), nil, 422, "undecodable_image", "page 2", 5 * time.Second},
		{"TIFF whose pages loop", testdocs.TIFFLoop(), nil, 422, "undecodable_image", "loops", 2 * time.Second},
		{"page 0", tiff, map[string]string{"pages": "0"}, 400, "invalid_pages", "", time.Second},
		{"pages backwards", tiff, map[string]string{"pages": "3-1"}, 400, "invalid_pages", "", time.Second},
		{"page past the end", tiff, map[string]string{"pages": "2,9"}, 400, "invalid_pages", "3 pages", time.Second},
		{"unknown format", tiff, map[string]string{"format": "docx"}, 400, "invalid_format", "docx", time.Second},
		{"unknown pdf_text", scan, map[string]string{"pdf_text": "guess"}, 400, "invalid_format", "guess", time.Second},
		{"extract into hOCR", scan, map[string]string{"pdf_text": "extract", "format": "hocr"}, 400, "invalid_format", "hocr", time.Second},
		{"unknown ocr_mode", scan, map[string]string{"format": "pdf", "ocr_mode": "redo"}, 400, "invalid_format", "redo", time.Second},
		{"ocr_mode without format pdf", scan, map[string]string{"ocr_mode": "force_ocr"}, 400, "invalid_format", "format pdf", time.Second},
		{"redo_ocr into json", scan, map[string]string{"ocr_mode": "redo_ocr", "format": "json"}, 400, "invalid_format", "format pdf", time.Second},
		{"rotate_pages into json", scan, map[string]string{"rotate_pages": "true", "format": "json"}, 400, "invalid_format", "format pdf", time.Second},
		{"deskew with redo_ocr", scan, map[string]string{"deskew": "true", "ocr_mode": "redo_ocr", "format": "pdf"}, 400, "invalid_format", "redo_ocr", time.Second},
		{"deskew of a TIFF", tiff, map[string]string{"deskew": "true", "format": "pdf"}, 400, "invalid_format", "PDF", time.Second},
		{"output_type pdfa into json", scan, map[string]string{"output_type": "pdfa", "format": "json"}, 400, "invalid_format", "format pdf", time.Second},
		{"unknown output_type", scan, map[string]string{"output_type": "pdfa-3", "format": "pdf"}, 400, "invalid_format", "pdfa-3", time.Second},
		{"PDF/A of a TIFF", tiff, map[string]string{"output_type": "pdfa", "format": "pdf"}, 400, "invalid_format", "image", time.Second},
		{"rotate_pages not a boolean", scan, map[string]string{"rotate_pages": "maybe", "format": "pdf"}, 400, "bad_request", "true or false", time.Second},
		{"pdf_text into a searchable PDF", scan, map[string]string{"pdf_text": "auto", "format": "pdf"}, 400, "invalid_format", "pdf", time.Second},
		{"searchable PDF of an owner-password PDF", ownerOnly, map[string]string{"format": "pdf"}, 422, "encrypted_pdf", "decrypt", 5 * time.Second},
		{"layout with hOCR", scan, map[string]string{"layout": "true", "format": "hocr"}, 400, "invalid_format", "layout", time.Second},
	}
	for _, tt := range tests {
		start := time.Now()
		r := h.postMultipart(tt.fields, "x", tt.input)
		took := time.Since(start)
		msg, _ := r.json(t)["error"].(map[string]any)["message"].(string)
		if r.status != tt.status || r.errorCode(t) != tt.code || !strings.Contains(msg, tt.says) {
			t.Errorf("%s: %d %s, want %d %s saying %q", tt.name, r.status, r.body, tt.status, tt.code, tt.says)
		}
		if took > tt.within {
			t.Errorf("%s: answered in %v, want within %v", tt.name, took, tt.within)
		}
		t.Logf("%s: %d %s in %v", tt.name, r.status, msg, took.Round(time.Millisecond))
	}
	// A 50 x 50 inch poster is read at the resolution that fits 40 megapixels, by a server with
	// the default time limit: this one's 3 s is for the slow page above, and a 40 MP page can take
	// longer on a loaded machine under the race detector (seen in a cold CI run).
	r := newHarness(t, options{}).postMultipart(map[string]string{"format": "json"}, "poster.pdf", testdocs.BlankPDF(1, 3600, 3600))
	if r.status != 200 {
		t.Fatalf("poster: %d %s", r.status, r.body)
	}
	if p := r.json(t)["pages"].([]any)[0].(map[string]any); p["dpi"].(float64) != 126 {
		t.Errorf("poster rendered at %v DPI, want 126 (40 MP over 2,500 square inches)", p["dpi"])
	}
	// Still serving.
	if r := h.postMultipart(nil, "x", testimages.Get(t, "phototest.tif").Bytes); r.status != 200 {
		t.Errorf("after the bad documents: %d %s", r.status, r.body)
	}
}

// The format can come from the Accept header; an explicit format wins; an Accept nothing
// satisfies is 406; */* (curl's) is the original JSON.
func TestFormatFromAccept(t *testing.T) {
	h := newHarness(t, options{})
	img := testimages.Get(t, "gos_001-helloworld.png").Bytes
	for accept, want := range map[string]string{
		"":                                       "application/json",
		"*/*":                                    "application/json",
		"application/json":                       "application/json",
		"text/html":                              "text/html; charset=utf-8",
		"application/xml;q=0.9, application/pdf": "application/pdf",
		"text/tab-separated-values":              "text/tab-separated-values; charset=utf-8",
	} {
		req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", strings.NewReader(`{"image":"`+b64(img)+`"}`))
		req.Header.Set("Content-Type", "application/json")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if r := h.do(req); r.status != 200 || r.header.Get("Content-Type") != want {
			t.Errorf("Accept %q: %d %s, want %s", accept, r.status, r.header.Get("Content-Type"), want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", strings.NewReader(`{"image":"`+b64(img)+`","format":"tsv"}`))
	req.Header.Set("Accept", "application/pdf")
	if r := h.do(req); r.header.Get("Content-Type") != "text/tab-separated-values; charset=utf-8" {
		t.Errorf("format tsv with Accept pdf: %s", r.header.Get("Content-Type"))
	}
	req, _ = http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", strings.NewReader(`{"image":"`+b64(img)+`"}`))
	req.Header.Set("Accept", "image/png")
	if r := h.do(req); r.status != 406 || r.errorCode(t) != "not_acceptable" {
		t.Errorf("Accept image/png: %d %s", r.status, r.body)
	}
}
