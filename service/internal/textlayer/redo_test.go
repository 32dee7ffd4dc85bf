package textlayer

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestStripInvisible(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"invisible object gone, its font kept", "q BT 3 Tr /F1 12 Tf 10 10 Td (Hidden) Tj ET Q", "q \n3 Tr\n/F1 12 Tf Q"},
		{"visible kept", "BT /F1 12 Tf 10 10 Td (Shown) Tj ET", "BT /F1 12 Tf 10 10 Td (Shown) Tj ET"},
		{"mixed object kept", "BT 3 Tr (a) Tj 0 Tr (b) Tj ET", "BT 3 Tr (a) Tj 0 Tr (b) Tj ET"},
		{"mode from before the object", "3 Tr BT [(a) -20 (b)] TJ ET 0 Tr BT (c) Tj ET", "3 Tr  0 Tr BT (c) Tj ET"},
		{"q/Q restore the mode", "q 3 Tr Q BT (c) Tj ET", "q 3 Tr Q BT (c) Tj ET"},
		{"spacing of \" kept", "BT 3 Tr 1 2 (x) \" ET", "\n3 Tr\n1 Tw 2 Tc"},
		{"strings with parentheses and operators", "BT 3 Tr (a\\) (ET) Tj) Tj ET", "\n3 Tr"},
		{"inline image left alone", "BI /W 1 /H 1 ID \x00ET\x01 EI BT 3 Tr (h) Tj ET", "BI /W 1 /H 1 ID \x00ET\x01 EI \n3 Tr"},
		{"unparsable left alone", "BT 3 Tr (open Tj ET", "BT 3 Tr (open Tj ET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := stripInvisible([]byte(tc.in))
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// redo_ocr on a PDF that went through readocr once (its layer a form over the page) and on one
// whose OCR text is in the page's own content (as Tesseract's PDF renderer writes it): the old
// words are gone, the new ones sit where the new layer puts them, the page's visible text is
// unchanged; qpdf --check passes.
func TestRedoReplacesEarlierLayer(t *testing.T) {
	need(t, "pdftotext", "qpdf")
	old := onePage("/MediaBox [0 0 600 800]", "BT 3 Tr /F1 20 Tf 100 700 Td (Alpha) Tj 300 -600 Td (Omega) Tj ET")
	fresh := onePage("/MediaBox [0 0 600 800]", "BT 3 Tr /F1 20 Tf 200 500 Td (Beta) Tj ET")
	visible := "BT /F1 10 Tf 150 200 Td (Original) Tj ET"
	once, err := Add(onePage("/MediaBox [0 0 300 400]", visible), []Layer{{Page: 0, PDF: old}})
	if err != nil {
		t.Fatal(err)
	}
	inContent := onePage("/MediaBox [0 0 300 400]", visible+" BT 3 Tr /F1 10 Tf 50 350 Td (Alpha) Tj ET 0 Tr BT 20 20 Td (Omega) Tj ET")
	for name, src := range map[string][]byte{"layer as a form": once, "layer in the content": inContent} {
		t.Run(name, func(t *testing.T) {
			before := bboxes(t, src)
			if _, ok := before["Alpha"]; !ok {
				t.Fatalf("no earlier layer to redo: %v", before)
			}
			out, err := Add(src, []Layer{{Page: 0, PDF: fresh, Redo: true}})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, src) {
				t.Fatal("the original bytes were changed")
			}
			qpdfCheck(t, out)
			got := bboxes(t, out)
			if _, ok := got["Alpha"]; ok {
				t.Errorf("the earlier layer is still there: %v", got)
			}
			if got["Original"] != before["Original"] {
				t.Errorf("the visible text moved or went: %v, was %v", got["Original"], before["Original"])
			}
			if name == "layer in the content" && got["Omega"] != before["Omega"] {
				t.Errorf("the visible Omega (after the invisible object, with its font) moved or went: %v, was %v", got["Omega"], before["Omega"])
			}
			want := scaled(bboxes(t, fresh)["Beta"], 0.5)
			for k := range 4 {
				if math.Abs(got["Beta"][k]-want[k]) > 1 {
					t.Fatalf("Beta at %v, want %v", got["Beta"], want)
				}
			}
			// And again: a redo of the redone PDF keeps one layer, never two.
			again, err := Add(out, []Layer{{Page: 0, PDF: fresh, Redo: true}})
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(text(t, again), "Beta"); n != 1 {
				t.Errorf("Beta %d times after a second redo", n)
			}
		})
	}
}

// A redone page that gets no new words still loses its old layer.
func TestRedoWithoutWords(t *testing.T) {
	need(t, "pdftotext", "qpdf")
	src := onePage("/MediaBox [0 0 300 400]", "BT 3 Tr /F1 10 Tf 50 350 Td (Alpha) Tj ET")
	out, err := Add(src, []Layer{{Page: 0, Redo: true}})
	if err != nil {
		t.Fatal(err)
	}
	qpdfCheck(t, out)
	if got := bboxes(t, out); len(got) != 0 {
		t.Errorf("words left: %v", got)
	}
}

// text is what pdftotext finds on the page, every occurrence.
func text(t *testing.T, pdf []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "text.pdf")
	os.WriteFile(path, pdf, 0o600)
	out, err := exec.Command("pdftotext", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}
