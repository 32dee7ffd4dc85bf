package output

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/readocr/readocr/service/internal/textlayer"
)

// imagePDF writes the searchable PDF of images (an image, a TIFF's pages): each page's image
// as it came, a JPEG's own bytes (Page.JPEG) or the pixels losslessly encoded in the worker
// (Result.Image: bilevel as CCITT G4, others as Flate), on a page the size Tesseract gave its
// text layer, with the layer laid over it (textlayer). Nothing is re-encoded lossily.
func imagePDF(w io.Writer, pages []Page) error {
	if len(pages) == 0 {
		return errors.New("no pages")
	}
	var d pdfObjects
	catalog, tree := d.add(""), d.add("")
	kids := ""
	layers := make([]textlayer.Layer, len(pages))
	for i, p := range pages {
		lw, lh, err := textlayer.PageSize(p.Result.PDF)
		if err != nil {
			return fmt.Errorf("page %d's text layer: %w", p.Number, err)
		}
		im, err := d.image(p)
		if err != nil {
			return fmt.Errorf("page %d: %w", p.Number, err)
		}
		content := d.stream("", []byte(fmt.Sprintf("q %s 0 0 %s 0 0 cm /Im0 Do Q", num(lw), num(lh))))
		kids += fmt.Sprintf("%d 0 R ", d.add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>",
			tree, num(lw), num(lh), im, content)))
		layers[i] = textlayer.Layer{Page: i, PDF: p.Result.PDF}
	}
	d.set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", tree))
	d.set(tree, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, len(pages)))
	out, err := textlayer.Add(d.bytes(catalog), layers)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// image adds page p's image XObject.
func (d *pdfObjects) image(p Page) (int, error) {
	if p.JPEG != nil {
		space := "/DeviceRGB"
		if p.JPEGComponents == 1 {
			space = "/DeviceGray"
		}
		return d.stream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent 8 /Filter /DCTDecode",
			p.Width, p.Height, space), p.JPEG), nil
	}
	img := p.Result.Image
	if img == nil {
		return 0, errors.New("no image")
	}
	dict := fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /BitsPerComponent %d", img.Width, img.Height, img.BitsPerComponent)
	switch {
	case img.G4:
		dict += fmt.Sprintf(" /ColorSpace /DeviceGray /Filter /CCITTFaxDecode /DecodeParms << /K -1 /Columns %d /Rows %d /BlackIs1 %t >>",
			img.Width, img.Height, img.BlackIs1)
	case img.SamplesPerPixel == 1 || img.SamplesPerPixel == 3:
		space := map[int]string{1: "/DeviceGray", 3: "/DeviceRGB"}[img.SamplesPerPixel]
		dict += " /ColorSpace " + space + " /Filter /FlateDecode"
		if img.PNGPredictors {
			dict += fmt.Sprintf(" /DecodeParms << /Predictor 15 /Colors %d /BitsPerComponent %d /Columns %d >>", img.SamplesPerPixel, img.BitsPerComponent, img.Width)
		}
	default:
		return 0, fmt.Errorf("an image of %d samples a pixel", img.SamplesPerPixel)
	}
	return d.stream(dict, img.Data), nil
}

func num(v float64) string { return fmt.Sprintf("%.4g", v) }

// pdfObjects is a PDF being written: its objects and cross-reference table.
type pdfObjects struct{ objs [][]byte }

func (d *pdfObjects) add(body string) int {
	d.objs = append(d.objs, []byte(body))
	return len(d.objs)
}

func (d *pdfObjects) set(n int, body string) { d.objs[n-1] = []byte(body) }

func (d *pdfObjects) stream(dict string, data []byte) int {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<< %s /Length %d >>\nstream\n", dict, len(data))
	b.Write(data)
	b.WriteString("\nendstream")
	d.objs = append(d.objs, b.Bytes())
	return len(d.objs)
}

func (d *pdfObjects) bytes(root int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(d.objs))
	for i, o := range d.objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n", i+1)
		b.Write(o)
		b.WriteString("\nendobj\n")
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(d.objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(d.objs)+1, root, xref)
	return b.Bytes()
}
