package imageinput

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/readocr/readocr/service/internal/failure"
)

// PDF is the format of a PDF document: its pages are rendered to images by a worker.
const PDF = "pdf"

// Errors of documents.
var (
	ErrTooManyPages = failure.New(failure.TooManyPages, "the document has more pages than the limit")
	ErrBadPages     = failure.New(failure.InvalidPages, "invalid pages")
)

// Document is an input of one or more pages: an image (one page), a TIFF (every page) or a PDF.
// Open makes one from checked headers; its pages are made, and checked, one at a time (Page,
// PDFPage), so that the size of every page that reaches a decoder was checked first.
type Document struct {
	data   []byte
	format string
	id     uint64    // tells workers that keep a document between its pages which one it is
	single Page      // an image other than TIFF
	tiff   []tiffIFD // a TIFF's pages
}

var lastDocumentID atomic.Uint64

// Open sniffs b and reads what its headers say about its pages, without decoding any. A PDF's
// pages are counted by a worker (it must be parsed); other formats are counted here.
func Open(b []byte, maxPixels int64) (Document, error) {
	format, err := Sniff(b)
	if err != nil {
		return Document{}, err
	}
	d := Document{data: b, format: format, id: lastDocumentID.Add(1)}
	switch format {
	case PDF:
	case TIFF:
		if d.tiff, err = tiffPages(b); err != nil {
			return Document{}, failure.Detail(ErrUndecodable, "tiff: %v", err)
		}
	default:
		if d.single, err = Check(b, maxPixels); err != nil {
			return Document{}, err
		}
		d.single.number = 1
	}
	return d, nil
}

// Valid reports whether d was made by Open.
func (d Document) Valid() bool { return d.id != 0 }

// Format is the sniffed format.
func (d Document) Format() string { return d.format }

// Data is the document's bytes.
func (d Document) Data() []byte { return d.data }

// ID is unique to this document in this process.
func (d Document) ID() uint64 { return d.id }

// PageCount is the number of pages of an image or TIFF (0 for a PDF: a worker counts them).
func (d Document) PageCount() int {
	switch {
	case d.format == PDF:
		return 0
	case d.tiff != nil:
		return len(d.tiff)
	}
	return 1
}

// Page returns page number n (from 1) of an image or TIFF, checked against maxPixels.
func (d Document) Page(n int, maxPixels int64) (Page, error) {
	if d.format == PDF || n < 1 || n > d.PageCount() {
		return Page{}, fmt.Errorf("page %d of a %s of %d pages", n, d.format, d.PageCount())
	}
	if d.tiff == nil {
		return d.single, nil
	}
	ifd := d.tiff[n-1]
	if ifd.err != nil {
		return Page{}, failure.Detail(ErrUndecodable, "page %d: %v", n, ifd.err)
	}
	if err := checkSize(ifd.width, ifd.height, maxPixels); err != nil {
		return Page{}, failure.New(failure.ImageTooLarge, "page %d: %s", n, failure.MessageOf(err))
	}
	p := Page{data: d.data, format: TIFF, width: ifd.width, height: ifd.height, gray: ifd.gray,
		number: n, doc: d.id}
	if len(d.tiff) > 1 {
		p.tiffOffset = ifd.offset // read with pixReadMemFromMultipageTiff
	}
	return p, nil
}

// PDF pages are rendered at DefaultDPI unless the page would be larger than the pixel limit;
// then at the highest resolution that fits, down to MinDPI. A page that does not fit even at
// MinDPI (a poster of 200 x 200 inches at 40 megapixels would need 31 DPI) is refused: text
// rendered that small cannot be read, and a useless page should not cost seconds of OCR.
const (
	DefaultDPI = 300
	MinDPI     = 70 // Tesseract's own floor: below it, it assumes the resolution is missing
)

// PDFPage returns page n (from 1) of a PDF whose size a worker measured, widthPt x heightPt
// points (1/72 inch), at the resolution it will be rendered at: dpi (0: DefaultDPI), lowered to
// fit maxPixels. Colour pages are rendered in colour (for searchable PDFs); others in gray.
func (d Document) PDFPage(n int, widthPt, heightPt float64, dpi int, maxPixels int64, colour bool) (Page, error) {
	if d.format != PDF {
		return Page{}, fmt.Errorf("not a PDF")
	}
	if dpi <= 0 {
		dpi = DefaultDPI
	}
	if !(widthPt > 0 && heightPt > 0) || widthPt > 1e6 || heightPt > 1e6 {
		return Page{}, failure.Detail(ErrUndecodable, "page %d: its size is %gx%g points", n, widthPt, heightPt)
	}
	in2 := widthPt / 72 * heightPt / 72
	fit := int(math.Sqrt(float64(maxPixels) / in2))
	fit = min(fit, int(MaxSide*72/max(widthPt, heightPt)))
	if fit < dpi {
		dpi = fit
	}
	w, h := pixelsAt(widthPt, dpi), pixelsAt(heightPt, dpi)
	for dpi >= MinDPI && (int64(w)*int64(h) > maxPixels || max(w, h) > MaxSide) { // rounded up past the limit
		dpi--
		w, h = pixelsAt(widthPt, dpi), pixelsAt(heightPt, dpi)
	}
	if dpi < MinDPI || w < 1 || h < 1 {
		return Page{}, failure.Detail(ErrTooLarge, "page %d: %.0f x %.0f inches would be rendered at %d DPI to fit %.1f megapixels; pages need at least %d DPI",
			n, widthPt/72, heightPt/72, dpi, float64(maxPixels)/1e6, MinDPI)
	}
	return Page{data: d.data, format: PDF, width: w, height: h, gray: !colour, number: n, doc: d.id, dpi: dpi}, nil
}

// pixelsAt is how many pixels pt points are at dpi, rounded up as go-pdfium does.
func pixelsAt(pt float64, dpi int) int { return int(math.Ceil(pt * float64(dpi) / 72)) }

func checkSize(w, h int, maxPixels int64) error {
	if w > MaxSide || h > MaxSide || int64(w)*int64(h) > maxPixels {
		return failure.Detail(ErrTooLarge, "%dx%d is %.1f megapixels, the limit is %.1f megapixels and %d pixels a side",
			w, h, float64(w)*float64(h)/1e6, float64(maxPixels)/1e6, MaxSide)
	}
	return nil
}

// Selection is a set of page numbers as a client wrote them: "1-3,7", "5-" (5 to the end).
// The zero Selection is every page.
type Selection struct {
	ranges [][2]int // inclusive; 0 as the end: the last page
}

// maxRanges bounds how many ranges one selection may list.
const maxRanges = 1000

// ParsePages reads a page selection; "" selects every page.
func ParsePages(s string) (Selection, error) {
	var sel Selection
	if strings.TrimSpace(s) == "" {
		return sel, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxRanges {
		return sel, failure.Detail(ErrBadPages, "pages lists %d ranges, at most %d", len(parts), maxRanges)
	}
	for _, part := range parts {
		part = strings.TrimSpace(part)
		first, last, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || a < 1 {
			return sel, failure.Detail(ErrBadPages, "pages %q: %q is not a page number (pages count from 1; write e.g. \"1-3,7\" or \"5-\")", s, part)
		}
		b := a
		if isRange {
			if last = strings.TrimSpace(last); last == "" {
				b = 0
			} else if b, err = strconv.Atoi(last); err != nil || b < a {
				return sel, failure.Detail(ErrBadPages, "pages %q: %q is not a range of pages", s, part)
			}
		}
		sel.ranges = append(sel.ranges, [2]int{a, b})
	}
	return sel, nil
}

// Resolve returns the selected pages of a document of count pages, in order, each once. A page
// past the end is an error, so that a typo does not silently return less; so is selecting more
// than maxPages (0: no limit), found from the ranges before any page is listed.
func (sel Selection) Resolve(count, maxPages int) ([]int, error) {
	ranges := sel.ranges
	if len(ranges) == 0 {
		ranges = [][2]int{{1, count}}
	}
	merged := make([][2]int, 0, len(ranges))
	for _, r := range ranges {
		if r[1] == 0 {
			r[1] = count
		}
		if r[0] > count || r[1] > count {
			return nil, failure.Detail(ErrBadPages, "page %d is past the end: the document has %d pages", max(r[0], r[1]), count)
		}
		merged = append(merged, r)
	}
	slices.SortFunc(merged, func(a, b [2]int) int { return a[0] - b[0] })
	selected, out := 0, merged[:0]
	for _, r := range merged {
		if n := len(out); n > 0 && r[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	for _, r := range out {
		selected += r[1] - r[0] + 1
	}
	if maxPages > 0 && selected > maxPages {
		if selected == count {
			return nil, failure.Detail(ErrTooManyPages, "the document has %d pages, the limit is %d a request (select some with pages, e.g. \"1-%d\")",
				count, maxPages, maxPages)
		}
		return nil, failure.Detail(ErrTooManyPages, "%d pages are selected, the limit is %d a request", selected, maxPages)
	}
	pages := make([]int, 0, selected)
	for _, r := range out {
		for p := r[0]; p <= r[1]; p++ {
			pages = append(pages, p)
		}
	}
	return pages, nil
}
