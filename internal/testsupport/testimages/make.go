package testimages

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/disintegration/imaging"
)

// SidewaysPhoto returns img re-encoded as a JPEG stored rotated 90° counter-clockwise with EXIF
// orientation 6 ("rotate 90° clockwise to view"), as phones write them.
func SidewaysPhoto(tb testing.TB, img Image) []byte {
	tb.Helper()
	decoded, err := imaging.Decode(bytes.NewReader(img.Bytes))
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, imaging.Rotate90(decoded), &jpeg.Options{Quality: 95}); err != nil {
		tb.Fatal(err)
	}
	return WithOrientation(buf.Bytes(), 6)
}

// Oriented returns img as a JPEG stored the way a camera held in EXIF orientation o (1-8)
// writes it, with that orientation in its EXIF: upright once a reader applies o.
func Oriented(tb testing.TB, img Image, o int) []byte {
	tb.Helper()
	decoded, err := imaging.Decode(bytes.NewReader(img.Bytes))
	if err != nil {
		tb.Fatal(err)
	}
	// The inverse of what orientation o asks a viewer to do.
	stored := map[int]func(image.Image) *image.NRGBA{
		1: imaging.Clone, 2: imaging.FlipH, 3: imaging.Rotate180, 4: imaging.FlipV,
		5: imaging.Transpose, 6: imaging.Rotate90, 7: imaging.Transverse, 8: imaging.Rotate270,
	}[o]
	if stored == nil {
		tb.Fatalf("orientation %d", o)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, stored(decoded), &jpeg.Options{Quality: 95}); err != nil {
		tb.Fatal(err)
	}
	return WithOrientation(buf.Bytes(), uint16(o))
}

// WithOrientation inserts an APP1 Exif segment holding only an Orientation tag after the SOI
// marker of a JPEG.
func WithOrientation(jpg []byte, orientation uint16) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00*")
	binary.Write(&tiff, binary.BigEndian, uint32(8))           // offset of IFD0
	binary.Write(&tiff, binary.BigEndian, uint16(1))           // one entry
	binary.Write(&tiff, binary.BigEndian, uint16(0x0112))      // Orientation
	binary.Write(&tiff, binary.BigEndian, uint16(3))           // SHORT
	binary.Write(&tiff, binary.BigEndian, uint32(1))           // count
	binary.Write(&tiff, binary.BigEndian, uint16(orientation)) // value, left-justified
	binary.Write(&tiff, binary.BigEndian, uint16(0))
	binary.Write(&tiff, binary.BigEndian, uint32(0)) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// PNGBomb returns a valid small PNG whose header claims width x height pixels: what a
// decompression bomb looks like to a header check.
func PNGBomb(tb testing.TB, width, height uint32) []byte {
	tb.Helper()
	return PNGBombBytes(width, height)
}

// PNGBombBytes is PNGBomb outside a test.
func PNGBombBytes(width, height uint32) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	// IHDR data starts at 16: 8 signature + 4 length + 4 type.
	binary.BigEndian.PutUint32(b[16:], width)
	binary.BigEndian.PutUint32(b[20:], height)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// Rotate returns img turned counter-clockwise by deg (90, 180 or 270), as PNG.
func Rotate(tb testing.TB, img Image, deg int) []byte {
	tb.Helper()
	decoded, err := imaging.Decode(bytes.NewReader(img.Bytes))
	if err != nil {
		tb.Fatal(err)
	}
	var rotated image.Image
	switch deg {
	case 90:
		rotated = imaging.Rotate90(decoded)
	case 180:
		rotated = imaging.Rotate180(decoded)
	case 270:
		rotated = imaging.Rotate270(decoded)
	default:
		tb.Fatalf("rotate by %d", deg)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, rotated); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// Tiled returns n x n copies of img side by side as one PNG: a page that takes n² times as
// long to recognise, for tests that need OCR still running when something else happens.
func Tiled(tb testing.TB, img Image, n int) []byte {
	tb.Helper()
	return TiledBytes(img, n)
}

// TiledBytes is Tiled outside a test.
func TiledBytes(img Image, n int) []byte {
	decoded, err := imaging.Decode(bytes.NewReader(img.Bytes))
	if err != nil {
		panic(err)
	}
	w, h := decoded.Bounds().Dx(), decoded.Bounds().Dy()
	page := imaging.New(w*n, h*n, color.White)
	for x := range n {
		for y := range n {
			page = imaging.Paste(page, decoded, image.Pt(x*w, y*h))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, page); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
