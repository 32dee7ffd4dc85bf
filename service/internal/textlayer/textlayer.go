// Package textlayer lays the text Tesseract recognised over the pages of the PDF it was read
// from: the original PDF, byte for byte, followed by an incremental update (ISO 32000-1, 7.5.6)
// that adds to each recognised page an invisible text layer. Nothing of the original is
// rewritten: images, vector text and drawings, colour spaces, annotations, links, bookmarks,
// metadata (and signatures, over the revision they sign) stay as they were.
//
// Each layer is the one-page PDF Tesseract's renderer writes with textonly_pdf (the words in its
// glyphless font, text render mode 3), made from the page as PDFium rendered it. It is grafted
// as a form XObject, drawn over the page with the matrix that maps the rendered image onto the
// page's crop box (its /Rotate undone), after the page's own content, which is wrapped in q/Q
// so that its graphics state cannot move the layer. The font is written once for all pages.
//
// PDFs are parsed with pdfcpu (Apache-2.0). This runs in the OCR workers, never in the API
// process: the input is the client's.
package textlayer

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

func init() {
	// pdfcpu would otherwise write a configuration directory under $HOME on first use.
	api.DisableConfigDir()
}

// Layer is the recognised text of one page of the document.
type Layer struct {
	Page int    // the page, from 0
	PDF  []byte // the one-page text-only PDF Tesseract wrote for it (nil: none, with Redo)
	// Redo removes the page's earlier OCR layer (its invisible text, strip.go) before this one
	// is laid over it: ocr_mode=redo_ocr.
	Redo bool
	// Rotate (a quarter turn) and Skew (degrees) say how the page was turned, clockwise, before
	// it was read (rotate_pages, deskew): the page is displayed so turned (/Rotate for a
	// quarter turn; its content drawn turned about the crop box's centre for a skew), and the
	// layer laid over it upright.
	Rotate int
	Skew   float64
}

// ErrEncrypted is Add's error for an encrypted PDF: the update's streams would have to be
// encrypted with the document's key.
var ErrEncrypted = errors.New("the PDF is encrypted")

// Add returns src with each layer over its page.
func Add(src []byte, layers []Layer) ([]byte, error) {
	return add(src, layers, false)
}

func add(src []byte, layers []Layer, pdfa bool) ([]byte, error) {
	ctx, err := read(src)
	if err != nil {
		return nil, err
	}
	if ctx.Encrypt != nil {
		return nil, ErrEncrypted
	}
	if err := ctx.EnsurePageCount(); err != nil {
		return nil, err
	}
	u := newUpdate(ctx)
	var font types.Object
	for _, l := range layers {
		if l.Page < 0 || l.Page >= ctx.PageCount {
			return nil, fmt.Errorf("page %d of a %d-page PDF", l.Page+1, ctx.PageCount)
		}
		var lp *layerPage
		if l.PDF != nil || !l.Redo {
			if lp, err = readLayer(l.PDF); err != nil {
				return nil, fmt.Errorf("page %d's text layer: %w", l.Page+1, err)
			}
			if font == nil && lp.font != nil {
				if font, err = u.copyFrom(lp.ctx, lp.font); err != nil {
					return nil, fmt.Errorf("copying the text layer's font: %w", err)
				}
			}
		}
		if err := u.addLayer(l, lp, font); err != nil {
			return nil, fmt.Errorf("page %d: %w", l.Page+1, err)
		}
	}
	if pdfa {
		if err := u.makePDFA(src); err != nil {
			return nil, err
		}
	}
	return u.write(src)
}

// PageSize is the size of a layer's page in points: the image Tesseract read, at its DPI.
func PageSize(layer []byte) (w, h float64, err error) {
	lp, err := readLayer(layer)
	if err != nil {
		return 0, 0, err
	}
	return lp.w, lp.h, nil
}

// Read parses a PDF with pdfcpu, as Add does (relaxed: what readers accept), its pages counted.
func Read(b []byte) (*model.Context, error) {
	ctx, err := read(b)
	if err != nil {
		return nil, err
	}
	return ctx, ctx.EnsurePageCount()
}

func read(b []byte) (*model.Context, error) {
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	return api.ReadContext(bytes.NewReader(b), conf)
}

// layerPage is a text-only page: its size, its content and its font (nil when the page has no
// words).
type layerPage struct {
	ctx     *model.Context
	w, h    float64
	content []byte
	font    types.Object // the font resource, in ctx
	name    string       // its resource name
}

func readLayer(b []byte) (*layerPage, error) {
	ctx, err := read(b)
	if err != nil {
		return nil, err
	}
	if err := ctx.EnsurePageCount(); err != nil {
		return nil, err
	}
	d, _, inh, err := ctx.PageDict(1, false)
	if err != nil || d == nil || inh == nil || inh.MediaBox == nil {
		return nil, fmt.Errorf("no page (%v)", err)
	}
	content, err := ctx.PageContent(d, 1)
	if err != nil && !errors.Is(err, model.ErrNoContent) {
		return nil, err
	}
	lp := &layerPage{ctx: ctx, w: inh.MediaBox.Width(), h: inh.MediaBox.Height(), content: content}
	fonts, _ := ctx.DereferenceDict(inh.Resources["Font"])
	if len(fonts) > 1 {
		return nil, fmt.Errorf("%d fonts, Tesseract writes one", len(fonts))
	}
	for name, f := range fonts {
		lp.name, lp.font = name, f
	}
	return lp, nil
}

// update is what is appended: new objects and new versions of the pages.
type update struct {
	ctx    *model.Context
	next   int // the next free object number
	objs   map[int]types.Object
	open   types.Object // the shared "q" stream that opens a page's own content
	copied map[int]int  // a layer object's number -> its copy's
	// stripped: a form's number -> its copy without invisible text (nil: it had none)
	stripped map[int]*types.IndirectRef
}

func newUpdate(ctx *model.Context) *update {
	next := 1
	if ctx.Size != nil {
		next = *ctx.Size
	}
	for nr := range ctx.Table {
		next = max(next, nr+1)
	}
	return &update{ctx: ctx, next: next, objs: map[int]types.Object{}}
}

// add makes o a new object and returns its reference.
func (u *update) add(o types.Object) types.IndirectRef {
	nr := u.next
	u.next++
	u.objs[nr] = o
	return *types.NewIndirectRef(nr, 0)
}

func flateStream(d types.Dict, data []byte) types.StreamDict {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	d["Filter"] = types.Name("FlateDecode")
	return types.StreamDict{Dict: d, Raw: z.Bytes()}
}

// addLayer draws lp over page l.Page (lp nil: no new layer), its earlier layer removed first
// with l.Redo, the page turned first as l says.
func (u *update) addLayer(l Layer, lp *layerPage, font types.Object) error {
	i := l.Page
	page, ref, inh, err := u.ctx.PageDict(i+1, false)
	if err != nil || page == nil || ref == nil || inh == nil || inh.MediaBox == nil {
		return fmt.Errorf("the page could not be read (%v)", err)
	}
	if lp != nil && (lp.w <= 0 || lp.h <= 0) {
		return fmt.Errorf("the text layer's page is %gx%g", lp.w, lp.h)
	}
	resources, err := u.pageResources(page, inh)
	if err != nil {
		return err
	}
	contents, err := u.contents(page)
	if err != nil {
		return err
	}
	stripped := false
	if l.Redo {
		if contents, stripped, err = u.stripPage(i, contents, resources); err != nil {
			return err
		}
	}
	words := lp != nil && len(bytes.TrimSpace(lp.content)) > 0 && font != nil
	turn := l.Rotate%360 != 0 || l.Skew != 0
	if !words && !stripped && !turn {
		return nil // no words on this page, and nothing removed or turned
	}
	newPage := page.Clone().(types.Dict)
	rotate := inh.Rotate
	if l.Rotate%360 != 0 {
		rotate = ((inh.Rotate+l.Rotate)%360 + 360) % 360
		newPage["Rotate"] = types.Integer(rotate)
	}
	if l.Skew != 0 && len(contents) > 0 { // the content drawn turned, within q/Q
		turnIt := u.add(types.StreamDict{Dict: types.Dict{}, Raw: []byte(fmt.Sprintf("q %s cm\n", skew(pageBox(inh), l.Skew)))})
		contents = append(append(types.Array{turnIt}, contents...), u.add(types.StreamDict{Dict: types.Dict{}, Raw: []byte("\nQ\n")}))
	}
	newPage["Resources"] = resources
	newPage["Contents"] = contents
	u.objs[ref.ObjectNumber.Value()] = newPage
	if !words {
		return nil
	}
	form := u.add(flateStream(types.Dict{"Type": types.Name("XObject"), "Subtype": types.Name("Form"),
		"BBox": types.NewNumberArray(0, 0, lp.w, lp.h), "Resources": types.Dict{"Font": types.Dict{lp.name: font}}}, lp.content))
	m := placement(pageBox(inh), rotate, lp.w, lp.h)
	name := freeName(resources, "OCR")
	draw := fmt.Sprintf("q %s cm /%s Do Q\n", m, name)
	switch {
	case len(contents) > 0 && l.Skew != 0: // wrapped above
		contents = append(contents, u.add(types.StreamDict{Dict: types.Dict{}, Raw: []byte(draw)}))
	case len(contents) > 0:
		if u.open == nil {
			u.open = u.add(types.StreamDict{Dict: types.Dict{}, Raw: []byte("q\n")})
		}
		draw = "\nQ\n" + draw
		contents = append(append(types.Array{u.open}, contents...), u.add(types.StreamDict{Dict: types.Dict{}, Raw: []byte(draw)}))
	default:
		contents = types.Array{u.add(types.StreamDict{Dict: types.Dict{}, Raw: []byte(draw)})}
	}
	newPage["Contents"] = contents
	resources["XObject"].(types.Dict)[name] = form
	return nil
}

// pageResources is a copy of the page's resources (its own or inherited) with a copy of their
// XObject dictionary, to which the layer is added: resources shared with other pages stay as
// they are.
func (u *update) pageResources(page types.Dict, inh *model.InheritedPageAttrs) (types.Dict, error) {
	var res types.Dict
	if o, ok := page["Resources"]; ok {
		d, err := u.ctx.DereferenceDict(o)
		if err != nil {
			return nil, fmt.Errorf("its resources: %w", err)
		}
		res = d
	} else {
		res = inh.Resources
	}
	out := types.Dict{}
	for k, v := range res {
		out[k] = v
	}
	xo := types.Dict{}
	if o, ok := out["XObject"]; ok {
		d, err := u.ctx.DereferenceDict(o)
		if err != nil {
			return nil, fmt.Errorf("its XObjects: %w", err)
		}
		for k, v := range d {
			xo[k] = v
		}
	}
	out["XObject"] = xo
	return out, nil
}

// contents lists the page's content streams.
func (u *update) contents(page types.Dict) (types.Array, error) {
	o, ok := page["Contents"]
	if !ok || o == nil {
		return nil, nil
	}
	if ref, isRef := o.(types.IndirectRef); isRef {
		d, err := u.ctx.Dereference(ref)
		if err != nil {
			return nil, fmt.Errorf("its content: %w", err)
		}
		if a, isArray := d.(types.Array); isArray {
			return append(types.Array{}, a...), nil
		}
		return types.Array{ref}, nil
	}
	if a, isArray := o.(types.Array); isArray {
		return append(types.Array{}, a...), nil
	}
	return nil, fmt.Errorf("its /Contents is a %T", o)
}

func freeName(res types.Dict, base string) string {
	xo, _ := res["XObject"].(types.Dict)
	name := base
	for n := 1; ; n++ {
		if _, taken := xo[name]; !taken {
			return name
		}
		name = fmt.Sprintf("%s%d", base, n)
	}
}

// copyFrom copies o, and every object it refers to, from the layer's context into the update.
func (u *update) copyFrom(from *model.Context, o types.Object) (types.Object, error) {
	if u.copied == nil {
		u.copied = map[int]int{}
	}
	switch v := o.(type) {
	case types.IndirectRef:
		nr := v.ObjectNumber.Value()
		if c, ok := u.copied[nr]; ok {
			return *types.NewIndirectRef(c, 0), nil
		}
		target, err := from.Dereference(v)
		if err != nil {
			return nil, err
		}
		ref := u.add(nil)
		u.copied[nr] = ref.ObjectNumber.Value()
		c, err := u.copyFrom(from, target)
		if err != nil {
			return nil, err
		}
		u.objs[ref.ObjectNumber.Value()] = c
		return ref, nil
	case types.Dict:
		out := types.Dict{}
		for k, e := range v {
			c, err := u.copyFrom(from, e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case types.Array:
		out := make(types.Array, len(v))
		for i, e := range v {
			c, err := u.copyFrom(from, e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case types.StreamDict:
		d, err := u.copyFrom(from, v.Dict)
		if err != nil {
			return nil, err
		}
		return types.StreamDict{Dict: d.(types.Dict), Raw: v.Raw}, nil
	}
	return o, nil
}

// box is a rectangle in default user space.
type box struct{ x0, y0, x1, y1 float64 }

// pageBox is what PDFium renders of a page: its crop box within its media box.
func pageBox(inh *model.InheritedPageAttrs) box {
	m := inh.MediaBox
	b := box{m.LL.X, m.LL.Y, m.UR.X, m.UR.Y}
	if c := inh.CropBox; c != nil {
		b = box{max(b.x0, c.LL.X), max(b.y0, c.LL.Y), min(b.x1, c.UR.X), min(b.y1, c.UR.Y)}
		if b.x1 <= b.x0 || b.y1 <= b.y0 { // no overlap: PDFium shows the media box
			b = box{m.LL.X, m.LL.Y, m.UR.X, m.UR.Y}
		}
	}
	return b
}

// matrix is a PDF transformation [a b c d e f]: x' = a x + c y + e, y' = b x + d y + f.
type matrix [6]float64

func (m matrix) String() string {
	parts := make([]string, 6)
	for i, v := range m {
		parts[i] = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", v), "0"), ".")
		if parts[i] == "-0" || parts[i] == "" {
			parts[i] = "0"
		}
	}
	return strings.Join(parts, " ")
}

// skew is the matrix that turns a page's content clockwise (as displayed) by deg degrees about
// the centre of b. /Rotate turns the display by quarter turns, which keep the sense of a turn.
func skew(b box, deg float64) matrix {
	r := deg * math.Pi / 180
	c, s := math.Cos(r), math.Sin(r)
	cx, cy := (b.x0+b.x1)/2, (b.y0+b.y1)/2
	// x' = c x + s y, y' = -s x + c y (clockwise with y up), the centre kept.
	return matrix{c, -s, s, c, cx - (c*cx + s*cy), cy - (-s*cx + c*cy)}
}

// placement maps a layer of w x h (the page as rendered, upright: rotated by /Rotate rotate,
// clockwise) onto the box b in the page's user space.
func placement(b box, rotate int, w, h float64) matrix {
	cw, ch := b.x1-b.x0, b.y1-b.y0
	rotate = ((rotate % 360) + 360) % 360
	dw, dh := cw, ch
	if rotate == 90 || rotate == 270 {
		dw, dh = ch, cw
	}
	sx, sy := dw/w, dh/h
	var r matrix // displayed (dx, dy) -> user space
	switch rotate {
	case 90:
		r = matrix{0, 1, -1, 0, b.x0 + cw, b.y0}
	case 180:
		r = matrix{-1, 0, 0, -1, b.x0 + cw, b.y0 + ch}
	case 270:
		r = matrix{0, -1, 1, 0, b.x0, b.y0 + ch}
	default:
		r = matrix{1, 0, 0, 1, b.x0, b.y0}
	}
	return matrix{sx * r[0], sx * r[1], sy * r[2], sy * r[3], r[4], r[5]}
}
