package testimages

import (
	"bytes"
	"compress/lzw"
	"encoding/binary"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// Hostile inputs: small files that claim, or make a decoder do, far more than their size. Each
// is built here from a real test image so that tests need no binary fixtures.

// exifSegment wraps a TIFF-structured EXIF block in a JPEG APP1 segment inserted after SOI.
func exifSegment(jpg, tiff []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// ifdEntry is one 12-byte big-endian IFD entry.
func ifdEntry(buf *bytes.Buffer, tag, typ uint16, count, value uint32) {
	binary.Write(buf, binary.BigEndian, tag)
	binary.Write(buf, binary.BigEndian, typ)
	binary.Write(buf, binary.BigEndian, count)
	binary.Write(buf, binary.BigEndian, value)
}

// EXIFCycle returns jpg with an EXIF block whose IFD chain loops: IFD0 (with the orientation)
// -> IFD1 -> IFD0 -> ... A reader that follows next-IFD links without remembering where it has
// been never ends (goexif detects only an IFD that points to itself).
func EXIFCycle(jpg []byte, orientation uint16) []byte {
	var t bytes.Buffer
	t.WriteString("MM\x00*")
	binary.Write(&t, binary.BigEndian, uint32(8))
	// IFD0 at 8: one entry, next IFD at 26.
	binary.Write(&t, binary.BigEndian, uint16(1))
	ifdEntry(&t, 0x0112, 3, 1, uint32(orientation)<<16)
	binary.Write(&t, binary.BigEndian, uint32(26))
	// IFD1 at 26: one entry (ImageWidth), next IFD back at 8.
	binary.Write(&t, binary.BigEndian, uint16(1))
	ifdEntry(&t, 0x0100, 3, 1, 1<<16)
	binary.Write(&t, binary.BigEndian, uint32(8))
	return exifSegment(jpg, t.Bytes())
}

// EXIFTagFlood returns jpg with an EXIF IFD0 of n entries (n <= 5000, to fit one segment),
// each an UNDEFINED tag whose bytes are the whole IFD (12n bytes at offset 8), then the
// orientation. A reader that copies each tag's bytes allocates 12n² bytes (300 MB for n=5000;
// goexif expands each byte eightfold besides) for a 60 KB segment.
func EXIFTagFlood(jpg []byte, n int, orientation uint16) []byte {
	var t bytes.Buffer
	t.WriteString("MM\x00*")
	binary.Write(&t, binary.BigEndian, uint32(8))
	binary.Write(&t, binary.BigEndian, uint16(n+1))
	for i := range n {
		ifdEntry(&t, uint16(0x9000+i%0x1000), 7, uint32(12*n), 8)
	}
	ifdEntry(&t, 0x0112, 3, 1, uint32(orientation)<<16)
	binary.Write(&t, binary.BigEndian, uint32(0))
	return exifSegment(jpg, t.Bytes())
}

// JPEGScanBomb returns a JPEG made of SOI, n tiny scans and EOI: libjpeg walks its whole
// coefficient buffer once per scan of a progressive image.
func JPEGScanBomb(n int) []byte {
	out := []byte{0xFF, 0xD8}
	for range n {
		out = append(out, 0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0, 0x55)
	}
	return append(out, 0xFF, 0xD9)
}

// Specks returns a w x h grayscale PNG of black pixels scattered at random, one in density:
// Tesseract's layout analysis of it takes a time that grows with the square of their number
// (4 megapixels at 1 in 20: 8 s here; 8 megapixels: 34 s) and never checks for cancellation.
func Specks(tb testing.TB, w, h, density int) []byte {
	tb.Helper()
	return SpecksBytes(w, h, density)
}

// SpecksBytes is Specks outside a test.
func SpecksBytes(w, h, density int) []byte {
	g := image.NewGray(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range g.Pix {
		g.Pix[i] = 0xFF
		if r.IntN(density) == 0 {
			g.Pix[i] = 0
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, g); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

var blankLZW = struct {
	mu   sync.Mutex
	data map[int][]byte
}{data: map[int][]byte{}}

// lzwBlank returns the GIF LZW data (code size 2) of a frame of n pixels of color 0, in
// sub-blocks. Cached: 400 megapixels take ~3 s to compress.
func lzwBlank(n int) []byte {
	blankLZW.mu.Lock()
	defer blankLZW.mu.Unlock()
	if b, ok := blankLZW.data[n]; ok {
		return b
	}
	var raw bytes.Buffer
	w := lzw.NewWriter(&raw, lzw.LSB, 2)
	io.Copy(w, io.LimitReader(zeroReader{}, int64(n)))
	w.Close()
	var out bytes.Buffer
	out.WriteByte(2) // LZW minimum code size
	for b := raw.Bytes(); len(b) > 0; {
		k := min(len(b), 255)
		out.WriteByte(byte(k))
		out.Write(b[:k])
		b = b[k:]
	}
	out.WriteByte(0)
	blankLZW.data[n] = out.Bytes()
	return out.Bytes()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// gifFrame is an image descriptor without a local color table, then its data.
func gifFrame(w, h int, data []byte) []byte {
	d := []byte{0x2C, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(d[5:], uint16(w))
	binary.LittleEndian.PutUint16(d[7:], uint16(h))
	return append(d, data...)
}

// GIFWithLaterFrames returns gif (a one-frame GIF with a two-color global table, such as
// pyt_test.gif) with blank frames of the given sizes appended after its own. Decoders that
// read every frame (giflib's DGifSlurp, under Leptonica) allocate each frame although the
// first is the only one used.
func GIFWithLaterFrames(gif []byte, sizes ...[2]int) []byte {
	out := append([]byte{}, gif[:len(gif)-1]...) // without the trailer
	for _, s := range sizes {
		out = append(out, gifFrame(s[0], s[1], lzwBlank(s[0]*s[1]))...)
	}
	return append(out, 0x3B)
}

// GIFFrameBeyondScreen returns a GIF whose logical screen is screen x screen pixels and whose
// only frame is w x h, with real (blank) image data: a header check of the screen alone lets
// it through, and the decoder allocates for the frame.
func GIFFrameBeyondScreen(screen, w, h int) []byte {
	out := []byte("GIF89a")
	out = binary.LittleEndian.AppendUint16(out, uint16(screen))
	out = binary.LittleEndian.AppendUint16(out, uint16(screen))
	out = append(out, 0x80, 0, 0)                // global color table of 2 colors
	out = append(out, 0xFF, 0xFF, 0xFF, 0, 0, 0) // white, black
	out = append(out, gifFrame(w, h, lzwBlank(w*h))...)
	return append(out, 0x3B)
}
