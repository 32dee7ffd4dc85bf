package ocr

import (
	"bytes"
	"testing"

	"golang.org/x/image/tiff"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/service/internal/imageinput"
)

// A bilevel scan page is read from its G4 image, pixel for pixel the scan's; a page of any
// other geometry or content is rendered.
func TestScanImage(t *testing.T) {
	scan, err := testdocs.BilevelScanPDF(1)
	if err != nil {
		t.Fatal(err)
	}
	geometry, pages, err := testdocs.GeometryPDF()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pdf  []byte
		page int
		want bool
	}{{"Letter scan", scan, 0, true}} {
		checkScanImage(t, tc.name, tc.pdf, tc.page, tc.want)
	}
	for i, p := range pages {
		// The plain page and the one off the origin are scans filling their page; the others are
		// turned, cropped, colour or text.
		checkScanImage(t, p.Name, geometry, i, p.Name == "plain" || p.Name == "media box off the origin")
	}

	// The TIFF holds the scan's pixels: black where the page is black.
	w := &worker{doc: &heldDocument{id: 1, format: imageinput.PDF, data: scan}}
	b, ok := w.scanImage(job{Page: 0, DPI: 300, Width: 2550, Height: 3300})
	if !ok {
		t.Fatal("not a scan")
	}
	img, err := tiff.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the TIFF does not decode: %v", err)
	}
	want, _ := testdocs.ScanPage(0)
	got := testdocs.Gray(img)
	diff := 0
	for i := range want.Pix {
		if (want.Pix[i] < 128) != (got.Pix[i] < 128) {
			diff++
		}
	}
	if diff != 0 || got.Rect != want.Rect {
		t.Errorf("%d pixels differ (%v, want %v)", diff, got.Rect, want.Rect)
	}
}

func checkScanImage(t *testing.T, name string, pdf []byte, page int, want bool) {
	t.Helper()
	doc, err := imageinput.Open(pdf, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{doc: &heldDocument{id: doc.ID(), format: imageinput.PDF, data: pdf}}
	ctx := w.doc.parsed()
	if ctx == nil {
		t.Fatal("pdfcpu could not read the document")
	}
	_, _, inh, err := ctx.PageDict(page+1, false)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := doc.PDFPage(page+1, inh.MediaBox.Width(), inh.MediaBox.Height(), 300, 1<<30, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, got := w.scanImage(job{Page: page, DPI: 300, Width: pg.Width(), Height: pg.Height()}); got != want {
		t.Errorf("%s: read from its image %v, want %v", name, got, want)
	}
}

// A colour scan's page, one RGB JPEG over the whole page at the reading resolution, is read
// from its JPEG (the bytes in the PDF, as they are); a gray JPEG's too; anything else (a page
// a G4 scan) is not. (TestSearchablePDFAligned reads the geometry document's colour JPEG page
// so, its words in place.)
func TestJPEGScanImage(t *testing.T) {
	colour, err := testdocs.ColourScanPDF(1)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := testdocs.ScanPage(0)
	gray, err := testdocs.JPEGPagePDF(g, 90)
	if err != nil {
		t.Fatal(err)
	}
	bilevel, _ := testdocs.BilevelScanPDF(1)
	for _, tc := range []struct {
		name         string
		pdf          []byte
		ok, isColour bool
	}{{"colour JPEG scan", colour, true, true}, {"gray JPEG scan", gray, true, false}, {"G4 scan", bilevel, false, false}} {
		w := &worker{doc: &heldDocument{id: 1, format: imageinput.PDF, data: tc.pdf}}
		b, c, ok := w.jpegImage(job{Page: 0, DPI: 300, Width: 2550, Height: 3300})
		if ok != tc.ok || c != tc.isColour || ok && (!bytes.Contains(tc.pdf, b) || !bytes.HasPrefix(b, []byte{0xFF, 0xD8})) {
			t.Errorf("%s: jpegImage %v colour %v (%d bytes), want %v %v", tc.name, ok, c, len(b), tc.ok, tc.isColour)
		}
	}
}
