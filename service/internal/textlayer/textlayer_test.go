package textlayer

import (
	"bytes"
	"fmt"
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

// A hand-made layer as Tesseract lays one out (invisible text on a page the size of the
// rendered image), over pages of every geometry PDFium renders: the words pdftotext finds in
// the result sit where they sit in the layer, scaled to the page as displayed; the page's own
// text and the document pass qpdf --check.
func TestLayerAlignedOnEveryGeometry(t *testing.T) {
	need(t, "pdftotext", "qpdf")
	const lw, lh = 600.0, 800.0 // the layer: the page rendered at 72 DPI x 2 (a Letter-ish 300 x 400 page)
	layer := onePage(fmt.Sprintf("/MediaBox [0 0 %g %g]", lw, lh),
		"BT 3 Tr /F1 20 Tf 100 700 Td (Alpha) Tj 300 -600 Td (Omega) Tj ET")
	layerWords := bboxes(t, layer)
	for _, tc := range []struct {
		name   string
		page   string
		scale  float64 // displayed width / layer width
		before string  // content that leaves the graphics state changed
	}{
		{"plain", "/MediaBox [0 0 300 400]", 0.5, ""},
		{"rotate 90", "/MediaBox [0 0 400 300] /Rotate 90", 0.5, ""},
		{"rotate 180", "/MediaBox [0 0 300 400] /Rotate 180", 0.5, ""},
		{"rotate 270", "/MediaBox [0 0 400 300] /Rotate 270", 0.5, ""},
		{"rotate -90", "/MediaBox [0 0 400 300] /Rotate -90", 0.5, ""},
		{"crop box", "/MediaBox [0 0 500 600] /CropBox [50 70 350 470]", 0.5, ""},
		{"media box off the origin", "/MediaBox [-100 -200 200 200]", 0.5, ""},
		{"crop and rotate", "/MediaBox [0 0 600 500] /CropBox [100 50 500 350] /Rotate 90", 0.5, ""},
		{"graphics state left changed", "/MediaBox [0 0 300 400]", 0.5, "1.5 0 0 1.5 10 10 cm 1 0 0 RG"},
		{"no content", "/MediaBox [0 0 300 400]", 0.5, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := "BT /F1 10 Tf 150 200 Td (Original) Tj ET"
			switch tc.before {
			case "-":
				content = "-"
			case "":
			default:
				content = tc.before + " " + content
			}
			src := onePage(tc.page, content)
			out, err := Add(src, []Layer{{Page: 0, PDF: layer}})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, src) {
				t.Fatal("the original bytes were changed")
			}
			qpdfCheck(t, out)
			got := bboxes(t, out)
			for word, want := range layerWords {
				g, ok := got[word]
				if !ok {
					t.Fatalf("%s not found in %v", word, got)
				}
				for k := range 4 {
					if math.Abs(g[k]-want[k]*tc.scale) > 1 {
						t.Errorf("%s at %v, want %v", word, g, scaled(want, tc.scale))
						break
					}
				}
			}
			if _, ok := got["Original"]; !ok && content != "-" {
				t.Errorf("the page's own text is gone: %v", got)
			}
		})
	}
}

// A PDF whose cross-reference section is a stream (PDF 1.5, object streams) gets a stream.
func TestXRefStreamUpdated(t *testing.T) {
	need(t, "pdftotext", "qpdf")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.pdf"), onePage("/MediaBox [0 0 300 400]", "BT /F1 10 Tf 150 200 Td (Original) Tj ET"), 0o600)
	if out, err := exec.Command("qpdf", "--object-streams=generate", filepath.Join(dir, "in.pdf"), filepath.Join(dir, "xs.pdf")).CombinedOutput(); err != nil {
		t.Fatalf("qpdf: %v %s", err, out)
	}
	src, _ := os.ReadFile(filepath.Join(dir, "xs.pdf"))
	prev, err := lastStartXRef(src)
	if err != nil || !isXRefStream(src, prev) {
		t.Fatalf("qpdf wrote no cross-reference stream (%v)", err)
	}
	layer := onePage("/MediaBox [0 0 600 800]", "BT 3 Tr /F1 20 Tf 100 700 Td (Alpha) Tj ET")
	out, err := Add(src, []Layer{{Page: 0, PDF: layer}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out[len(src):], []byte("/XRef")) {
		t.Error("the update has no cross-reference stream")
	}
	qpdfCheck(t, out)
	if got := bboxes(t, out); got["Alpha"] != [4]float64{50, 42.82, 75.57, 52.07} || got["Original"] == [4]float64{} {
		t.Errorf("words %v", got)
	}
}

func TestEncryptedRefused(t *testing.T) {
	src := bytes.Replace(onePage("/MediaBox [0 0 10 10]", "-"), []byte("/Root 1 0 R"), []byte("/Root 1 0 R /Encrypt 4 0 R"), 1)
	if _, err := Add(src, nil); err == nil {
		t.Fatal("an encrypted PDF got a layer")
	}
}

func TestPlacementMatrix(t *testing.T) {
	for _, tc := range []struct {
		rot  int
		want string
	}{{0, "0.5 0 0 0.5 0 0"}, {90, "0 0.5 -0.5 0 300 0"}, {180, "-0.5 0 0 -0.5 300 400"}, {270, "0 -0.5 0.5 0 0 400"}} {
		w, h := 600.0, 800.0
		if tc.rot%180 != 0 {
			w, h = 800, 600
		}
		if got := placement(box{0, 0, 300, 400}, tc.rot, w, h).String(); got != tc.want {
			t.Errorf("rotate %d: %s, want %s", tc.rot, got, tc.want)
		}
	}
}

func scaled(b [4]float64, s float64) [4]float64 {
	return [4]float64{b[0] * s, b[1] * s, b[2] * s, b[3] * s}
}

// onePage is a one-page PDF with Helvetica as /F1 (content "-": no /Contents).
func onePage(pageEntries, content string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	var offs []int
	obj := func(s string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), s)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj("<< /Type /Pages /Kids [3 0 R] /Count 1 /Resources << /Font << /F1 4 0 R >> >> >>")
	contents := " /Contents 5 0 R"
	if content == "-" {
		contents, content = "", ""
	}
	obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R %s%s >>", pageEntries, contents))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content)+1, content))
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (make deps installs it): %v", tool, err)
		}
	}
}

func qpdfCheck(t *testing.T, pdf []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.pdf")
	os.WriteFile(path, pdf, 0o600)
	if out, err := exec.Command("qpdf", "--check", path).CombinedOutput(); err != nil {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
}

var wordRE = regexp.MustCompile(`<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">([^<]*)</word>`)

// bboxes are the words pdftotext -bbox finds on the first page: xMin, yMin, xMax, yMax from
// the displayed crop box's top left corner.
func bboxes(t *testing.T, pdf []byte) map[string][4]float64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "words.pdf")
	os.WriteFile(path, pdf, 0o600)
	out, err := exec.Command("pdftotext", "-bbox", "-cropbox", "-f", "1", "-l", "1", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	words := map[string][4]float64{}
	for _, m := range wordRE.FindAllStringSubmatch(string(out), -1) {
		var b [4]float64
		for k := range 4 {
			b[k], _ = strconv.ParseFloat(m[k+1], 64)
		}
		words[strings.TrimSpace(m[5])] = b
	}
	return words
}

// What laying text layers over a 21-page bilevel scan costs (make bench's first document): the
// layers here are hand-made pages of 400 words each, as Tesseract's are for such a page.
func BenchmarkAdd(b *testing.B) {
	src, err := testdocs.BilevelScanPDF(21)
	if err != nil {
		b.Fatal(err)
	}
	var c strings.Builder
	c.WriteString("BT 3 Tr /F1 10 Tf 72 720 Td\n")
	for i := range 400 {
		fmt.Fprintf(&c, "(word%d ) Tj 30 0 Td\n", i)
		if i%10 == 9 {
			c.WriteString("-300 -14 Td\n")
		}
	}
	c.WriteString("ET")
	layer := onePage("/MediaBox [0 0 612 792]", c.String())
	layers := make([]Layer, 21)
	for i := range layers {
		layers[i] = Layer{Page: i, PDF: layer}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Add(src, layers); err != nil {
			b.Fatal(err)
		}
	}
}
