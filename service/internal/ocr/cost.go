package ocr

import "github.com/readocr/readocr/service/internal/imageinput"

// What a worker's resident memory grows by while it reads a page, per pixel, measured with
// `make bench` (docs/benchmarks.md, "Memory per page") on text and on the costliest content
// found, random noise, with a margin. Leptonica decodes colour to 32 bits a pixel and
// Tesseract keeps its own copy, a grayscale and a binary one, and per-blob structures on top:
// noise, all blobs, is what costs most.
const (
	colorBytesPerPixel = 24 // measured up to 20.5 (noise); text 12-13
	grayBytesPerPixel  = 16 // measured up to 13.6 (noise); text 5-6
	pageOverhead       = 16 << 20
)

// PageCost estimates what a worker needs to read p, in bytes: its decoded copies, Tesseract's
// own, a turned copy when EXIF says so, and the encoded bytes it was sent.
func PageCost(p imageinput.Page) int64 {
	perPixel, turned := int64(colorBytesPerPixel), int64(4)
	if p.Gray() {
		perPixel, turned = grayBytesPerPixel, 1
	}
	if p.Orientation() >= 2 {
		perPixel += turned
	}
	return pageOverhead + perPixel*p.Pixels() + int64(len(p.Data()))
}

// MaxPixels returns the largest page, in pixels, whose cost fits in pageMemory, colour and
// grayscale, for an upright page of at most encoded bytes (0 when nothing fits).
func MaxPixels(pageMemory, encoded int64) (color, gray int64) {
	free := pageMemory - pageOverhead - encoded
	if free <= 0 {
		return 0, 0
	}
	return free / colorBytesPerPixel, free / grayBytesPerPixel
}

// What rendering a PDF page takes, before Tesseract reads it (the worker closes PDFium's
// instance in between, so the two do not add up): PDFium (the WebAssembly runtime, its compiled
// code, the instance's memory before any page), the document copied into that memory, and per
// pixel the bitmap, the images PDFium decodes to draw it, the instance's memory growing, and
// Leptonica's copy. Measured with TestPDFPageCost on Letter pages at 300 DPI of text and of noise:
// up to 179 MiB over idle in gray (56 MiB + 14.6 bytes a pixel), 221 MiB in colour (+19.7).
//
// A page that holds colour images costs more, whatever it is rendered in: PDFium decodes each
// colour JPEG to 32 bits a pixel and draws it through a stretched copy, and its WebAssembly
// memory, grown for them, is only given back when the instance closes. Measured with
// TestColourJPEGPDFPageCost (a Letter page that is one colour JPEG at 300 DPI, rendered in gray
// at 300 DPI): 320 MiB over idle for a colour scan (32.8 bytes a pixel over the base) and 421
// MiB for colour noise (43.8), where 18 bytes a pixel had estimated 202 and 214 MiB: the
// estimate that let a colour JPEG page take ~1.6 times its share. Images at a higher
// resolution than the page's rendering cost more still (their own pixels are decoded).
const (
	pdfiumBase                    = 56 << 20
	pdfGrayBytesPerPixel          = 18
	pdfColorBytesPerPixel         = 24
	pdfColourContentBytesPerPixel = 48
)

// pageCost is PageCost, or for a PDF page the larger of that and what rendering it takes.
func (e *Engine) pageCost(p imageinput.Page) int64 {
	c := PageCost(p)
	if p.Format() == imageinput.PDF {
		perPixel := int64(pdfGrayBytesPerPixel)
		if !p.Gray() {
			perPixel = pdfColorBytesPerPixel
		}
		if p.ColourContent() {
			perPixel = pdfColourContentBytesPerPixel
		}
		c = max(c, pdfiumBase+2*int64(len(p.Data()))+perPixel*p.Pixels())
	}
	return c
}

// MaxPDFPixels returns the largest PDF page, in pixels, that a worker can render and read from
// a document of docBytes (0 when none fits; -1 when pages have no memory limit), rendered in
// colour or gray, holding colour content or not.
func (e *Engine) MaxPDFPixels(docBytes int64, colour, colourContent bool) int64 {
	if e.cfg.PageMemory <= 0 {
		return -1
	}
	render, read := int64(pdfGrayBytesPerPixel), int64(grayBytesPerPixel)
	if colour {
		render, read = pdfColorBytesPerPixel, colorBytesPerPixel
	}
	if colourContent {
		render = pdfColourContentBytesPerPixel
	}
	rendering := (e.cfg.PageMemory - pdfiumBase - 2*docBytes) / render
	reading := (e.cfg.PageMemory - pageOverhead - docBytes) / read
	return max(min(rendering, reading), 0)
}
