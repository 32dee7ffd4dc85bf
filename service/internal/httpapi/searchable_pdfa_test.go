package httpapi

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/service/internal/textlayer"
)

// output_type=pdfa: what is checked here of PDF/A-2b (there is no veraPDF on these machines),
// each requirement readocr implements, on the answer parsed again: the header's binary comment
// line (6.1.2); a trailer ID of two strings (6.1.3); XMP metadata in the catalog, unfiltered,
// well-formed XML in an xpacket, naming part 2 and conformance B (6.6.4), and repeating the
// document information's title and producer (6.6.2.3); one output intent, GTS_PDFA1, whose
// profile is an RGB ICC profile (6.2.3), the sRGB file shipped; every font of every page and
// form, the text layer's included, embedded (6.2.11.4); qpdf --check passes; the words are those
// of output_type=pdf. A PDF with a font not embedded, or without the binary comment line, is
// 422 not_pdfa_convertible.
func TestSearchablePDFA(t *testing.T) {
	needTools(t)
	h := newHarness(t, options{})
	scan, err := testdocs.TitledBilevelScanPDF(2, "Scanned report, 2 pages")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "scan.pdf"), scan, 0o600)
	// qpdf writes the binary comment line; the test documents' writer does not.
	if out, err := exec.Command("qpdf", filepath.Join(dir, "scan.pdf"), filepath.Join(dir, "rewritten.pdf")).CombinedOutput(); err != nil {
		t.Fatalf("qpdf: %v %s", err, out)
	}
	src, _ := os.ReadFile(filepath.Join(dir, "rewritten.pdf"))
	out := searchable(t, h, src, map[string]string{"format": "pdf", "output_type": "pdfa"})
	plain := searchable(t, h, src, map[string]string{"format": "pdf"})
	b, _ := os.ReadFile(out)
	if !bytes.HasPrefix(b, src) {
		t.Error("the original bytes were changed")
	}
	if !textlayer.HasBinaryComment(b) {
		t.Errorf("no binary comment after the header: %q", b[:20])
	}
	ctx, err := textlayer.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ctx.ID) != 2 {
		t.Errorf("trailer ID %v, want two strings", ctx.ID)
	}
	root, err := ctx.DereferenceDict(*ctx.Root)
	if err != nil {
		t.Fatal(err)
	}
	md, _, err := ctx.DereferenceStreamDict(root["Metadata"])
	if err != nil || md == nil {
		t.Fatalf("no metadata stream in the catalog (%v)", err)
	}
	if _, filtered := md.Dict["Filter"]; filtered || md.Dict.NameEntry("Subtype") == nil || *md.Dict.NameEntry("Subtype") != "XML" {
		t.Errorf("metadata stream %v: want /Subtype /XML, no /Filter", md.Dict)
	}
	props := xmpProperties(t, md.Raw)
	for k, want := range map[string]string{"part": "2", "conformance": "B"} {
		if props[k] != want {
			t.Errorf("pdfaid:%s %q, want %q", k, props[k], want)
		}
	}
	if ctx.Info == nil {
		t.Fatal("the answer has no document information")
	}
	info, err := ctx.DereferenceDict(*ctx.Info)
	if err != nil {
		t.Fatal(err)
	}
	for key, prop := range map[string]string{"Title": "title", "Producer": "Producer"} {
		o, _ := ctx.Dereference(info[key])
		s, err := types.StringOrHexLiteral(o)
		if err != nil || s == nil {
			t.Fatalf("document information %s: %v", key, err)
		}
		if props[prop] != *s {
			t.Errorf("XMP %s %q, document information %s %q", prop, props[prop], key, *s)
		}
	}
	intents, err := ctx.DereferenceArray(root["OutputIntents"])
	if err != nil || len(intents) != 1 {
		t.Fatalf("output intents %v (%v)", intents, err)
	}
	intent, _ := ctx.DereferenceDict(intents[0])
	if s := intent.NameEntry("S"); s == nil || *s != "GTS_PDFA1" {
		t.Errorf("output intent /S %v", s)
	}
	icc, _, err := ctx.DereferenceStreamDict(intent["DestOutputProfile"])
	if err != nil || icc == nil || icc.Decode() != nil {
		t.Fatalf("no output profile (%v)", err)
	}
	if n := icc.Dict.IntEntry("N"); n == nil || *n != 3 || len(icc.Content) < 128 || string(icc.Content[36:40]) != "acsp" || string(icc.Content[16:20]) != "RGB " {
		t.Errorf("the output profile is not an RGB ICC profile")
	}
	if shipped, _ := os.ReadFile("../textlayer/icc/sRGB.icc"); !bytes.Equal(icc.Content, shipped) {
		t.Error("the output profile is not the sRGB profile shipped")
	}
	fonts := 0
	for i := 1; i <= ctx.PageCount; i++ {
		_, _, inh, err := ctx.PageDict(i, false)
		if err != nil {
			t.Fatal(err)
		}
		fonts += embeddedFonts(t, ctx, inh.Resources, 0)
	}
	if fonts == 0 {
		t.Error("no font found: the text layer's font was not checked")
	}
	if a, p := run(t, "pdftotext", out, "-"), run(t, "pdftotext", plain, "-"); a != p || len(strings.Fields(a)) < 100 {
		t.Errorf("words differ from output_type=pdf's (%d, %d)", len(strings.Fields(a)), len(strings.Fields(p)))
	}

	// What an update cannot make PDF/A: a font not embedded (the born-digital page's Helvetica),
	// a header without its binary comment.
	ascii := bytes.Replace(scan, []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), []byte("%PDF-1.7\n%abcd\n"), 1) // offsets kept
	for name, bad := range map[string][]byte{"font not embedded": testdocs.TextPDF([]string{"Helvetica, not embedded"}), "no binary comment": ascii} {
		r := h.postMultipart(map[string]string{"format": "pdf", "output_type": "pdfa", "ocr_mode": "force_ocr"}, "in.pdf", bad)
		if r.status != 422 || !strings.Contains(string(r.body), "not_pdfa_convertible") {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}

// xmpProperties are the XMP packet's properties by local name (an rdf:Alt or rdf:Seq's entry
// under its property's name), the packet checked as XML.
func xmpProperties(t *testing.T, packet []byte) map[string]string {
	t.Helper()
	if !bytes.HasPrefix(packet, []byte("<?xpacket begin=")) || !bytes.Contains(packet, []byte(`<?xpacket end="w"?>`)) {
		t.Errorf("the metadata is not an XMP packet")
	}
	props := map[string]string{}
	dec := xml.NewDecoder(bytes.NewReader(packet))
	var stack []xml.Name
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return props
		}
		if err != nil {
			t.Fatalf("the XMP is not well-formed XML: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			stack = append(stack, v.Name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if strings.TrimSpace(string(v)) == "" {
				continue
			}
			for k := len(stack) - 1; k >= 0; k-- {
				if stack[k].Space != "http://www.w3.org/1999/02/22-rdf-syntax-ns#" {
					props[stack[k].Local] = string(v)
					break
				}
			}
		}
	}
}

// embeddedFonts counts the fonts of res (and of the forms it draws) and fails for any whose
// program is not in the file.
func embeddedFonts(t *testing.T, ctx *model.Context, res types.Dict, depth int) int {
	t.Helper()
	if res == nil || depth > 4 {
		return 0
	}
	n := 0
	fonts, _ := ctx.DereferenceDict(res["Font"])
	for name, f := range fonts {
		d, _ := ctx.DereferenceDict(f)
		if st := d.NameEntry("Subtype"); st != nil && *st == "Type0" {
			desc, _ := ctx.DereferenceArray(d["DescendantFonts"])
			d, _ = ctx.DereferenceDict(desc[0])
		}
		fd, _ := ctx.DereferenceDict(d["FontDescriptor"])
		_, f1 := fd["FontFile"]
		_, f2 := fd["FontFile2"]
		_, f3 := fd["FontFile3"]
		if !f1 && !f2 && !f3 {
			t.Errorf("font /%s is not embedded", name)
		}
		n++
	}
	xo, _ := ctx.DereferenceDict(res["XObject"])
	for _, o := range xo {
		sd, _, _ := ctx.DereferenceStreamDict(o)
		if sd != nil && sd.Dict.NameEntry("Subtype") != nil && *sd.Dict.NameEntry("Subtype") == "Form" {
			r, _ := ctx.DereferenceDict(sd.Dict["Resources"])
			n += embeddedFonts(t, ctx, r, depth+1)
		}
	}
	return n
}
