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

// pdfiumBase is what a worker's resident memory grows by when it opens a PDF: the WebAssembly
// runtime, PDFium's compiled code and its instance's memory before any page (measured in
// TestPDFPageCost, with a margin).
const pdfiumBase = 56 << 20

// pageCost is PageCost, plus for a PDF page what rendering it takes: PDFium, the document
// copied into its memory, and the rendered bitmap (1 byte a pixel in gray, 4 in colour) next to
// Leptonica's copy.
func (e *Engine) pageCost(p imageinput.Page) int64 {
	c := PageCost(p)
	if p.Format() == imageinput.PDF {
		c += pdfExtra(int64(len(p.Data())), p.Pixels(), !p.Gray())
	}
	return c
}

func pdfExtra(docBytes, pixels int64, colour bool) int64 {
	perPixel := int64(1)
	if colour {
		perPixel = 4
	}
	return pdfiumBase + docBytes + perPixel*pixels
}

// MaxPDFPixels returns the largest PDF page, in pixels, that a worker can render and read from
// a document of docBytes (0 when none fits, or when pages have no memory limit: then -1).
func (e *Engine) MaxPDFPixels(docBytes int64, colour bool) int64 {
	if e.cfg.PageMemory <= 0 {
		return -1
	}
	perPixel := int64(grayBytesPerPixel + 1)
	if colour {
		perPixel = colorBytesPerPixel + 4
	}
	free := e.cfg.PageMemory - pageOverhead - pdfiumBase - 2*docBytes
	return max(free/perPixel, 0)
}
