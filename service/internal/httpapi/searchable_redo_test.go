package httpapi

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// ocr_mode=redo_ocr, as OCRmyPDF's --redo-ocr: on a page holding both born-digital text and a
// scan, first given an OCR layer over everything by our own force_ocr (its born-digital words
// then twice in pdftotext), redo_ocr removes that layer and OCRs the page again with its visible
// text hidden: the visible text is unchanged (every word at the same box), no born-digital word
// is found more often than in the original, the scan's words are found once, each where the
// JSON layout of the page puts it; qpdf --check passes and the input's bytes are a prefix.
func TestSearchablePDFRedoOCR(t *testing.T) {
	needTools(t)
	h := newHarness(t, options{})
	photo, err := testdocs.Decode(testimages.Get(t, "phototest.tif").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{"Born-digital heading of the mixed page", "Its second line carries other words"}
	src := testdocs.MixedPagePDF(lines, photo, 300)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	in := write("in.pdf", src)
	visible := pdfWords(t, in, 1)

	r := h.postMultipart(map[string]string{"format": "pdf", "ocr_mode": "force_ocr"}, "mixed.pdf", src)
	if r.status != 200 {
		t.Fatalf("force_ocr: %d %s", r.status, r.body)
	}
	forced := r.body
	if n := count(pdfWords(t, write("forced.pdf", forced), 1), "Born-digital"); n != 2 {
		t.Fatalf("the force_ocr output should hold the heading twice (visible and OCRed), holds it %d times", n)
	}
	// The JSON layout of the same page, read as a whole: the scan's words, in pixels at 300 DPI.
	jr := h.postMultipart(map[string]string{"format": "json"}, "mixed.pdf", src)
	if jr.status != 200 {
		t.Fatalf("json: %d %s", jr.status, jr.body)
	}
	layout := jr.json(t)["pages"].([]any)[0].(map[string]any)
	scanTop := (792 - 560) * 300 / 72.0 // the scan's top edge, in pixels from the page's top
	scanWords := filterWords(layout, func(y0 float64) bool { return y0 >= scanTop-5 })

	for name, input := range map[string][]byte{"over our own layer": forced, "first OCR": src} {
		t.Run(name, func(t *testing.T) {
			r := h.postMultipart(map[string]string{"format": "pdf", "ocr_mode": "redo_ocr"}, "mixed.pdf", input)
			if r.status != 200 || r.header.Get("Content-Type") != "application/pdf" {
				t.Fatalf("redo_ocr: %d %.300s", r.status, r.body)
			}
			if !bytes.HasPrefix(r.body, input) {
				t.Error("the input's bytes were changed")
			}
			out := write("redone.pdf", r.body)
			qpdfCheckFile(t, out)
			words := pdfWords(t, out, 1)
			for _, v := range visible { // the visible text, unchanged
				found := false
				for _, w := range words {
					found = found || w == v
				}
				if !found {
					t.Errorf("visible word %q at [%.1f %.1f %.1f %.1f] not found as it was", v.text, v.x0, v.y0, v.x1, v.y1)
				}
			}
			for _, v := range visible {
				if a, b := count(visible, v.text)+countJSON(scanWords, v.text), count(words, v.text); b != a {
					t.Errorf("%q found %d times, %d in the original and the scan: the earlier layer or the visible text read again", v.text, b, a)
				}
			}
			dev, matched, total := alignment(t, scanWords, 72.0/300, words)
			t.Logf("%d words on the page (%d visible); the scan's: %d of %d in place, worst %.2f pt", len(words), len(visible), matched, total, dev)
			if total < 20 || float64(matched) < 0.9*float64(total) {
				t.Errorf("the scan's words: %d of %d found in place", matched, total)
			}
			for _, w := range words {
				if n := count(words, w.text); len(w.text) > 3 && n > 1 && count(visible, w.text) == 0 && countJSON(scanWords, w.text) < n {
					t.Errorf("%q found %d times: a layer left over", w.text, n)
				}
			}
		})
	}
}

func count(words []pdfWord, text string) int {
	n := 0
	for _, w := range words {
		if w.text == text {
			n++
		}
	}
	return n
}

func countJSON(page map[string]any, text string) int {
	n := 0
	for _, w := range page["words"].([]any) {
		if w.(map[string]any)["text"] == text {
			n++
		}
	}
	return n
}

// filterWords is a JSON page with only the words whose top edge keep accepts.
func filterWords(page map[string]any, keep func(y0 float64) bool) map[string]any {
	var words []any
	for _, w := range page["words"].([]any) {
		if keep(w.(map[string]any)["bbox"].(map[string]any)["y0"].(float64)) {
			words = append(words, w)
		}
	}
	out := map[string]any{}
	for k, v := range page {
		out[k] = v
	}
	out["words"] = words
	return out
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"qpdf", "pdftotext", "pdfinfo", "pdfimages"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: make test installs it (hack/install-deps.sh: qpdf, poppler-utils)", tool)
		}
	}
}

func qpdfCheckFile(t *testing.T, path string) {
	t.Helper()
	if o, err := exec.Command("qpdf", "--check", path).CombinedOutput(); err != nil {
		t.Errorf("qpdf --check: %v\n%s", err, o)
	}
}
