// Package imageinput checks an uploaded image in Go before Tesseract sees it.
//
// Leptonica happily starts decoding anything: a 76 KB PNG can claim 400 megapixels, a PDF or
// a text file comes back as "no pix", and a JPEG's EXIF orientation is ignored. Here the
// format is sniffed from the bytes (never from a name or Content-Type), the dimensions are read
// from the header alone and capped, and phone photos are turned upright.
package imageinput

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"github.com/disintegration/imaging"
	"github.com/rwcarlsen/goexif/exif"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// Errors, each mapped to one HTTP status by the API layer.
var (
	ErrEmpty       = errors.New("image is empty")
	ErrUnsupported = errors.New("unsupported image format")
	ErrPDF         = errors.New("PDF is not supported: convert the page to PNG or TIFF first (e.g. pdftoppm -r 300 -png)")
	ErrUndecodable = errors.New("image could not be decoded")
	ErrTooLarge    = errors.New("image dimensions exceed the limit")
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

// Image is a checked image, ready for Tesseract.
type Image struct {
	Data          []byte // bytes to hand to Leptonica: the input, or an upright PNG re-encoding
	Format        string // sniffed format of the input
	Width, Height int    // of Data, after orientation
	Orientation   int    // EXIF orientation of the input (1 = upright, 0 = none)
}

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
		return "", ErrPDF
	}
	return "", fmt.Errorf("%w: the bytes are none of PNG, JPEG, TIFF, GIF, WebP, BMP, PNM", ErrUnsupported)
}

// Config reads the format and dimensions from the header without decoding pixels.
func Config(b []byte) (format string, width, height int, err error) {
	format, err = Sniff(b)
	if err != nil {
		return "", 0, 0, err
	}
	var cfg image.Config
	r := bytes.NewReader(b)
	switch format {
	case PNG:
		cfg, err = png.DecodeConfig(r)
	case JPEG:
		cfg, err = jpeg.DecodeConfig(r)
	case TIFF:
		cfg, err = tiff.DecodeConfig(r)
	case GIF:
		cfg, err = gif.DecodeConfig(r)
	case WebP:
		cfg, err = webp.DecodeConfig(r)
	case BMP:
		cfg, err = bmp.DecodeConfig(r)
	case PNM:
		cfg, err = pnmConfig(b)
	}
	if err != nil {
		return format, 0, 0, fmt.Errorf("%w: %s header: %v", ErrUndecodable, format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return format, 0, 0, fmt.Errorf("%w: %s header says %dx%d", ErrUndecodable, format, cfg.Width, cfg.Height)
	}
	return format, cfg.Width, cfg.Height, nil
}

// Prepare checks b against maxPixels and returns what Tesseract should read.
func Prepare(b []byte, maxPixels int64) (Image, error) {
	format, w, h, err := Config(b)
	if err != nil {
		return Image{}, err
	}
	if w > MaxSide || h > MaxSide || int64(w)*int64(h) > maxPixels {
		return Image{}, fmt.Errorf("%w: %dx%d is %.1f megapixels, the limit is %.1f megapixels and %d pixels a side",
			ErrTooLarge, w, h, float64(w)*float64(h)/1e6, float64(maxPixels)/1e6, MaxSide)
	}
	img := Image{Data: b, Format: format, Width: w, Height: h}
	if format != JPEG {
		return img, nil
	}
	img.Orientation = orientation(b)
	if img.Orientation <= 1 || img.Orientation > 8 {
		return img, nil
	}
	return upright(img)
}

// orientation returns the EXIF orientation tag of a JPEG, or 0 when there is none.
func orientation(b []byte) int {
	x, err := exif.Decode(bytes.NewReader(b))
	if err != nil {
		return 0
	}
	tag, err := x.Get(exif.Orientation)
	if err != nil {
		return 0
	}
	v, err := tag.Int(0)
	if err != nil {
		return 0
	}
	return v
}

// upright decodes a JPEG whose EXIF says it is rotated or mirrored and re-encodes it upright
// as PNG (fast compression: it is read once, from memory).
func upright(img Image) (Image, error) {
	// imaging applies the EXIF orientation itself while decoding.
	decoded, err := imaging.Decode(bytes.NewReader(img.Data), imaging.AutoOrientation(true))
	if err != nil {
		return Image{}, fmt.Errorf("%w: jpeg: %v", ErrUndecodable, err)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, decoded); err != nil {
		return Image{}, fmt.Errorf("re-encoding upright image: %w", err)
	}
	bounds := decoded.Bounds()
	img.Data, img.Width, img.Height = buf.Bytes(), bounds.Dx(), bounds.Dy()
	return img, nil
}
