package testdocs

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

func init() { api.DisableConfigDir() }

// pdfWriter lays out a PDF's objects and its cross-reference table.
type pdfWriter struct {
	objs [][]byte // object i+1
}

func (w *pdfWriter) add(body string) int {
	w.objs = append(w.objs, []byte(body))
	return len(w.objs)
}

func (w *pdfWriter) addStream(dict string, data []byte, compress bool) int {
	if compress {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		data = z.Bytes()
		dict += " /Filter /FlateDecode"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<< %s /Length %d >>\nstream\n", dict, len(data))
	b.Write(data)
	b.WriteString("\nendstream")
	w.objs = append(w.objs, b.Bytes())
	return len(w.objs)
}

// bytes writes the file; the catalog is object root, pages are kids of object pages.
func (w *pdfWriter) bytes(root int) []byte { return w.bytesInfo(root, 0) }

// bytesInfo writes the file with object info (when not 0) as its document information.
func (w *pdfWriter) bytesInfo(root, info int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(w.objs))
	for i, o := range w.objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n", i+1)
		b.Write(o)
		b.WriteString("\nendobj\n")
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(w.objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	infoRef := ""
	if info != 0 {
		infoRef = fmt.Sprintf(" /Info %d 0 R", info)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n", len(w.objs)+1, root, infoRef, xref)
	return b.Bytes()
}

// page describes one page to write.
type page struct {
	wPt, hPt float64
	content  []byte // the content stream
	image    *image.Gray
	font     bool // the content uses /F1 (Helvetica)
	compress bool
}

func writePDF(pages []page) []byte {
	w := &pdfWriter{}
	catalog := w.add("") // filled in below
	pagesObj := w.add("")
	font := w.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	kids := make([]string, len(pages))
	for i, p := range pages {
		res := "<< "
		if p.font {
			res += fmt.Sprintf("/Font << /F1 %d 0 R >> ", font)
		}
		if p.image != nil {
			g := p.image
			pix := make([]byte, 0, g.Rect.Dx()*g.Rect.Dy())
			for y := range g.Rect.Dy() {
				pix = append(pix, g.Pix[y*g.Stride:y*g.Stride+g.Rect.Dx()]...)
			}
			img := w.addStream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8",
				g.Rect.Dx(), g.Rect.Dy()), pix, true)
			res += fmt.Sprintf("/XObject << /Im1 %d 0 R >> ", img)
		}
		res += ">>"
		content := w.addStream("", p.content, p.compress)
		kids[i] = fmt.Sprintf("%d 0 R", w.add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %g %g] /Resources %s /Contents %d 0 R >>",
			pagesObj, p.wPt, p.hPt, res, content)))
	}
	w.objs[catalog-1] = []byte(fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pagesObj))
	w.objs[pagesObj-1] = []byte(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages)))
	return w.bytes(catalog)
}

// ScannedPDF is a PDF whose pages are images only (as a scanner makes them), each drawn over
// its whole page at dpi.
func ScannedPDF(images []image.Image, dpi int) []byte {
	pages := make([]page, len(images))
	for i, img := range images {
		g := Gray(img)
		wPt, hPt := float64(g.Rect.Dx())*72/float64(dpi), float64(g.Rect.Dy())*72/float64(dpi)
		pages[i] = page{wPt: wPt, hPt: hPt, image: g,
			content: []byte(fmt.Sprintf("q %g 0 0 %g 0 0 cm /Im1 Do Q", wPt, hPt)), compress: true}
	}
	return writePDF(pages)
}

// TextPDF is a Letter-size PDF whose pages carry these lines as real text (Helvetica 12pt).
func TextPDF(pagesLines ...[]string) []byte {
	pages := make([]page, len(pagesLines))
	for i, lines := range pagesLines {
		var c strings.Builder
		c.WriteString("BT /F1 12 Tf 72 720 Td 14 TL\n")
		for _, l := range lines {
			fmt.Fprintf(&c, "(%s) '\n", strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`).Replace(l))
		}
		c.WriteString("ET")
		pages[i] = page{wPt: 612, hPt: 792, content: []byte(c.String()), font: true}
	}
	return writePDF(pages)
}

// MixedPDF is a Letter PDF whose first page carries lines as text and whose second is a scan
// of img at dpi.
func MixedPDF(lines []string, img image.Image, dpi int) []byte {
	var text, scan page
	{
		var c strings.Builder
		c.WriteString("BT /F1 12 Tf 72 720 Td 14 TL\n")
		for _, l := range lines {
			fmt.Fprintf(&c, "(%s) '\n", l)
		}
		c.WriteString("ET")
		text = page{wPt: 612, hPt: 792, content: []byte(c.String()), font: true}
	}
	g := Gray(img)
	wPt, hPt := float64(g.Rect.Dx())*72/float64(dpi), float64(g.Rect.Dy())*72/float64(dpi)
	scan = page{wPt: wPt, hPt: hPt, image: g, content: []byte(fmt.Sprintf("q %g 0 0 %g 0 0 cm /Im1 Do Q", wPt, hPt)), compress: true}
	return writePDF([]page{text, scan})
}

// MixedPagePDF is a one-page Letter PDF holding both: lines of real text (Helvetica 12pt) at
// the top, and a scan of img at dpi drawn below them, its top left corner at (72, 560)
// points from the page's bottom left.
func MixedPagePDF(lines []string, img image.Image, dpi int) []byte {
	var c strings.Builder
	c.WriteString("BT /F1 12 Tf 72 720 Td 14 TL\n")
	for _, l := range lines {
		fmt.Fprintf(&c, "(%s) '\n", pdfEscape(l))
	}
	g := Gray(img)
	wPt, hPt := float64(g.Rect.Dx())*72/float64(dpi), float64(g.Rect.Dy())*72/float64(dpi)
	fmt.Fprintf(&c, "ET\nq %g 0 0 %g 72 %g cm /Im1 Do Q", wPt, hPt, 560-hPt)
	return writePDF([]page{{wPt: 612, hPt: 792, content: []byte(c.String()), image: g, font: true, compress: true}})
}

// BlankPDF is a PDF of n blank pages of wPt x hPt points.
func BlankPDF(n int, wPt, hPt float64) []byte {
	pages := make([]page, n)
	for i := range pages {
		pages[i] = page{wPt: wPt, hPt: hPt}
	}
	return writePDF(pages)
}

// SlowPDF is a one-page Letter PDF that draws fanout^levels tiny rectangles through nested form
// XObjects, each drawing the one below fanout times: a PDF "billion laughs", a few kilobytes
// that take PDFium as long to render as the numbers say.
func SlowPDF(levels, fanout int) []byte {
	w := &pdfWriter{}
	catalog := w.add("")
	pagesObj := w.add("")
	var c bytes.Buffer
	for i := range fanout {
		fmt.Fprintf(&c, "%d %d 0.5 0.5 re f\n", i%600, i/600)
	}
	below := w.addStream("/Type /XObject /Subtype /Form /BBox [0 0 612 792]", c.Bytes(), true)
	for range levels - 1 {
		var c bytes.Buffer
		for range fanout {
			c.WriteString("/X Do\n")
		}
		below = w.addStream(fmt.Sprintf("/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /XObject << /X %d 0 R >> >>", below), c.Bytes(), true)
	}
	content := w.addStream("", []byte("/X Do"), false)
	pg := w.add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X %d 0 R >> >> /Contents %d 0 R >>",
		pagesObj, below, content))
	w.objs[catalog-1] = []byte(fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pagesObj))
	w.objs[pagesObj-1] = []byte(fmt.Sprintf("<< /Type /Pages /Kids [%d 0 R] /Count 1 >>", pg))
	return w.bytes(catalog)
}

// Encrypt encrypts pdf with AES-256 and a user password, with pdfcpu.
func Encrypt(pdf []byte, password string) ([]byte, error) {
	conf := model.NewAESConfiguration(password, password+"-owner", 256)
	var out bytes.Buffer
	if err := api.Encrypt(bytes.NewReader(pdf), &out, conf); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
