package imageinput

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

const testMaxPixels = 40_000_000

func TestCheckAcceptsEveryFormat(t *testing.T) {
	want := map[string]struct {
		format string
		w, h   int
		gray   bool
	}{
		"phototest.tif":          {TIFF, 640, 480, true},
		"eurotext.tif":           {TIFF, 1024, 800, true},
		"pyt_test.jpg":           {JPEG, 640, 480, true},
		"pyt_test.gif":           {GIF, 640, 480, false},
		"pyt_test.webp":          {WebP, 640, 480, false},
		"pyt_test.bmp":           {BMP, 640, 480, false},
		"pyt_test.tiff":          {TIFF, 640, 480, true},
		"pyt_test_la.png":        {PNG, 400, 80, false},
		"gos_001-helloworld.png": {PNG, 1174, 236, false},
		"tjs_simple.pbm":         {PNM, 320, 180, true},
		"ocropy_0079-01000d.png": {PNG, 1742, 39, false},
	}
	images := testimages.All(t, "images/")
	if len(images) != len(want) {
		t.Fatalf("manifest has %d images, test knows %d", len(images), len(want))
	}
	for _, img := range images {
		got, err := Check(img.Bytes, testMaxPixels)
		if err != nil {
			t.Errorf("%s: %v", img.Name, err)
			continue
		}
		w := want[img.Name]
		if got.Format() != w.format || got.Width() != w.w || got.Height() != w.h || got.Gray() != w.gray {
			t.Errorf("%s: got %s %dx%d gray=%v, want %s %dx%d gray=%v", img.Name, got.Format(), got.Width(), got.Height(), got.Gray(), w.format, w.w, w.h, w.gray)
		}
		if !bytes.Equal(got.Data(), img.Bytes) {
			t.Errorf("%s: the bytes were changed", img.Name)
		}
		if !got.Valid() {
			t.Errorf("%s: not valid", img.Name)
		}
	}
	if (Page{}).Valid() {
		t.Error("the zero Page is valid")
	}
}

func TestCheckRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty.png", testimages.Get(t, "empty.png").Bytes, ErrEmpty},
		{"not_an_image.png", testimages.Get(t, "not_an_image.png").Bytes, ErrUnsupported},
		{"pdf: a document, for Open", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"), ErrUndecodable},
		{"html", []byte("<!doctype html><html></html>"), ErrUnsupported},
		{"png signature only", []byte("\x89PNG\r\n\x1a\n"), ErrUndecodable},
		{"jpeg marker only", []byte{0xFF, 0xD8, 0xFF}, ErrUndecodable},
		{"jpeg segment past the end", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF, 0}, ErrUndecodable},
		{"riff not webp", []byte("RIFF\x00\x00\x00\x00WAVEfmt "), ErrUnsupported},
		{"pnm garbage", []byte("P6\nxx yy\n255\n"), ErrUndecodable},
		{"pnm zero size", []byte("P5 0 10 255\n"), ErrUndecodable},
		{"400 megapixel png bomb", testimages.PNGBomb(t, 20000, 20000), ErrTooLarge},
		{"too wide png", testimages.PNGBomb(t, 40000, 10), ErrTooLarge},
		{"jpeg of 101 scans", testimages.JPEGScanBomb(101), ErrUndecodable},
		{"gif without an image", []byte("GIF89a\x10\x00\x10\x00\x00\x00\x00\x3b"), ErrUndecodable},
		{"gif truncated in its frame", testimages.Get(t, "pyt_test.gif").Bytes[:200], ErrUndecodable},
	}
	for _, tt := range tests {
		_, err := Check(tt.data, testMaxPixels)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
		}
	}
	// The frame, not the logical screen, is what giflib allocates for.
	if _, err := Check(testimages.GIFFrameBeyondScreen(100, 2000, 2000), 1_000_000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("4-megapixel frame under a 100x100 screen, 1-megapixel cap: error = %v", err)
	}
}

// The truncated files have valid headers: Check lets them through and Leptonica's own decoder
// refuses them (tested in the ocr package).
func TestCheckTruncatedHeadersPass(t *testing.T) {
	for _, name := range []string{"truncated.png", "truncated.webp"} {
		if _, err := Check(testimages.Get(t, name).Bytes, testMaxPixels); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckReadsEXIFOrientation(t *testing.T) {
	photo := testimages.SidewaysPhoto(t, testimages.Get(t, "pyt_test.jpg"))
	got, err := Check(photo, testMaxPixels)
	if err != nil {
		t.Fatal(err)
	}
	if got.Orientation() != 6 || got.Format() != JPEG {
		t.Fatalf("orientation %d format %s, want 6 jpeg", got.Orientation(), got.Format())
	}
	// Stored 480x640; upright (as Tesseract will see it once turned) 640x480.
	if got.Width() != 640 || got.Height() != 480 {
		t.Fatalf("upright size %dx%d, want 640x480", got.Width(), got.Height())
	}
	if !bytes.Equal(got.Data(), photo) {
		t.Fatal("the JPEG was re-encoded: turning it is the engine's job, on the decoded page")
	}
}

// EXIF built to make a reader loop or allocate: the orientation is still read, at once.
func TestCheckHostileEXIF(t *testing.T) {
	jpg := testimages.Get(t, "pyt_test.jpg").Bytes
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"IFD0 -> IFD1 -> IFD0 cycle", testimages.EXIFCycle(jpg, 3), 3},
		{"5,000 tags of 60 KB each", testimages.EXIFTagFlood(jpg, 5000, 8), 8},
		{"orientation 9 (invalid)", testimages.WithOrientation(jpg, 9), 0},
	}
	for _, tt := range tests {
		start := time.Now()
		p, err := Check(tt.data, testMaxPixels)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if p.Orientation() != tt.want {
			t.Errorf("%s: orientation %d, want %d", tt.name, p.Orientation(), tt.want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", tt.name, d)
		}
	}
}

// Allocations of Check are bounded by the input, whatever the headers claim.
func TestCheckAllocatesLittle(t *testing.T) {
	jpg := testimages.Get(t, "pyt_test.jpg").Bytes
	flood := testimages.EXIFTagFlood(jpg, 5000, 8)
	cycle := testimages.EXIFCycle(jpg, 3)
	gif := testimages.GIFWithLaterFrames(testimages.Get(t, "pyt_test.gif").Bytes, [2]int{2000, 2000})
	for name, b := range map[string][]byte{"flood": flood, "cycle": cycle, "gif": gif} {
		allocs := testing.AllocsPerRun(5, func() { Check(b, testMaxPixels) })
		if allocs > 50 {
			t.Errorf("%s: %.0f allocations", name, allocs)
		}
	}
}

// Only the first frame of a GIF reaches Leptonica: the bytes end after it.
func TestCheckKeepsTheFirstGIFFrame(t *testing.T) {
	orig := testimages.Get(t, "pyt_test.gif").Bytes
	multi := testimages.GIFWithLaterFrames(orig, [2]int{2000, 2000}, [2]int{3000, 3000})
	p, err := Check(multi, testMaxPixels)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Data(), orig) {
		t.Errorf("kept %d bytes, want the first frame and trailer: %d bytes", len(p.Data()), len(orig))
	}
	if p.Width() != 640 || p.Height() != 480 {
		t.Errorf("size %dx%d", p.Width(), p.Height())
	}
}

func seeds(f *testing.F) {
	for _, img := range testimages.All(f, "") {
		f.Add(img.Bytes[:min(len(img.Bytes), 512)])
	}
	jpg := testimages.Get(f, "pyt_test.jpg").Bytes
	f.Add(testimages.EXIFCycle(jpg, 6)[:400])
	f.Add(testimages.EXIFTagFlood(jpg, 40, 6)[:600])
	f.Add(testimages.JPEGScanBomb(3))
	f.Add(testimages.GIFFrameBeyondScreen(10, 100, 100))
	f.Add([]byte("P1\n# comment\n3 2\n0 1 0\n1 0 1\n"))
	f.Add([]byte("%PDF-1.4"))
}

func FuzzConfig(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		format, w, h, err := Config(b)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrUndecodable) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if format == "" || w <= 0 || h <= 0 {
			t.Fatalf("Config accepted %q %dx%d", format, w, h)
		}
	})
}

// FuzzJPEG drives the segment walk and the EXIF reader with arbitrary bytes after SOI.
func FuzzJPEG(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := readJPEG(append([]byte{0xFF, 0xD8}, b...))
		if err == nil && (info.orientation < 0 || info.orientation > 8 || info.scans > maxJPEGScans) {
			t.Fatalf("%+v", info)
		}
		if o := exifOrientation(b); o < 0 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// FuzzGIF drives the GIF block walk.
func FuzzGIF(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := firstGIFFrame(b)
		if err != nil {
			return
		}
		if fr.end > len(b) || fr.end < 13 {
			t.Fatalf("frame ends at %d of %d", fr.end, len(b))
		}
		if out := firstFrameOnly(b, fr); out[len(out)-1] != 0x3B {
			t.Fatal("no trailer")
		}
	})
}
