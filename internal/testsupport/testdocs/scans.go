package testdocs

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"strings"
	"sync"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// The scanned documents of the searchable-PDF tests and of make bench: Letter pages at 300 DPI
// (2550 x 3300 pixels) made of the test images phototest.tif and eurotext.tif (both bilevel
// scans, testdata's licences), six to a page in an order that changes from page to page.
const (
	ScanDPI              = 300
	letterW, letterH     = 2550, 3300
	letterWPt, letterHPt = 612.0, 792.0
)

var scanParts = sync.OnceValues(func() ([2]*image.Gray, error) {
	var out [2]*image.Gray
	for i, name := range []string{"phototest.tif", "eurotext.tif"} {
		img, err := Decode(testimages.Must(name).Bytes)
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out[i] = Gray(img)
	}
	return out, nil
})

// ScanPage is page i (from 0) of a scanned document: 8-bit gray, black text on white.
func ScanPage(i int) (*image.Gray, error) {
	parts, err := scanParts()
	if err != nil {
		return nil, err
	}
	page := image.NewGray(image.Rect(0, 0, letterW, letterH))
	draw.Draw(page, page.Rect, image.White, image.Point{}, draw.Src)
	for k := range 6 {
		part := parts[(i+k)%2]
		at := image.Pt(250+(k%2)*1150, 250+(k/2)*1000)
		draw.Draw(page, part.Rect.Sub(part.Rect.Min).Add(at), part, part.Rect.Min, draw.Src)
	}
	return page, nil
}

// Colourise turns a gray scan into what a colour scanner gives for a printed page: tinted
// paper, dark blue ink, a yellow highlighter band and a red stamp.
func Colourise(g *image.Gray, i int) *image.RGBA {
	paper, ink := color.RGBA{250, 244, 228, 255}, color.RGBA{25, 35, 110, 255}
	out := image.NewRGBA(g.Rect)
	for y := range g.Rect.Dy() {
		for x := range g.Rect.Dx() {
			v := int(g.Pix[y*g.Stride+x])
			// Ink where the scan is dark, paper where it is light, blended between.
			out.Pix[y*out.Stride+4*x+0] = uint8((int(ink.R)*(255-v) + int(paper.R)*v) / 255)
			out.Pix[y*out.Stride+4*x+1] = uint8((int(ink.G)*(255-v) + int(paper.G)*v) / 255)
			out.Pix[y*out.Stride+4*x+2] = uint8((int(ink.B)*(255-v) + int(paper.B)*v) / 255)
			out.Pix[y*out.Stride+4*x+3] = 255
		}
	}
	band := image.Rect(240, 240+(i%3)*1000, 1300, 300+(i%3)*1000)
	draw.DrawMask(out, band, image.NewUniform(color.RGBA{255, 230, 0, 255}), image.Point{}, image.NewUniform(color.Alpha{90}), image.Point{}, draw.Over)
	stamp := image.Rect(1900, 3050, 2400, 3200)
	for _, r := range []image.Rectangle{{stamp.Min, image.Pt(stamp.Max.X, stamp.Min.Y+12)}, {image.Pt(stamp.Min.X, stamp.Max.Y-12), stamp.Max},
		{stamp.Min, image.Pt(stamp.Min.X+12, stamp.Max.Y)}, {image.Pt(stamp.Max.X-12, stamp.Min.Y), stamp.Max}} {
		draw.Draw(out, r, image.NewUniform(color.RGBA{200, 30, 30, 255}), image.Point{}, draw.Src)
	}
	return out
}

// BilevelScanPDF is an n-page scan as office scanners write it: each page one bilevel image,
// CCITT Group 4, drawn over its Letter page.
func BilevelScanPDF(n int) ([]byte, error) { return TitledBilevelScanPDF(n, "") }

// TitledBilevelScanPDF is BilevelScanPDF with a document information dictionary: its title,
// and a producer.
func TitledBilevelScanPDF(n int, title string) ([]byte, error) {
	d := &doc{title: title}
	for i := range n {
		g, err := ScanPage(i)
		if err != nil {
			return nil, err
		}
		im, err := d.g4Image(g)
		if err != nil {
			return nil, err
		}
		d.pages = append(d.pages, docPage{media: letter, images: []int{im}, content: fullPage(letterWPt, letterHPt)})
	}
	return d.bytes(), nil
}

// ColourScanPDF is an n-page colour scan: each page one RGB JPEG (quality 75).
func ColourScanPDF(n int) ([]byte, error) {
	d := &doc{}
	for i := range n {
		g, err := ScanPage(i)
		if err != nil {
			return nil, err
		}
		var j bytes.Buffer
		if err := jpeg.Encode(&j, Colourise(g, i), &jpeg.Options{Quality: 75}); err != nil {
			return nil, err
		}
		im := d.w.addStream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode",
			g.Rect.Dx(), g.Rect.Dy()), j.Bytes(), false)
		d.pages = append(d.pages, docPage{media: letter, images: []int{im}, content: fullPage(letterWPt, letterHPt)})
	}
	return d.bytes(), nil
}

// JPEGPagePDF is a one-page Letter PDF whose page is img as a JPEG of quality q (gray for an
// *image.Gray, RGB otherwise) drawn over it (img is 2550x3300 for 300 DPI).
func JPEGPagePDF(img image.Image, q int) ([]byte, error) {
	d := &doc{}
	var j bytes.Buffer
	if err := jpeg.Encode(&j, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, err
	}
	b := img.Bounds()
	cs := "DeviceRGB"
	if _, gray := img.(*image.Gray); gray {
		cs = "DeviceGray" // image/jpeg writes a gray image with one component
	}
	im := d.w.addStream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /%s /BitsPerComponent 8 /Filter /DCTDecode",
		b.Dx(), b.Dy(), cs), j.Bytes(), false)
	d.pages = append(d.pages, docPage{media: letter, images: []int{im}, content: fullPage(letterWPt, letterHPt)})
	return d.bytes(), nil
}

// MixedReportPDF is n pages that alternate between born-digital pages (real text in Helvetica, a
// ruled line, a link, a bookmark each) and bilevel scans, with a title in its metadata: what a
// report with scanned appendices looks like.
func MixedReportPDF(n int) ([]byte, error) {
	d := &doc{title: "readocr mixed test document"}
	for i := range n {
		if i%2 == 0 {
			d.pages = append(d.pages, bornDigital(i))
			continue
		}
		g, err := ScanPage(i)
		if err != nil {
			return nil, err
		}
		im, err := d.g4Image(g)
		if err != nil {
			return nil, err
		}
		d.pages = append(d.pages, docPage{media: letter, images: []int{im}, content: fullPage(letterWPt, letterHPt)})
	}
	return d.bytes(), nil
}

// BornDigitalLines are the lines of text of a born-digital page of MixedReportPDF.
func BornDigitalLines(i int) []string {
	return []string{
		fmt.Sprintf("Report page %d: born-digital text that must stay as it is.", i+1),
		"This is a lot of 12 point text to test the",
		"ocr code and see if it works on all types",
		"of file format.",
		"The quick brown dog jumped over the",
		"lazy fox. The quick brown dog jumped",
		"over the lazy fox.",
	}
}

func bornDigital(i int) docPage {
	var c strings.Builder
	c.WriteString("BT /F1 12 Tf 72 720 Td 14 TL\n")
	for _, l := range BornDigitalLines(i) {
		fmt.Fprintf(&c, "(%s) '\n", pdfEscape(l))
	}
	c.WriteString("ET\n0.2 0.2 0.6 RG 2 w 72 600 m 540 600 l S\n")
	return docPage{media: letter, content: c.String(), font: true, bookmark: fmt.Sprintf("Page %d", i+1),
		annots: []string{"<< /Type /Annot /Subtype /Link /Rect [72 560 300 580] /Border [0 0 0] /A << /S /URI /URI (https://example.com/) >> >>"}}
}

func pdfEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`).Replace(s)
}

var letter = [4]float64{0, 0, letterWPt, letterHPt}

func fullPage(w, h float64) string { return fmt.Sprintf("q %g 0 0 %g 0 0 cm /Im0 Do Q", w, h) }

// doc is a PDF being written: its pages, a title, bookmarks.
type doc struct {
	w     pdfWriter
	pages []docPage
	title string
}

// docPage is one page: its boxes, /Rotate and /UserUnit, content, the images it draws (as
// /Im0, /Im1, ...), whether it uses /F1 (Helvetica), its annotations and its bookmark.
type docPage struct {
	media    [4]float64
	crop     *[4]float64
	rotate   int
	userUnit float64
	content  string
	images   []int
	font     bool
	annots   []string
	bookmark string
}

func (d *doc) g4Image(g *image.Gray) (int, error) {
	data, blackIs1, err := G4(g)
	if err != nil {
		return 0, err
	}
	return d.w.addStream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 "+
		"/Filter /CCITTFaxDecode /DecodeParms << /K -1 /Columns %d /Rows %d /BlackIs1 %t >>",
		g.Rect.Dx(), g.Rect.Dy(), g.Rect.Dx(), g.Rect.Dy(), blackIs1), data, false), nil
}

func box(b [4]float64) string { return fmt.Sprintf("[%g %g %g %g]", b[0], b[1], b[2], b[3]) }

func (d *doc) bytes() []byte {
	w := &d.w
	catalog, pagesObj := w.add(""), w.add("")
	font := w.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	kids := make([]int, len(d.pages))
	var marks []int
	for i, p := range d.pages {
		res := "<< "
		if p.font {
			res += fmt.Sprintf("/Font << /F1 %d 0 R >> ", font)
		}
		if len(p.images) > 0 {
			res += "/XObject << "
			for k, im := range p.images {
				res += fmt.Sprintf("/Im%d %d 0 R ", k, im)
			}
			res += ">> "
		}
		res += ">>"
		content := w.addStream("", []byte(p.content), true)
		extra := ""
		if p.crop != nil {
			extra += " /CropBox " + box(*p.crop)
		}
		if p.rotate != 0 {
			extra += fmt.Sprintf(" /Rotate %d", p.rotate)
		}
		if p.userUnit != 0 {
			extra += fmt.Sprintf(" /UserUnit %g", p.userUnit)
		}
		if len(p.annots) > 0 {
			extra += " /Annots [" + strings.Join(p.annots, " ") + "]"
		}
		kids[i] = w.add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox %s /Resources %s /Contents %d 0 R%s >>",
			pagesObj, box(p.media), res, content, extra))
		if p.bookmark != "" {
			marks = append(marks, i)
		}
	}
	cat := fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R", pagesObj)
	if len(marks) > 0 {
		outlines := w.add("")
		first := len(w.objs) + 1
		for k, i := range marks {
			item := fmt.Sprintf("<< /Title (%s) /Parent %d 0 R /Dest [%d 0 R /Fit]", pdfEscape(d.pages[i].bookmark), outlines, kids[i])
			if k > 0 {
				item += fmt.Sprintf(" /Prev %d 0 R", first+k-1)
			}
			if k < len(marks)-1 {
				item += fmt.Sprintf(" /Next %d 0 R", first+k+1)
			}
			w.add(item + " >>")
		}
		w.objs[outlines-1] = []byte(fmt.Sprintf("<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>", first, first+len(marks)-1, len(marks)))
		cat += fmt.Sprintf(" /Outlines %d 0 R /PageMode /UseOutlines", outlines)
	}
	w.objs[catalog-1] = []byte(cat + " >>")
	refs := make([]string, len(kids))
	for i, k := range kids {
		refs[i] = fmt.Sprintf("%d 0 R", k)
	}
	w.objs[pagesObj-1] = []byte(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(refs, " "), len(kids)))
	info := 0
	if d.title != "" {
		info = w.add(fmt.Sprintf("<< /Title (%s) /Producer (readocr testdocs) >>", pdfEscape(d.title)))
	}
	return w.bytesInfo(catalog, info)
}
