package textlayer

import (
	"bytes"
	"crypto/md5"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"regexp"
	"slices"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// PDF/A-2b (ISO 19005-2, conformance B: the look of the pages preserved), made in the same
// incremental update as the text layers, from what the original has: the catalog gets XMP
// metadata that names part 2 conformance B and repeats the document information dictionary,
// and an output intent with an sRGB ICC profile; the trailer gets an ID if it has none. What
// cannot be added without rewriting the original (its fonts embedded, the header's binary
// comment) is checked, and a PDF without it is refused (ErrNotPDFA), never passed off as
// PDF/A. What is and is not checked: README, Searchable PDFs.

// srgb is Debian's icc-profiles-free sRGB profile (zlib licence: icc/COPYRIGHT).
//
//go:embed icc/sRGB.icc
var srgb []byte

// ErrNotPDFA is AddPDFA's error for a PDF that cannot be made PDF/A-2b by an update.
var ErrNotPDFA = errors.New("the PDF cannot be made PDF/A-2b")

// AddPDFA is Add, whose answer is also PDF/A-2b.
func AddPDFA(src []byte, layers []Layer) ([]byte, error) {
	return add(src, layers, true)
}

// HasBinaryComment reports whether pdf's header line is followed by the comment PDF/A wants
// (6.1.2): % and at least four bytes above 127.
func HasBinaryComment(pdf []byte) bool {
	if !bytes.HasPrefix(pdf, []byte("%PDF-1.")) {
		return false
	}
	i := bytes.IndexAny(pdf[:min(len(pdf), 64)], "\r\n")
	if i < 0 {
		return false
	}
	rest := bytes.TrimLeft(pdf[i:], "\r\n")
	if len(rest) < 5 || rest[0] != '%' {
		return false
	}
	for _, c := range rest[1:5] {
		if c < 128 {
			return false
		}
	}
	return true
}

// makePDFA adds to u what makes the document PDF/A-2b, after checking what it cannot add.
func (u *update) makePDFA(src []byte) error {
	if !HasBinaryComment(src) {
		return fmt.Errorf("%w: its header is not followed by a binary comment line (PDF/A-2 6.1.2): rewrite it first (e.g. qpdf in.pdf out.pdf)", ErrNotPDFA)
	}
	if err := u.checkFonts(); err != nil {
		return err
	}
	if u.ctx.Root == nil {
		return errors.New("the PDF has no catalog")
	}
	root, err := u.ctx.DereferenceDict(*u.ctx.Root)
	if err != nil || root == nil {
		return fmt.Errorf("its catalog: %v", err)
	}
	catalog := root.Clone().(types.Dict)
	if o, ok := u.objs[u.ctx.Root.ObjectNumber.Value()]; ok {
		catalog = o.(types.Dict)
	}
	xmp := u.xmp()
	catalog["Metadata"] = u.add(types.StreamDict{Dict: types.Dict{"Type": types.Name("Metadata"), "Subtype": types.Name("XML")}, Raw: xmp})
	profile := u.add(flateStream(types.Dict{"N": types.Integer(3)}, srgb))
	catalog["OutputIntents"] = types.Array{types.Dict{
		"Type": types.Name("OutputIntent"), "S": types.Name("GTS_PDFA1"),
		"OutputConditionIdentifier": types.StringLiteral("sRGB IEC61966-2.1"),
		"Info":                      types.StringLiteral("sRGB IEC61966-2.1"),
		"DestOutputProfile":         profile,
	}}
	u.objs[u.ctx.Root.ObjectNumber.Value()] = catalog
	if len(u.ctx.ID) < 2 {
		sum := md5.Sum(src)
		id := types.HexLiteral(hex.EncodeToString(sum[:]))
		u.ctx.ID = types.Array{id, id}
	}
	return nil
}

// checkFonts refuses a document with a font whose program is not embedded, on any page or in
// any form a page draws (PDF/A-2 6.2.11.4).
func (u *update) checkFonts() error {
	seen := map[int]bool{}
	for i := 1; i <= u.ctx.PageCount; i++ {
		_, _, inh, err := u.ctx.PageDict(i, false)
		if err != nil || inh == nil {
			return fmt.Errorf("page %d: %v", i, err)
		}
		if err := u.checkResourceFonts(inh.Resources, seen, 0); err != nil {
			return fmt.Errorf("%w: page %d: %v", ErrNotPDFA, i, err)
		}
	}
	return nil
}

func (u *update) checkResourceFonts(res types.Dict, seen map[int]bool, depth int) error {
	if res == nil || depth > maxFormDepth {
		return nil
	}
	fonts, _ := u.ctx.DereferenceDict(res["Font"])
	for name, f := range fonts {
		if err := u.checkFont(f); err != nil {
			return fmt.Errorf("font /%s: %v", name, err)
		}
	}
	xo, _ := u.ctx.DereferenceDict(res["XObject"])
	for _, o := range xo {
		if ref, ok := o.(types.IndirectRef); ok {
			if seen[ref.ObjectNumber.Value()] {
				continue
			}
			seen[ref.ObjectNumber.Value()] = true
		}
		sd, _, err := u.ctx.DereferenceStreamDict(o)
		if err != nil || sd == nil {
			continue
		}
		if st, _ := sd.Dict["Subtype"].(types.Name); st == "Form" {
			r, _ := u.ctx.DereferenceDict(sd.Dict["Resources"])
			if err := u.checkResourceFonts(r, seen, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkFont is nil when font's program is in the file (Type 3 fonts are content streams).
func (u *update) checkFont(font types.Object) error {
	d, err := u.ctx.DereferenceDict(font)
	if err != nil || d == nil {
		return fmt.Errorf("unreadable (%v)", err)
	}
	sub, _ := d["Subtype"].(types.Name)
	switch sub {
	case "Type3":
		return nil
	case "Type0":
		desc, _ := u.ctx.DereferenceArray(d["DescendantFonts"])
		if len(desc) != 1 {
			return errors.New("a Type0 font without one descendant font")
		}
		return u.checkFont(desc[0])
	}
	fd, _ := u.ctx.DereferenceDict(d["FontDescriptor"])
	for _, k := range []string{"FontFile", "FontFile2", "FontFile3"} {
		if _, ok := fd[k]; ok {
			return nil
		}
	}
	base, _ := d["BaseFont"].(types.Name)
	return fmt.Errorf("%s is not embedded (PDF/A needs every font's program in the file)", base)
}

// infoKeys are the document information entries PDF/A wants repeated in the XMP (6.6.2.3.1),
// with their XMP properties.
var infoKeys = []struct{ key, prop string }{
	{"Title", "dc:title"}, {"Author", "dc:creator"}, {"Subject", "dc:description"},
	{"Keywords", "pdf:Keywords"}, {"Creator", "xmp:CreatorTool"}, {"Producer", "pdf:Producer"},
	{"CreationDate", "xmp:CreateDate"}, {"ModDate", "xmp:ModifyDate"},
}

// xmp is the document's XMP packet: PDF/A-2b's identification and the information dictionary.
func (u *update) xmp() []byte {
	info := map[string]string{}
	if u.ctx.Info != nil {
		if d, err := u.ctx.DereferenceDict(*u.ctx.Info); err == nil {
			for _, k := range infoKeys {
				o, err := u.ctx.Dereference(d[k.key])
				if err != nil || o == nil {
					continue
				}
				if s, err := types.StringOrHexLiteral(o); err == nil && s != nil {
					info[k.key] = *s
				}
			}
		}
	}
	var b bytes.Buffer
	b.WriteString("<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n")
	b.WriteString(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">` + "\n")
	b.WriteString(`<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">` + "\n")
	b.WriteString("<pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>\n")
	for _, k := range infoKeys {
		v, ok := info[k.key]
		if !ok {
			continue
		}
		e := html.EscapeString(v)
		switch k.prop {
		case "dc:title", "dc:description":
			fmt.Fprintf(&b, "<%s><rdf:Alt><rdf:li xml:lang=\"x-default\">%s</rdf:li></rdf:Alt></%s>\n", k.prop, e, k.prop)
		case "dc:creator":
			fmt.Fprintf(&b, "<%s><rdf:Seq><rdf:li>%s</rdf:li></rdf:Seq></%s>\n", k.prop, e, k.prop)
		case "xmp:CreateDate", "xmp:ModifyDate":
			if d, ok := xmpDate(v); ok {
				fmt.Fprintf(&b, "<%s>%s</%s>\n", k.prop, d, k.prop)
			}
		default:
			fmt.Fprintf(&b, "<%s>%s</%s>\n", k.prop, e, k.prop)
		}
	}
	b.WriteString("</rdf:Description></rdf:RDF></x:xmpmeta>\n")
	b.Write(slices.Repeat([]byte(" "), 512)) // room to edit in place, as XMP writers leave
	b.WriteString("\n<?xpacket end=\"w\"?>")
	return b.Bytes()
}

var pdfDate = regexp.MustCompile(`^D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz+-])?(\d{2})?'?(\d{2})?'?$`)

// xmpDate is a PDF date (D:YYYYMMDDHHmmSSOHH'mm') as XMP writes it (ISO 8601).
func xmpDate(s string) (string, bool) {
	m := pdfDate.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	out := fmt.Sprintf("%s-%s-%sT%s:%s:%s", m[1], def(m[2], "01"), def(m[3], "01"), def(m[4], "00"), def(m[5], "00"), def(m[6], "00"))
	switch m[7] {
	case "Z", "z":
		out += "Z"
	case "+", "-":
		out += m[7] + def(m[8], "00") + ":" + def(m[9], "00")
	}
	return out, true
}
