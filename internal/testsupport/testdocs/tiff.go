// Package testdocs makes the documents the tests read: multi-page TIFFs and PDFs built from the
// test images, and hostile ones (a page claiming 100000x100000 pixels, 3,000 pages, encryption,
// a page that takes long to render). They are made here rather than checked in so that each is
// exactly what its test says it is; the images they carry are testdata's, with its licences.
package testdocs

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/draw"
	_ "image/gif" // Decode's formats
	_ "image/jpeg"
	_ "image/png"
	"slices"

	_ "golang.org/x/image/tiff"
)

// tiffPage is one page to write: gray pixels, or raw strip bytes with the header's claims.
type tiffPage struct {
	width, height int
	data          []byte // one strip
	bits          int    // 8, or 1 (bilevel, MinIsWhite=0)
	compression   int    // 1: none
}

// Gray converts img to 8-bit gray.
func Gray(img image.Image) *image.Gray {
	if g, ok := img.(*image.Gray); ok {
		return g
	}
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Bounds(), img, img.Bounds().Min, draw.Src)
	return g
}

// TIFF writes pages as one multi-page TIFF: 8-bit gray, uncompressed, one strip a page, at dpi.
func TIFF(pages []image.Image, dpi int) []byte {
	tp := make([]tiffPage, len(pages))
	for i, img := range pages {
		g := Gray(img)
		w, h := g.Rect.Dx(), g.Rect.Dy()
		data := make([]byte, 0, w*h)
		for y := range h {
			data = append(data, g.Pix[y*g.Stride:y*g.Stride+w]...)
		}
		tp[i] = tiffPage{width: w, height: h, data: data, bits: 8, compression: 1}
	}
	return writeTIFF(tp, dpi)
}

// TIFFClaiming is a one-page TIFF whose header claims w x h pixels, with a few bytes of data.
func TIFFClaiming(w, h int) []byte {
	return writeTIFF([]tiffPage{{width: w, height: h, data: make([]byte, 64), bits: 8, compression: 1}}, 300)
}

// TIFFPages is a TIFF of n small white pages.
func TIFFPages(n int) []byte {
	pages := make([]tiffPage, n)
	for i := range pages {
		pages[i] = tiffPage{width: 8, height: 8, data: bytes.Repeat([]byte{0xFF}, 64), bits: 8, compression: 1}
	}
	return writeTIFF(pages, 300)
}

// TIFFUnreadablePage2 is a TIFF whose first page is img and whose second claims a compression
// no decoder knows (so that only that page fails).
func TIFFUnreadablePage2(img image.Image) []byte {
	g := Gray(img)
	w, h := g.Rect.Dx(), g.Rect.Dy()
	data := make([]byte, 0, w*h)
	for y := range h {
		data = append(data, g.Pix[y*g.Stride:y*g.Stride+w]...)
	}
	return writeTIFF([]tiffPage{
		{width: w, height: h, data: data, bits: 8, compression: 1},
		{width: w, height: h, data: data[:w*h/2], bits: 8, compression: 60000},
	}, 300)
}

// TIFFWithUnreadable is a TIFF of pages in which the pages at the indexes bad claim a
// compression no decoder knows: those pages fail, the others are read.
func TIFFWithUnreadable(pages []image.Image, dpi int, bad ...int) []byte {
	tp := make([]tiffPage, len(pages))
	for i, img := range pages {
		g := Gray(img)
		w, h := g.Rect.Dx(), g.Rect.Dy()
		data := make([]byte, 0, w*h)
		for y := range h {
			data = append(data, g.Pix[y*g.Stride:y*g.Stride+w]...)
		}
		tp[i] = tiffPage{width: w, height: h, data: data, bits: 8, compression: 1}
		if slices.Contains(bad, i) {
			tp[i].data, tp[i].compression = data[:w*h/2], 60000
		}
	}
	return writeTIFF(tp, dpi)
}

// TIFFLoop is a two-page TIFF whose second page points back at the first.
func TIFFLoop() []byte {
	b := TIFFPages(2)
	// The first IFD's offset is at 4; the second IFD's next-IFD pointer is the file's last 4 bytes.
	first := binary.LittleEndian.Uint32(b[4:])
	binary.LittleEndian.PutUint32(b[len(b)-4:], first)
	return b
}

// writeTIFF lays out a little-endian classic TIFF: header, then each page's strip followed by
// its IFD (so that the last 4 bytes are the last IFD's next pointer).
func writeTIFF(pages []tiffPage, dpi int) []byte {
	var b bytes.Buffer
	b.WriteString("II*\x00")
	binary.Write(&b, binary.LittleEndian, uint32(0)) // first IFD, patched below
	prevNext := 4
	le := binary.LittleEndian
	for _, p := range pages {
		stripAt := b.Len()
		b.Write(p.data)
		if b.Len()%2 == 1 {
			b.WriteByte(0)
		}
		resAt := b.Len() // XResolution and YResolution: dpi/1
		for range 2 {
			binary.Write(&b, le, uint32(dpi))
			binary.Write(&b, le, uint32(1))
		}
		ifdAt := b.Len()
		out := b.Bytes()
		le.PutUint32(out[prevNext:], uint32(ifdAt))
		type entry struct {
			tag, typ uint16
			count    uint32
			value    uint32
		}
		entries := []entry{
			{256, 4, 1, uint32(p.width)},
			{257, 4, 1, uint32(p.height)},
			{258, 3, 1, uint32(p.bits)},
			{259, 3, 1, uint32(p.compression)},
			{262, 3, 1, 1}, // BlackIsZero
			{273, 4, 1, uint32(stripAt)},
			{277, 3, 1, 1},
			{278, 4, 1, uint32(p.height)},
			{279, 4, 1, uint32(len(p.data))},
			{282, 5, 1, uint32(resAt)},
			{283, 5, 1, uint32(resAt + 8)},
			{296, 3, 1, 2}, // inches
		}
		binary.Write(&b, le, uint16(len(entries)))
		for _, e := range entries {
			binary.Write(&b, le, e.tag)
			binary.Write(&b, le, e.typ)
			binary.Write(&b, le, e.count)
			binary.Write(&b, le, e.value)
		}
		prevNext = b.Len()
		binary.Write(&b, le, uint32(0))
	}
	return b.Bytes()
}

// Decode decodes a test image (PNG, JPEG, TIFF, GIF) for a document's page.
func Decode(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}
