package ocr

import (
	"github.com/klippa-app/go-pdfium/enums"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
)

// pageDepth is what a PDF page needs to be rendered in without losing what Tesseract reads:
// black and white (fax and office scans, black text), gray, or colour.
type pageDepth int

const (
	depthBilevel pageDepth = iota
	depthGray
	depthColour
)

func (d pageDepth) String() string {
	return [...]string{"bilevel", "gray", "colour"}[d]
}

// maxDepthObjects bounds the objects depth looks at (a page of a million tiny paths must not
// cost more to classify than to render); past it the page counts as colour.
const maxDepthObjects = 20000

// depth classifies page i from its objects, without rendering it: images by their bits per
// pixel and colour space, text and paths by their fill and stroke colours, form XObjects by
// what they hold. Shadings, and anything it cannot tell, count as colour.
func (d openPDF) depth(i int) pageDepth {
	n, err := d.inst.FPDFPage_CountObjects(&requests.FPDFPage_CountObjects{Page: d.page(i)})
	if err != nil {
		return depthColour
	}
	seen := 0
	worst := depthBilevel
	for k := 0; k < n.Count && worst < depthColour; k++ {
		o, err := d.inst.FPDFPage_GetObject(&requests.FPDFPage_GetObject{Page: d.page(i), Index: k})
		if err != nil {
			return depthColour
		}
		worst = max(worst, d.objectDepth(i, o.PageObject, 0, &seen))
	}
	return worst
}

func (d openPDF) objectDepth(i int, o references.FPDF_PAGEOBJECT, level int, seen *int) pageDepth {
	if *seen++; *seen > maxDepthObjects || level > 8 {
		return depthColour
	}
	t, err := d.inst.FPDFPageObj_GetType(&requests.FPDFPageObj_GetType{PageObject: o})
	if err != nil {
		return depthColour
	}
	switch t.Type {
	case enums.FPDF_PAGEOBJ_IMAGE:
		m, err := d.inst.FPDFImageObj_GetImageMetadata(&requests.FPDFImageObj_GetImageMetadata{ImageObject: o, Page: d.page(i)})
		if err != nil {
			return depthColour
		}
		md := m.ImageMetadata
		switch {
		case md.BitsPerPixel == 1:
			return max(depthBilevel, d.paintDepth(o, true))
		case md.BitsPerPixel <= 8 && md.Colorspace != enums.FPDF_COLORSPACE_INDEXED:
			return depthGray
		}
		return depthColour
	case enums.FPDF_PAGEOBJ_TEXT, enums.FPDF_PAGEOBJ_PATH:
		return d.paintDepth(o, false)
	case enums.FPDF_PAGEOBJ_FORM:
		n, err := d.inst.FPDFFormObj_CountObjects(&requests.FPDFFormObj_CountObjects{PageObject: o})
		if err != nil {
			return depthColour
		}
		worst := depthBilevel
		for k := 0; k < n.Count && worst < depthColour; k++ {
			c, err := d.inst.FPDFFormObj_GetObject(&requests.FPDFFormObj_GetObject{PageObject: o, Index: uint64(k)})
			if err != nil {
				return depthColour
			}
			worst = max(worst, d.objectDepth(i, c.PageObject, level+1, seen))
		}
		return worst
	}
	return depthColour
}

// paintDepth is the depth of an object's fill and stroke colours (for a 1-bit image, its fill:
// an image mask is painted in it).
func (d openPDF) paintDepth(o references.FPDF_PAGEOBJECT, fillOnly bool) pageDepth {
	worst := depthBilevel
	if f, err := d.inst.FPDFPageObj_GetFillColor(&requests.FPDFPageObj_GetFillColor{PageObject: o}); err == nil {
		worst = max(worst, colourDepth(f.FillColor.R, f.FillColor.G, f.FillColor.B))
	}
	if fillOnly {
		return worst
	}
	if s, err := d.inst.FPDFPageObj_GetStrokeColor(&requests.FPDFPageObj_GetStrokeColor{PageObject: o}); err == nil {
		worst = max(worst, colourDepth(s.StrokeColor.R, s.StrokeColor.G, s.StrokeColor.B))
	}
	return worst
}

func colourDepth(r, g, b uint) pageDepth {
	switch {
	case r != g || g != b:
		return depthColour
	case r == 0 || r == 255:
		return depthBilevel
	}
	return depthGray
}

// hideText makes page i's text objects, in its forms too, invisible in the page as loaded in
// this instance (the document is never saved), so that a rendering shows the rest (images,
// paths): for ocr_mode=redo_ocr.
func (d openPDF) hideText(i int) error {
	n, err := d.inst.FPDFPage_CountObjects(&requests.FPDFPage_CountObjects{Page: d.page(i)})
	if err != nil {
		return err
	}
	for k := range n.Count {
		o, err := d.inst.FPDFPage_GetObject(&requests.FPDFPage_GetObject{Page: d.page(i), Index: k})
		if err != nil {
			return err
		}
		if err := d.hideObjectText(o.PageObject, 0); err != nil {
			return err
		}
	}
	return nil
}

func (d openPDF) hideObjectText(o references.FPDF_PAGEOBJECT, level int) error {
	t, err := d.inst.FPDFPageObj_GetType(&requests.FPDFPageObj_GetType{PageObject: o})
	if err != nil {
		return err
	}
	switch {
	case t.Type == enums.FPDF_PAGEOBJ_TEXT:
		_, err := d.inst.FPDFTextObj_SetTextRenderMode(&requests.FPDFTextObj_SetTextRenderMode{PageObject: o, TextRenderMode: enums.FPDF_TEXTRENDERMODE_INVISIBLE})
		return err
	case t.Type != enums.FPDF_PAGEOBJ_FORM || level > 8:
		return nil
	}
	n, err := d.inst.FPDFFormObj_CountObjects(&requests.FPDFFormObj_CountObjects{PageObject: o})
	if err != nil {
		return err
	}
	for k := range n.Count {
		c, err := d.inst.FPDFFormObj_GetObject(&requests.FPDFFormObj_GetObject{PageObject: o, Index: uint64(k)})
		if err != nil {
			return err
		}
		if err := d.hideObjectText(c.PageObject, level+1); err != nil {
			return err
		}
	}
	return nil
}
