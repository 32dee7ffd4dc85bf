package imageinput

import (
	"errors"
	"image"
	"slices"
	"testing"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/failure"
)

func testTIFF(t testing.TB, n int) []byte {
	t.Helper()
	img, err := testdocs.Decode(testimages.Get(t, "phototest.tif").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]image.Image, n)
	for i := range pages {
		pages[i] = img
	}
	return testdocs.TIFF(pages, 300)
}

func TestOpenTIFF(t *testing.T) {
	doc, err := Open(testTIFF(t, 3), testMaxPixels)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Format() != TIFF || doc.PageCount() != 3 {
		t.Fatalf("%s of %d pages", doc.Format(), doc.PageCount())
	}
	var offsets []uint64
	for n := 1; n <= 3; n++ {
		p, err := doc.Page(n, testMaxPixels)
		if err != nil {
			t.Fatal(err)
		}
		if p.Width() != 640 || p.Height() != 480 || !p.Gray() || p.Number() != n || p.Document() != doc.ID() {
			t.Errorf("page %d: %dx%d gray=%v number %d", n, p.Width(), p.Height(), p.Gray(), p.Number())
		}
		offsets = append(offsets, p.TIFFOffset())
	}
	if !slices.IsSorted(offsets) || offsets[0] == 0 || offsets[0] == offsets[1] {
		t.Errorf("IFD offsets %v", offsets)
	}
	// A single-page TIFF is read with pixReadMem: no offset.
	single, _ := Open(testimages.Get(t, "phototest.tif").Bytes, testMaxPixels)
	if p, _ := single.Page(1, testMaxPixels); single.PageCount() != 1 || p.TIFFOffset() != 0 {
		t.Errorf("single-page TIFF: %d pages, offset %d", single.PageCount(), p.TIFFOffset())
	}
	// Images are documents of one page.
	png, err := Open(testimages.Get(t, "gos_001-helloworld.png").Bytes, testMaxPixels)
	if err != nil || png.PageCount() != 1 {
		t.Fatalf("png: %v, %d pages", err, png.PageCount())
	}
	if p, err := png.Page(1, testMaxPixels); err != nil || p.Width() != 1174 || p.Document() != 0 && p.Number() != 1 {
		t.Errorf("png page: %v %dx%d", err, p.Width(), p.Height())
	}
}

func TestOpenRefusesBadTIFFs(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		page int
		want failure.Code
	}{
		{"pages that loop", testdocs.TIFFLoop(), 0, failure.UndecodableImage},
		{"first IFD past the end", []byte("II*\x00\xff\xff\x00\x00"), 0, failure.UndecodableImage},
		{"BigTIFF (not sniffed as TIFF)", []byte("II+\x00\x08\x00\x00\x00"), 0, failure.UnsupportedMediaType},
		{"IFD cut short", append([]byte("II*\x00\x08\x00\x00\x00"), 0x10, 0), 0, failure.UndecodableImage},
		{"100000 x 100000", testdocs.TIFFClaiming(100000, 100000), 1, failure.ImageTooLarge},
		{"no width", testdocs.TIFFClaiming(0, 100), 1, failure.UndecodableImage},
	}
	for _, tt := range tests {
		doc, err := Open(tt.data, testMaxPixels)
		if err == nil && tt.page > 0 {
			_, err = doc.Page(tt.page, testMaxPixels)
		}
		if failure.CodeOf(err) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestPDFPageResolution(t *testing.T) {
	doc, err := Open(testdocs.BlankPDF(1, 612, 792), testMaxPixels)
	if err != nil || doc.Format() != PDF || doc.PageCount() != 0 {
		t.Fatalf("%v %s %d", err, doc.Format(), doc.PageCount())
	}
	tests := []struct {
		wPt, hPt  float64
		dpi       int
		maxPixels int64
		wantDPI   int
		wantW     int
		wantErr   failure.Code
	}{
		{612, 792, 0, 40_000_000, 300, 2550, ""},                   // Letter at 300 DPI: 8.4 MP
		{612, 792, 150, 40_000_000, 150, 1275, ""},                 // --dpi 150
		{612, 792, 0, 4_000_000, 206, 1751, ""},                    // lowered to fit 4 MP
		{3600, 3600, 0, 40_000_000, 126, 6300, ""},                 // a 50-inch poster
		{14400, 14400, 0, 40_000_000, 0, 0, failure.ImageTooLarge}, // 200 inches: 31 DPI
		{612, 20000, 0, 1 << 40, 117, 995, ""},                     // a long strip: 32767 pixels a side
		{0, 792, 0, 40_000_000, 0, 0, failure.UndecodableImage},
	}
	for _, tt := range tests {
		p, err := doc.PDFPage(1, tt.wPt, tt.hPt, tt.dpi, tt.maxPixels, false)
		if tt.wantErr != "" {
			if failure.CodeOf(err) != tt.wantErr {
				t.Errorf("%gx%g: %v, want %s", tt.wPt, tt.hPt, err, tt.wantErr)
			}
			continue
		}
		if err != nil || p.DPI() != tt.wantDPI || p.Width() != tt.wantW || p.Pixels() > tt.maxPixels || max(p.Width(), p.Height()) > MaxSide {
			t.Errorf("%gx%g pt: %v, %dx%d at %d DPI, want %d wide at %d", tt.wPt, tt.hPt, err, p.Width(), p.Height(), p.DPI(), tt.wantW, tt.wantDPI)
		}
	}
}

func TestPageSelection(t *testing.T) {
	tests := []struct {
		spec     string
		count    int
		maxPages int
		want     []int
		err      error
	}{
		{"", 3, 100, []int{1, 2, 3}, nil},
		{"1-3,7", 10, 100, []int{1, 2, 3, 7}, nil},
		{"7, 1-2, 2", 10, 100, []int{1, 2, 7}, nil},
		{"5-", 7, 100, []int{5, 6, 7}, nil},
		{"2", 2, 100, []int{2}, nil},
		{"", 3000, 100, nil, ErrTooManyPages},
		{"1-100", 3000, 100, []int{}, nil},
		{"1-1000000000", 3000, 100, nil, ErrBadPages},
		{"1-200,150-250", 3000, 100, nil, ErrTooManyPages},
		{"0", 3, 100, nil, ErrBadPages},
		{"3-1", 3, 100, nil, ErrBadPages},
		{"a", 3, 100, nil, ErrBadPages},
		{"1,,2", 3, 100, nil, ErrBadPages},
		{"-2", 3, 100, nil, ErrBadPages},
		{"4", 3, 100, nil, ErrBadPages},
	}
	for _, tt := range tests {
		sel, err := ParsePages(tt.spec)
		var got []int
		if err == nil {
			got, err = sel.Resolve(tt.count, tt.maxPages)
		}
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%q of %d: %v, want %v", tt.spec, tt.count, err, tt.err)
			}
			continue
		}
		if err != nil || (len(tt.want) > 0 && !slices.Equal(got, tt.want)) {
			t.Errorf("%q of %d: %v %v, want %v", tt.spec, tt.count, got, err, tt.want)
		}
	}
}

// FuzzOpen reads arbitrary bytes as a document and every page of it: no panic, every error
// coded, and every page it accepts within the limits.
func FuzzOpen(f *testing.F) {
	f.Add(testTIFF(f, 2))
	f.Add(testdocs.TIFFLoop())
	f.Add(testdocs.TIFFClaiming(100000, 10))
	f.Add(testdocs.TIFFUnreadablePage2(image.NewGray(image.Rect(0, 0, 8, 8))))
	f.Add(testdocs.TIFFPages(5))
	f.Add([]byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x00\x00\x03\x00\x00\x00\x01\x00\x10\x00\x00\x00\x00\x00\x00"))
	f.Add(testdocs.BlankPDF(1, 612, 792))
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxPixels = 1 << 24
		doc, err := Open(b, maxPixels)
		if err != nil {
			if failure.CodeOf(err) == failure.Internal {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		for n := 1; n <= min(doc.PageCount(), 50); n++ {
			p, err := doc.Page(n, maxPixels)
			if err != nil {
				if failure.CodeOf(err) == failure.Internal {
					t.Fatalf("page %d: uncoded error %v", n, err)
				}
				continue
			}
			if !p.Valid() || p.Pixels() > maxPixels || p.Width() > MaxSide || p.Height() > MaxSide {
				t.Fatalf("page %d accepted at %dx%d", n, p.Width(), p.Height())
			}
		}
	})
}

// FuzzParsePages: any selection either fails with invalid_pages or too_many_pages, or resolves
// to pages in order, each once, within the document and the limit.
func FuzzParsePages(f *testing.F) {
	for _, s := range []string{"", "1-3,7", "5-", "0", "3-1", "1-1000000000", "1,1,1", " 2 , 4-6 "} {
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, spec string, count int) {
		count = count%5000 + 1
		if count < 1 {
			count = -count + 1
		}
		sel, err := ParsePages(spec)
		if err != nil {
			if !errors.Is(err, ErrBadPages) {
				t.Fatalf("%q: %v", spec, err)
			}
			return
		}
		pages, err := sel.Resolve(count, 100)
		if err != nil {
			if !errors.Is(err, ErrBadPages) && !errors.Is(err, ErrTooManyPages) {
				t.Fatalf("%q of %d: %v", spec, count, err)
			}
			return
		}
		if len(pages) > 100 || !slices.IsSorted(pages) || len(slices.Compact(slices.Clone(pages))) != len(pages) {
			t.Fatalf("%q of %d: %v", spec, count, pages)
		}
		for _, p := range pages {
			if p < 1 || p > count {
				t.Fatalf("%q of %d: page %d", spec, count, p)
			}
		}
	})
}
