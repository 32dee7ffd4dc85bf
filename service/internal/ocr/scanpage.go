package ocr

import (
	"bytes"
	"encoding/binary"
	"math"
	"regexp"
	"strconv"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/readocr/readocr/service/internal/textlayer"
)

// A page that is one bilevel CCITT G4 image drawn over the whole page, at the resolution the
// page is read at, is what office scanners and fax software write. Its pixels are the image's:
// rendering the page in PDFium (WebAssembly) and making the rendering bilevel again gives them
// back at the cost of a render. scanImage finds such a page and hands its G4 data, in a TIFF,
// to Leptonica (libtiff's decoder), which reads it natively. Anything else, or any doubt, is
// rendered.

// scanContent is the content stream of such a page: the image, scaled and placed.
var scanContent = regexp.MustCompile(`^\s*q\s+([\d.]+)\s+0\s+0\s+([\d.]+)\s+([\d.-]+)\s+([\d.-]+)\s+cm\s+/([^\s/()<>\[\]{}%]+)\s+Do\s+Q\s*$`)

// maxScanContent bounds the content stream scanImage decodes: a scan's is a few dozen bytes.
const maxScanContent = 512

// scanImage returns page j.Page of the kept PDF as a one-page G4 TIFF at j.DPI, when the page
// is such a scan.
func (w *worker) scanImage(j job) ([]byte, bool) {
	ctx, img, ok := w.fullPageImage(j)
	if !ok {
		return nil, false
	}
	return g4TIFF(ctx, img, j)
}

// jpegImage returns the JPEG of page j.Page of the kept PDF, when the page is one JPEG (8-bit
// RGB or gray) drawn over the whole page at j.DPI, as colour scanners write it: Leptonica's
// libjpeg decodes it natively where PDFium (WebAssembly) would decode it and render it, and
// colour reports whether it is RGB (made gray before Tesseract reads it: worker_pdf.go).
func (w *worker) jpegImage(j job) (data []byte, colour, ok bool) {
	_, img, ok := w.fullPageImage(j)
	if !ok {
		return nil, false, false
	}
	d := img.Dict
	if f, _ := d["Filter"].(types.Name); f != "DCTDecode" || d.IntEntry("BitsPerComponent") == nil || *d.IntEntry("BitsPerComponent") != 8 {
		return nil, false, false
	}
	for _, k := range []string{"ImageMask", "Mask", "SMask", "Decode", "DecodeParms", "Intent", "Alternates"} {
		if _, ok := d[k]; ok {
			return nil, false, false
		}
	}
	cs, _ := d["ColorSpace"].(types.Name)
	if cs != "DeviceRGB" && cs != "DeviceGray" {
		return nil, false, false
	}
	width, height := d.IntEntry("Width"), d.IntEntry("Height")
	if width == nil || height == nil || abs(*width-j.Width) > 1 || abs(*height-j.Height) > 1 {
		return nil, false, false
	}
	return img.Raw, cs == "DeviceRGB", true
}

// fullPageImage is the image XObject page j.Page draws, alone, over its whole media box (no
// crop box, rotation or user unit), as scanners write pages.
func (w *worker) fullPageImage(j job) (*model.Context, *types.StreamDict, bool) {
	ctx := w.doc.parsed()
	if ctx == nil {
		return nil, nil, false
	}
	page, _, inh, err := ctx.PageDict(j.Page+1, false)
	if err != nil || page == nil || inh == nil || inh.MediaBox == nil || inh.Rotate%360 != 0 {
		return nil, nil, false
	}
	if _, ok := page["UserUnit"]; ok {
		return nil, nil, false
	}
	content, ok := smallContent(ctx, page)
	if !ok {
		return nil, nil, false
	}
	m := scanContent.FindSubmatch(content)
	if m == nil {
		return nil, nil, false
	}
	var at [4]float64
	for i := range at {
		at[i], _ = strconv.ParseFloat(string(m[i+1]), 64)
	}
	box := inh.MediaBox
	if c := inh.CropBox; c != nil && *c != *box {
		return nil, nil, false
	}
	if !near(at[0], box.Width()) || !near(at[1], box.Height()) || !near(at[2], box.LL.X) || !near(at[3], box.LL.Y) {
		return nil, nil, false
	}
	res, err := ctx.DereferenceDict(inh.Resources["XObject"])
	if err != nil || res == nil {
		return nil, nil, false
	}
	img, _, err := ctx.DereferenceStreamDict(res[string(m[5])])
	if err != nil || img == nil {
		return nil, nil, false
	}
	return ctx, img, true
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.5 }

// smallContent is the page's content stream, when it is one small stream.
func smallContent(ctx *model.Context, page types.Dict) ([]byte, bool) {
	o := page["Contents"]
	if a, isArray := o.(types.Array); isArray && len(a) == 1 {
		o = a[0]
	}
	sd, _, err := ctx.DereferenceStreamDict(o)
	if err != nil || sd == nil || len(sd.Raw) > maxScanContent {
		return nil, false
	}
	b, err := sd.DecodeLengthWithLimit(-1, maxScanContent)
	return b, err == nil
}

// g4TIFF wraps a G4 image XObject's data in a TIFF, when the image is exactly what a scanner
// writes: 1 bit, CCITT G4 alone, 0 is black, no decode array, no mask, j.Width x j.Height.
func g4TIFF(ctx *model.Context, img *types.StreamDict, j job) ([]byte, bool) {
	d := img.Dict
	name := func(k string) string {
		n, _ := d[k].(types.Name)
		return string(n)
	}
	integer := func(dict types.Dict, k string, def int) int {
		if v, ok := dict[k].(types.Integer); ok {
			return int(v)
		}
		return def
	}
	if name("Subtype") != "Image" || name("Filter") != "CCITTFaxDecode" || integer(d, "BitsPerComponent", 0) != 1 {
		return nil, false
	}
	for _, k := range []string{"ImageMask", "Mask", "SMask", "Decode", "Intent"} {
		if _, ok := d[k]; ok {
			return nil, false
		}
	}
	if cs := name("ColorSpace"); cs != "DeviceGray" {
		return nil, false
	}
	width, height := integer(d, "Width", 0), integer(d, "Height", 0)
	if abs(width-j.Width) > 1 || abs(height-j.Height) > 1 || width <= 0 || height <= 0 { // the render size rounds up
		return nil, false
	}
	parms, err := ctx.DereferenceDict(d["DecodeParms"])
	if err != nil || parms == nil {
		return nil, false
	}
	if integer(parms, "K", 0) >= 0 || integer(parms, "Columns", 1728) != width || integer(parms, "Rows", height) != height {
		return nil, false
	}
	for _, k := range []string{"BlackIs1", "EncodedByteAlign"} {
		if b, ok := parms[k].(types.Boolean); ok && bool(b) {
			return nil, false
		}
	}
	return tiffG4(img.Raw, width, height, j.DPI), true
}

// tiffG4 is a one-page TIFF holding G4 data of width x height at dpi. CCITT codes runs of white
// and of black, which decoders paint so whatever the photometric tag (WhiteIsZero, the fax
// convention, here); a PDF's /BlackIs1 true would invert them, and g4TIFF refuses it.
func tiffG4(data []byte, width, height, dpi int) []byte {
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString("II*\x00")
	header := 8
	binary.Write(&b, le, uint32(header+len(data)+len(data)%2))
	b.Write(data)
	if len(data)%2 == 1 {
		b.WriteByte(0)
	}
	type entry struct {
		tag, typ     uint16
		count, value uint32
	}
	entries := []entry{
		{256, 4, 1, uint32(width)}, {257, 4, 1, uint32(height)}, {258, 3, 1, 1},
		{259, 3, 1, 4}, // CCITT Group 4
		{262, 3, 1, 0}, // WhiteIsZero
		{273, 4, 1, uint32(header)}, {277, 3, 1, 1}, {278, 4, 1, uint32(height)}, {279, 4, 1, uint32(len(data))},
		{282, 5, 1, 0}, {283, 5, 1, 0}, // resolutions: patched below
		{296, 3, 1, 2}, // inches
	}
	resAt := b.Len() + 2 + 12*len(entries) + 4
	entries[9].value, entries[10].value = uint32(resAt), uint32(resAt+8)
	binary.Write(&b, le, uint16(len(entries)))
	for _, e := range entries {
		binary.Write(&b, le, e)
	}
	binary.Write(&b, le, uint32(0)) // no next page
	for range 2 {
		binary.Write(&b, le, uint32(dpi))
		binary.Write(&b, le, uint32(1))
	}
	return b.Bytes()
}

// parsed is the kept PDF read by pdfcpu (nil when pdfcpu cannot read it), read once.
func (h *heldDocument) parsed() *model.Context {
	if !h.parseTried {
		h.parseTried = true
		h.pdfcpu, _ = textlayer.Read(h.data)
	}
	return h.pdfcpu
}
