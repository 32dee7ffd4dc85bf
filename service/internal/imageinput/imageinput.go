// Package imageinput checks an uploaded image in Go before Tesseract sees it, and is the only
// maker of the Page the OCR engine accepts.
//
// Leptonica happily starts decoding anything: a 76 KB PNG can claim 400 megapixels, a GIF's
// frames can be far larger than its screen, a PDF or a text file comes back as "no pix", and a
// JPEG's EXIF orientation is ignored. Here the format is sniffed from the bytes (never from a
// name or Content-Type), the dimensions that decide the decoder's allocations are read from
// the headers alone, with parsers whose work is linear in the input, and capped.
package imageinput

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"

	"github.com/readocr/readocr/service/internal/failure"
)

// Errors, each mapped to one HTTP status by the API layer.
var (
	ErrEmpty       = failure.New(failure.InvalidImageField, "image is empty")
	ErrUnsupported = failure.New(failure.UnsupportedMediaType, "unsupported image format")
	ErrUndecodable = failure.New(failure.UndecodableImage, "image could not be decoded")
	ErrTooLarge    = failure.New(failure.ImageTooLarge, "image dimensions exceed the limit")
)

// MaxSide is the largest width or height Tesseract handles (its boxes use 16-bit coordinates).
const MaxSide = 32767

// Formats Leptonica reads and this package accepts.
const (
	PNG  = "png"
	JPEG = "jpeg"
	TIFF = "tiff"
	GIF  = "gif"
	WebP = "webp"
	BMP  = "bmp"
	PNM  = "pnm"
)

// Page is an image that passed every check: a known format, header dimensions within the
// caps, and the bytes Leptonica is to decode. Only Check makes one; the zero Page is invalid
// (Valid reports false) and the OCR engine refuses it.
type Page struct {
	data          []byte
	format        string
	width, height int // as Tesseract sees the page: after orientation
	orientation   int // EXIF orientation to apply after decoding (0 or 1: none)
	gray          bool
	number        int    // in its document, from 1
	doc           uint64 // its Document's ID (0 for a page made by Check)
	tiffOffset    uint64 // a page of a multi-page TIFF: where its IFD is
	dpi           int    // a PDF page: the resolution to render it at
	components    int    // a JPEG's colour components (1, 3, 4)
	colourContent bool   // a PDF page: it holds colour (images), which PDFium decodes to render it
}

// ColourContent reports whether a PDF page holds colour, colour images above all: rendering it,
// even in gray, PDFium decodes them in colour (ocr.PageCost counts it).
func (p Page) ColourContent() bool { return p.colourContent }

// WithColourContent is p (a PDF page) marked as holding colour or not, as a worker found it.
func (p Page) WithColourContent(c bool) Page {
	p.colourContent = c
	return p
}

// Valid reports whether p was made by Check.
func (p Page) Valid() bool { return len(p.data) > 0 && p.width > 0 && p.height > 0 }

// Data is what Leptonica decodes.
func (p Page) Data() []byte { return p.data }

// Format is the sniffed format of the input.
func (p Page) Format() string { return p.format }

// Width and Height are the page's size once upright.
func (p Page) Width() int  { return p.width }
func (p Page) Height() int { return p.height }

// Pixels is Width x Height.
func (p Page) Pixels() int64 { return int64(p.width) * int64(p.height) }

// KeepsJPEG reports whether a PDF can hold this page's bytes as they are (a DCTDecode image):
// a gray or colour JPEG that needs no turning. Other pages are encoded again, losslessly.
func (p Page) KeepsJPEG() bool {
	return p.format == JPEG && p.orientation <= 1 && (p.components == 1 || p.components == 3)
}

// Components is a JPEG's number of colour components (0 for other formats).
func (p Page) Components() int { return p.components }

// Orientation is the JPEG's EXIF orientation (1 upright, 2-8 to be turned; 0 none).
func (p Page) Orientation() int { return p.orientation }

// Number is the page's number in its document (1 for an image).
func (p Page) Number() int { return max(p.number, 1) }

// Document is the ID of the page's Document (0 for a page made by Check).
func (p Page) Document() uint64 { return p.doc }

// TIFFOffset is where the IFD of a page of a multi-page TIFF is (0: the file is one page).
func (p Page) TIFFOffset() uint64 { return p.tiffOffset }

// DPI is the resolution a PDF page is to be rendered at (0 for other pages).
func (p Page) DPI() int { return p.dpi }

// Gray reports that Leptonica decodes the page to at most 8 bits a pixel (grayscale or
// bilevel), a quarter of a colour page's 32: what the memory cost of a page depends on.
func (p Page) Gray() bool { return p.gray }

// Sniff names the format from the leading bytes.
func Sniff(b []byte) (string, error) {
	switch {
	case len(b) == 0:
		return "", ErrEmpty
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG, nil
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return TIFF, nil
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF, nil
	case len(b) >= 12 && bytes.HasPrefix(b, []byte("RIFF")) && string(b[8:12]) == "WEBP":
		return WebP, nil
	case bytes.HasPrefix(b, []byte("BM")):
		return BMP, nil
	case len(b) >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6':
		return PNM, nil
	case bytes.HasPrefix(b, []byte("%PDF-")):
		return PDF, nil
	}
	return "", failure.Detail(ErrUnsupported, "the bytes are none of PDF, PNG, JPEG, TIFF, GIF, WebP, BMP, PNM")
}

// header is what the headers say about the image Leptonica would decode.
type header struct {
	format        string
	width, height int
	gray          bool
	orientation   int
	components    int    // a JPEG's
	data          []byte // the bytes to decode (a GIF is cut after its first frame)
}

// readHeader sniffs b and reads the dimensions, colour depth and orientation from its headers.
func readHeader(b []byte) (header, error) {
	format, err := Sniff(b)
	if err != nil {
		return header{}, err
	}
	h := header{format: format, data: b}
	var cfg image.Config
	r := bytes.NewReader(b)
	switch format {
	case PNG:
		cfg, err = png.DecodeConfig(r)
	case JPEG:
		var info jpegInfo
		if info, err = readJPEG(b); err != nil {
			break
		}
		h.orientation, h.components = info.orientation, info.components
		cfg, err = jpeg.DecodeConfig(r)
	case TIFF:
		// The first page, as pixReadMem reads it; Document reads the others.
		var pages []tiffIFD
		if pages, err = tiffPages(b); err == nil && pages[0].err != nil {
			err = pages[0].err
		}
		if err == nil {
			cfg = image.Config{Width: pages[0].width, Height: pages[0].height, ColorModel: color.RGBAModel}
			if pages[0].gray {
				cfg.ColorModel = color.GrayModel
			}
		}
	case PDF:
		err = errors.New("a PDF is a document: open it with Open")
	case GIF:
		// The logical screen must be sane too; the first frame is what giflib allocates for.
		if cfg, err = gif.DecodeConfig(r); err != nil {
			break
		}
		var f gifFrame
		if f, err = firstGIFFrame(b); err != nil {
			break
		}
		cfg.Width, cfg.Height = max(cfg.Width, f.width), max(cfg.Height, f.height)
		h.data = firstFrameOnly(b, f)
	case WebP:
		cfg, err = webp.DecodeConfig(r)
	case BMP:
		cfg, err = bmp.DecodeConfig(r)
	case PNM:
		cfg, err = pnmConfig(b)
	}
	if err != nil {
		return h, failure.Detail(ErrUndecodable, "%s: %v", format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return h, failure.Detail(ErrUndecodable, "%s header says %dx%d", format, cfg.Width, cfg.Height)
	}
	h.width, h.height = cfg.Width, cfg.Height
	h.gray = isGray(cfg.ColorModel)
	if format == PNM && len(b) > 1 {
		h.gray = b[1] != '3' && b[1] != '6' // P3/P6 are colour
	}
	return h, nil
}

func isGray(m color.Model) bool {
	return m == color.GrayModel || m == color.Gray16Model
}

// Config reads the format and dimensions from the headers without decoding pixels.
func Config(b []byte) (format string, width, height int, err error) {
	h, err := readHeader(b)
	return h.format, h.width, h.height, err
}

// Check checks b against maxPixels and returns the Page Tesseract is to read.
func Check(b []byte, maxPixels int64) (Page, error) {
	h, err := readHeader(b)
	if err != nil {
		return Page{}, err
	}
	if err := checkSize(h.width, h.height, maxPixels); err != nil {
		return Page{}, err
	}
	p := Page{data: h.data, format: h.format, width: h.width, height: h.height, orientation: h.orientation, gray: h.gray,
		components: h.components}
	if p.orientation >= 5 { // a quarter turn: width and height swap
		p.width, p.height = p.height, p.width
	}
	return p, nil
}
