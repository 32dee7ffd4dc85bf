package output

import (
	"bytes"
	"errors"
	"testing"

	"github.com/readocr/readocr/service/internal/ocr"
)

func TestFromAccept(t *testing.T) {
	tests := []struct {
		accept string
		want   Format
		err    error
	}{
		{"", "", nil},
		{"*/*", "", nil},
		{"application/json", Text, nil},
		{"text/html", HOCR, nil},
		{"application/xhtml+xml;q=0.9", HOCR, nil},
		{"application/xml", ALTO, nil},
		{"text/xml", ALTO, nil},
		{"text/tab-separated-values", TSV, nil},
		{"application/pdf", PDF, nil},
		{"application/xml;q=0.5, application/pdf", PDF, nil},
		{"application/pdf;q=0.1, */*;q=0.9", "", nil},
		{"image/png, application/pdf;q=0.2", PDF, nil},
		{"image/png", "", ErrNotAcceptable},
		{"application/pdf;q=0", "", ErrNotAcceptable},
		{"text/html;q=abc", "", ErrNotAcceptable},
	}
	for _, tt := range tests {
		got, err := FromAccept(tt.accept)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Accept %q: %q %v, want %q %v", tt.accept, got, err, tt.want, tt.err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats {
		if got, err := ParseFormat(string(f)); got != f || err != nil {
			t.Errorf("%s: %s %v", f, got, err)
		}
	}
	if got, err := ParseFormat(" HOCR "); got != HOCR || err != nil {
		t.Errorf("case and spaces: %s %v", got, err)
	}
	if got, _ := ParseFormat(""); got != Text {
		t.Errorf("empty: %s", got)
	}
	if _, err := ParseFormat("docx"); !errors.Is(err, ErrFormat) {
		t.Errorf("docx: %v", err)
	}
}

// Pages are joined as Tesseract's text renderer joins them: a form feed before each page after
// the first (TestMultiPageTIFF holds the whole against the CLI).
func TestJoinText(t *testing.T) {
	pages := []Page{{Result: ocr.Result{Text: "one\n"}}, {Result: ocr.Result{Text: "two\n"}}, {Result: ocr.Result{Text: ""}}}
	if got := JoinText(pages); got != "one\n\ftwo\n\f" {
		t.Errorf("%q", got)
	}
	var b bytes.Buffer
	if err := Encode(&b, Text, pages[:1], "5.3.0"); err != nil || b.String() != "{\"text\":\"one\\n\"}\n" {
		t.Errorf("text: %q %v", b.String(), err)
	}
}
