package imageinput

import (
	"bytes"
	"errors"
	"image/png"
	"testing"

	"github.com/readocr/readocr/internal/testimages"
)

const testMaxPixels = 40_000_000

func TestPrepareAcceptsEveryFormat(t *testing.T) {
	want := map[string]struct {
		format string
		w, h   int
	}{
		"phototest.tif":          {TIFF, 640, 480},
		"eurotext.tif":           {TIFF, 1024, 800},
		"pyt_test.jpg":           {JPEG, 640, 480},
		"pyt_test.gif":           {GIF, 640, 480},
		"pyt_test.webp":          {WebP, 640, 480},
		"pyt_test.bmp":           {BMP, 640, 480},
		"pyt_test.tiff":          {TIFF, 640, 480},
		"pyt_test_la.png":        {PNG, 400, 80},
		"gos_001-helloworld.png": {PNG, 1174, 236},
		"tjs_simple.pbm":         {PNM, 320, 180},
		"ocropy_0079-01000d.png": {PNG, 1742, 39},
	}
	images := testimages.All(t, "images/")
	if len(images) != len(want) {
		t.Fatalf("manifest has %d images, test knows %d", len(images), len(want))
	}
	for _, img := range images {
		got, err := Prepare(img.Bytes, testMaxPixels)
		if err != nil {
			t.Errorf("%s: %v", img.Name, err)
			continue
		}
		w := want[img.Name]
		if got.Format != w.format || got.Width != w.w || got.Height != w.h {
			t.Errorf("%s: got %s %dx%d, want %s %dx%d", img.Name, got.Format, got.Width, got.Height, w.format, w.w, w.h)
		}
		if !bytes.Equal(got.Data, img.Bytes) {
			t.Errorf("%s: upright image was re-encoded", img.Name)
		}
	}
}

func TestPrepareRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty.png", testimages.Get(t, "empty.png").Bytes, ErrEmpty},
		{"not_an_image.png", testimages.Get(t, "not_an_image.png").Bytes, ErrUnsupported},
		{"pdf", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"), ErrPDF},
		{"html", []byte("<!doctype html><html></html>"), ErrUnsupported},
		{"png signature only", []byte("\x89PNG\r\n\x1a\n"), ErrUndecodable},
		{"jpeg marker only", []byte{0xFF, 0xD8, 0xFF}, ErrUndecodable},
		{"riff not webp", []byte("RIFF\x00\x00\x00\x00WAVEfmt "), ErrUnsupported},
		{"pnm garbage", []byte("P6\nxx yy\n255\n"), ErrUndecodable},
		{"pnm zero size", []byte("P5 0 10 255\n"), ErrUndecodable},
		{"400 megapixel png bomb", testimages.PNGBomb(t, 20000, 20000), ErrTooLarge},
		{"too wide png", testimages.PNGBomb(t, 40000, 10), ErrTooLarge},
	}
	for _, tt := range tests {
		_, err := Prepare(tt.data, testMaxPixels)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// The truncated files have valid headers: Prepare lets them through and Leptonica's own
// decoder refuses them (tested in the ocr package).
func TestPrepareTruncatedHeadersPass(t *testing.T) {
	for _, name := range []string{"truncated.png", "truncated.webp"} {
		if _, err := Prepare(testimages.Get(t, name).Bytes, testMaxPixels); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPrepareAppliesEXIFOrientation(t *testing.T) {
	photo := testimages.SidewaysPhoto(t, testimages.Get(t, "pyt_test.jpg"))
	got, err := Prepare(photo, testMaxPixels)
	if err != nil {
		t.Fatal(err)
	}
	if got.Orientation != 6 || got.Format != JPEG {
		t.Fatalf("orientation %d format %s, want 6 jpeg", got.Orientation, got.Format)
	}
	if got.Width != 640 || got.Height != 480 {
		t.Fatalf("upright size %dx%d, want 640x480", got.Width, got.Height)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(got.Data))
	if err != nil || cfg.Width != 640 || cfg.Height != 480 {
		t.Fatalf("re-encoded image: %v %+v", err, cfg)
	}
}

func FuzzConfig(f *testing.F) {
	for _, img := range testimages.All(f, "") {
		f.Add(img.Bytes[:min(len(img.Bytes), 512)])
	}
	f.Add([]byte("P1\n# comment\n3 2\n0 1 0\n1 0 1\n"))
	f.Add([]byte("%PDF-1.4"))
	f.Fuzz(func(t *testing.T, b []byte) {
		format, w, h, err := Config(b)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrPDF) && !errors.Is(err, ErrUndecodable) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if format == "" || w <= 0 || h <= 0 {
			t.Fatalf("Config accepted %q %dx%d", format, w, h)
		}
	})
}
