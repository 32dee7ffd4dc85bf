// Package output turns the pages a request read into the answer in the format the client
// asked for: the original {"text": ...}, JSON with pages, words and lines, or what the tesseract
// CLI writes (hOCR, ALTO, TSV, a searchable PDF), byte for byte, with the pages joined as the CLI
// joins a multi-page TIFF's.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/ocr"
)

func init() {
	// pdfcpu would otherwise write a configuration directory under $HOME on first use.
	api.DisableConfigDir()
}

// Format is what the answer is.
type Format string

// The formats.
const (
	Text Format = "text" // {"text": ...}: the original contract
	JSON Format = "json" // text, words and lines with boxes and confidences, and pages
	HOCR Format = "hocr"
	ALTO Format = "alto"
	TSV  Format = "tsv"
	PDF  Format = "pdf" // the pages with an invisible text layer
)

// Formats lists them, for messages and the contract.
var Formats = []Format{Text, JSON, HOCR, ALTO, TSV, PDF}

// ErrFormat is the error of an unknown format or an impossible combination.
var ErrFormat = failure.New(failure.InvalidFormat, "invalid format")

// ParseFormat reads a format name ("" is Text).
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return Text, nil
	}
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Formats, f) {
		return "", failure.Detail(ErrFormat, "%q is not one of %s", s, formatList())
	}
	return f, nil
}

func formatList() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// ContentType is the media type of an answer in f.
func (f Format) ContentType() string {
	switch f {
	case HOCR:
		return "text/html; charset=utf-8" // XHTML, as tesseract writes it
	case ALTO:
		return "application/xml; charset=utf-8"
	case TSV:
		return "text/tab-separated-values; charset=utf-8"
	case PDF:
		return "application/pdf"
	}
	return "application/json"
}

// Outputs are the renderings the pages must be read into for f.
func (f Format) Outputs() ocr.Outputs {
	// A searchable PDF is made of text layers: over a PDF's pages (textlayer) or images (imagePDF).
	return ocr.Outputs{HOCR: f == HOCR, ALTO: f == ALTO, TSV: f == TSV, PDF: f == PDF, TextLayer: f == PDF}
}

// Layout reports whether f needs words and lines.
func (f Format) Layout() bool { return f == JSON }

// ErrNotAcceptable is the answer to an Accept header that no format satisfies.
var ErrNotAcceptable = failure.New(failure.NotAcceptable, "no format the client accepts")

// byMediaType is how Accept names the formats. application/json is the original contract.
var byMediaType = map[string]Format{
	"application/json":          Text,
	"text/html":                 HOCR,
	"application/xhtml+xml":     HOCR,
	"application/vnd.hocr+html": HOCR,
	"application/xml":           ALTO,
	"text/xml":                  ALTO,
	"application/alto+xml":      ALTO,
	"text/tab-separated-values": TSV,
	"application/pdf":           PDF,
}

// FromAccept picks the format an Accept header prefers ("" when it does not say: no header, or
// one that takes anything, as curl and most clients send). Quality values order the choices.
func FromAccept(accept string) (Format, error) {
	if strings.TrimSpace(accept) == "" {
		return "", nil
	}
	type choice struct {
		f    Format
		any  bool
		q    float64
		rank int
	}
	var choices []choice
	for i, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil || q <= 0 || math.IsNaN(q) {
				continue
			}
		}
		if mt == "*/*" || mt == "application/*" {
			choices = append(choices, choice{any: true, q: q, rank: i})
		} else if f, ok := byMediaType[mt]; ok {
			choices = append(choices, choice{f: f, q: q, rank: i})
		}
	}
	if len(choices) == 0 {
		return "", failure.Detail(ErrNotAcceptable, "Accept %q: this service answers application/json, text/html (hOCR), application/xml (ALTO), text/tab-separated-values or application/pdf", accept)
	}
	sort.SliceStable(choices, func(a, b int) bool { return choices[a].q > choices[b].q })
	if choices[0].any {
		return "", nil
	}
	return choices[0].f, nil
}

// Page is one page as read.
type Page struct {
	Number        int // in its document, from 1
	Width, Height int // in pixels, as read
	DPI           int // a PDF page's rendering resolution (0 for images)
	Result        ocr.Result
	// For format pdf: a JPEG page's bytes, which the PDF holds as they are (with the number
	// of its colour components), when imageinput.Page.KeepsJPEG.
	JPEG           []byte
	JPEGComponents int
	// Error is a page that could not be read (a job's page: the synchronous /read_ocr fails
	// whole instead). Its text is a mark saying so; its renderings are empty.
	Error *PageError
}

// PageError is why a page was not read: the code and message /read_ocr would have answered.
type PageError struct {
	Page    int    `json:"page"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Mark is what the text formats hold in place of a page not read.
func (e PageError) Mark() string {
	return fmt.Sprintf("[page %d not read: %s: %s]", e.Page, e.Code, e.Message)
}

// pageErrors lists the pages not read (nil when every page was).
func pageErrors(pages []Page) []PageError {
	var errs []PageError
	for _, p := range pages {
		if p.Error != nil {
			errs = append(errs, *p.Error)
		}
	}
	return errs
}

// read drops the pages not read (for the renderings that have no way to mark one).
func read(pages []Page) []Page {
	out := make([]Page, 0, len(pages))
	for _, p := range pages {
		if p.Error == nil {
			out = append(out, p)
		}
	}
	return out
}

// Encode writes pages (in order) as f. version is Tesseract's (for the heads of hOCR and ALTO).
func Encode(w io.Writer, f Format, pages []Page, version string) error {
	switch f {
	case Text:
		return writeJSON(w, struct {
			Text       string      `json:"text"`
			PageErrors []PageError `json:"page_errors,omitempty"`
		}{JoinText(pages), pageErrors(pages)})
	case JSON:
		return writeJSON(w, jsonBody(pages))
	case HOCR:
		return write(w, hocrHead(version), pages, func(p Page) string { return p.Result.HOCR + xmlMark(p) }, hocrTail)
	case ALTO:
		return write(w, altoHead(version), pages, func(p Page) string { return p.Result.ALTO + xmlMark(p) }, altoTail)
	case TSV:
		return write(w, tsvHead, read(pages), func(p Page) string { return p.Result.TSV }, "")
	case PDF:
		return imagePDF(w, read(pages))
	}
	return fmt.Errorf("unknown format %q", f)
}

// pageSeparator is what the CLI's text renderer writes before every page after the first
// (Tesseract's page_separator variable, a form feed by default).
const pageSeparator = "\f"

// JoinText is the pages' text as `tesseract DOCUMENT -` prints it.
func JoinText(pages []Page) string {
	var b strings.Builder
	for i, p := range pages {
		if i > 0 {
			b.WriteString(pageSeparator)
		}
		if p.Error != nil {
			b.WriteString(p.Error.Mark() + "\n")
			continue
		}
		b.WriteString(p.Result.Text)
	}
	return b.String()
}

// xmlMark is a comment in place of a page not read (hOCR, ALTO).
func xmlMark(p Page) string {
	if p.Error == nil {
		return ""
	}
	return "  <!-- " + strings.ReplaceAll(p.Error.Mark(), "--", "- -") + " -->\n"
}

func write(w io.Writer, head string, pages []Page, page func(Page) string, tail string) error {
	var b bytes.Buffer
	b.WriteString(head)
	for _, p := range pages {
		b.WriteString(page(p))
	}
	b.WriteString(tail)
	_, err := w.Write(b.Bytes())
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// What Tesseract 5's renderers write before and after the pages (src/api/hocrrenderer.cpp,
// altorenderer.cpp, renderer.cpp), for a document read from standard input as the CLI names
// it ("-") with an empty document_title; the tests hold them against the CLI's output.
func hocrHead(version string) string {
	return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
		"<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n" +
		"    \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n" +
		"<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title></title>\n" +
		"  <meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>\n" +
		"  <meta name='ocr-system' content='tesseract " + version + "' />\n" +
		"  <meta name='ocr-capabilities' content='ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf'/>\n" +
		" </head>\n <body>\n"
}

const hocrTail = " </body>\n</html>\n"

func altoHead(version string) string {
	return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
		"<alto xmlns=\"http://www.loc.gov/standards/alto/ns-v3#\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" " +
		"xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://www.loc.gov/standards/alto/ns-v3# " +
		"http://www.loc.gov/alto/v3/alto-3-0.xsd\">\n" +
		"\t<Description>\n\t\t<MeasurementUnit>pixel</MeasurementUnit>\n\t\t<sourceImageInformation>\n" +
		"\t\t\t<fileName>-</fileName>\n\t\t</sourceImageInformation>\n\t\t<OCRProcessing ID=\"OCR_0\">\n" +
		"\t\t\t<ocrProcessingStep>\n\t\t\t\t<processingSoftware>\n\t\t\t\t\t<softwareName>tesseract " + version +
		"</softwareName>\n\t\t\t\t</processingSoftware>\n\t\t\t</ocrProcessingStep>\n\t\t</OCRProcessing>\n" +
		"\t</Description>\n\t<Layout>\n"
}

const altoTail = "\t</Layout>\n</alto>\n"

const tsvHead = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
