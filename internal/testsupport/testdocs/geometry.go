package testdocs

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// GeometryPage says how a page of GeometryPDF is laid out.
type GeometryPage struct {
	Name        string
	BornDigital bool // real text (BornDigitalLines), no OCR expected by default
}

// GeometryPDF is a scan of phototest.tif (640 x 480 at 300 DPI) on pages of every geometry a
// text layer must follow: plain, turned by /Rotate 90, 180 and 270 (the image stored turned
// the other way, as scanners store landscape pages), a crop box off a larger media box's origin,
// a media box off the origin, a colour JPEG, and a born-digital page in between.
func GeometryPDF() ([]byte, []GeometryPage, error) {
	parts, err := scanParts()
	if err != nil {
		return nil, nil, err
	}
	g := parts[0]
	w, h := float64(g.Rect.Dx())*72/ScanDPI, float64(g.Rect.Dy())*72/ScanDPI
	d := &doc{title: "readocr geometry test"}
	var pages []GeometryPage
	addScan := func(name string, img *image.Gray, p docPage) error {
		im, err := d.g4Image(img)
		if err != nil {
			return err
		}
		p.images = []int{im}
		d.pages = append(d.pages, p)
		pages = append(pages, GeometryPage{Name: name})
		return nil
	}
	steps := []func() error{
		func() error {
			return addScan("plain", g, docPage{media: [4]float64{0, 0, w, h}, content: fullPage(w, h)})
		},
		func() error {
			return addScan("rotate 90", turn(g, 270), docPage{media: [4]float64{0, 0, h, w}, rotate: 90, content: fullPage(h, w)})
		},
		func() error {
			return addScan("rotate 180", turn(g, 180), docPage{media: [4]float64{0, 0, w, h}, rotate: 180, content: fullPage(w, h)})
		},
		func() error {
			return addScan("rotate 270", turn(g, 90), docPage{media: [4]float64{0, 0, h, w}, rotate: 270, content: fullPage(h, w)})
		},
		func() error {
			d.pages = append(d.pages, bornDigital(0))
			pages = append(pages, GeometryPage{Name: "born-digital", BornDigital: true})
			return nil
		},
		func() error {
			crop := [4]float64{40, 30, 40 + w, 30 + h}
			return addScan("crop box", g, docPage{media: [4]float64{0, 0, w + 100, h + 80}, crop: &crop,
				content: fmt.Sprintf("q %g 0 0 %g 40 30 cm /Im0 Do Q", w, h)})
		},
		func() error {
			return addScan("media box off the origin", g, docPage{media: [4]float64{-50, -60, w - 50, h - 60},
				content: fmt.Sprintf("q %g 0 0 %g -50 -60 cm /Im0 Do Q", w, h)})
		},
		func() error {
			var j bytes.Buffer
			if err := jpeg.Encode(&j, Colourise(g, 0), &jpeg.Options{Quality: 85}); err != nil {
				return err
			}
			im := d.w.addStream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode",
				g.Rect.Dx(), g.Rect.Dy()), j.Bytes(), false)
			d.pages = append(d.pages, docPage{media: [4]float64{0, 0, w, h}, images: []int{im}, content: fullPage(w, h)})
			pages = append(pages, GeometryPage{Name: "colour"})
			return nil
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, nil, err
		}
	}
	return d.bytes(), pages, nil
}

// turn rotates g clockwise by deg (90, 180 or 270).
func turn(g *image.Gray, deg int) *image.Gray {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	var out *image.Gray
	if deg == 180 {
		out = image.NewGray(image.Rect(0, 0, w, h))
	} else {
		out = image.NewGray(image.Rect(0, 0, h, w))
	}
	for y := range h {
		for x := range w {
			v := g.Pix[y*g.Stride+x]
			switch deg {
			case 90:
				out.Pix[x*out.Stride+(h-1-y)] = v
			case 180:
				out.Pix[(h-1-y)*out.Stride+(w-1-x)] = v
			case 270:
				out.Pix[(w-1-x)*out.Stride+y] = v
			}
		}
	}
	return out
}
