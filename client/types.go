package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The request and response types of service/api/openapi.yaml, written by hand and held to the
// document by TestTypesMatchContract: each schema's properties are the struct's fields (same
// names, same JSON types), and its required properties are never omitted.

// Format is what an answer is (schema Format).
type Format string

// The formats.
const (
	Text Format = "text" // {"text": ...}
	JSON Format = "json" // text, confidence, lines, words and pages (Document)
	HOCR Format = "hocr"
	ALTO Format = "alto"
	TSV  Format = "tsv"
	PDF  Format = "pdf" // a searchable PDF
)

// Formats lists them.
var Formats = []Format{Text, JSON, HOCR, ALTO, TSV, PDF}

// ParseFormat reads a format's name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if Format(strings.ToLower(s)) == f {
			return f, nil
		}
	}
	return "", fmt.Errorf("format %q: want one of text, json, hocr, alto, tsv, pdf", s)
}

// Options are the fields of /read_ocr (schema OCRRequest) besides the image; zero values are
// not sent, so the service's defaults apply.
type Options struct {
	Lang    string `form:"lang"`     // languages joined with "+" (Languages)
	Config  string `form:"config"`   // Tesseract options, the safe subset
	Layout  bool   `form:"layout"`   // the original way to ask for format json
	Format  Format `form:"format"`   // default text
	Pages   string `form:"pages"`    // e.g. "1-3,7" or "5-"
	PDFText string `form:"pdf_text"` // ocr, extract or auto
	OCRMode string `form:"ocr_mode"` // format pdf: skip_text (default), force_ocr or redo_ocr
	// Format pdf of a PDF: pages turned upright (orientation detection) and made level.
	RotatePages bool   `form:"rotate_pages"`
	Deskew      bool   `form:"deskew"`
	OutputType  string `form:"output_type"` // format pdf of a PDF: pdf (default) or pdfa (PDF/A-2b)
}

// JobOptions are a job's own fields (schema JobOptions).
type JobOptions struct {
	CallbackURL    string `form:"callback_url"`
	IdempotencyKey string `form:"idempotency_key"` // the same key gives the same job
	CallbackPages  bool   `form:"callback_pages"`  // the callback gets each page's event too
}

// Languages is the answer of GET /languages.
type Languages struct {
	Languages    []string        `json:"languages"` // every name lang takes, languages and scripts
	Scripts      []string        `json:"scripts"`   // the script models among them (Latin, Japanese)
	Default      string          `json:"default"`
	MaxLanguages int             `json:"max_languages"` // names one lang may join
	Models       []LanguageModel `json:"models"`
	Unusable     []LanguageModel `json:"unusable"` // found but not loadable, with the problem
}

// LanguageModel is one model file of the service (schema LanguageModel).
type LanguageModel struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // language or script
	Title   string `json:"title,omitempty"`
	Script  string `json:"script,omitempty"`
	Source  string `json:"source"` // image or pack
	Size    int    `json:"size"`
	Memory  int    `json:"memory,omitempty"` // bytes a worker holds to keep it loaded
	Problem string `json:"problem,omitempty"`
}

// Index is the answer of GET / to an API client (schema Index).
type Index struct {
	APIDocumentation string            `json:"API Documentation"`
	Endpoints        map[string]string `json:"endpoints,omitempty"`
	Version          string            `json:"version,omitempty"`
	Auth             string            `json:"auth,omitempty"` // none, or api_keys
}

// Status is where a job is.
type Status string

// The statuses, in the order a job goes through them.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Succeeded Status = "succeeded"
	// SucceededWithErrors: a document whose pages were read but some (Job.PageErrors).
	SucceededWithErrors Status = "succeeded_with_errors"
	Failed              Status = "failed"
	Canceled            Status = "canceled"
)

// Done reports whether s is final.
func (s Status) Done() bool {
	return s == Succeeded || s == SucceededWithErrors || s == Failed || s == Canceled
}

// PageError is a page that could not be read (schema PageError).
type PageError struct {
	Page    int    `json:"page"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Job is a job's record (schema Job).
type Job struct {
	ID         string      `json:"id"`
	Status     Status      `json:"status"`
	Progress   Progress    `json:"progress"`
	CreatedAt  time.Time   `json:"created_at"`
	StartedAt  *time.Time  `json:"started_at,omitempty"`
	FinishedAt *time.Time  `json:"finished_at,omitempty"`
	ExpiresAt  *time.Time  `json:"expires_at,omitempty"`
	Attempts   int         `json:"attempts"`
	Error      *JobError   `json:"error,omitempty"`
	Callback   *Callback   `json:"callback,omitempty"`
	PageErrors []PageError `json:"page_errors,omitempty"`
}

// Callback is the delivery of a job's callback_url: pending, retrying, delivered, stopped (the
// receiver answered 410) or failed (a dead letter).
type Callback struct {
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// Progress counts a job's pages; PagesTotal is 0 until a worker has opened the input.
type Progress struct {
	PagesDone  int `json:"pages_done"`
	PagesTotal int `json:"pages_total"`
}

// JobError is a failed job's error, as /read_ocr would have answered it.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Document is the answer in format json (schema OCRDocument).
type Document struct {
	Text       string      `json:"text"`
	Confidence float64     `json:"confidence"`
	Lines      []Line      `json:"lines"`
	Words      []Word      `json:"words"`
	Pages      []Page      `json:"pages"`
	PageErrors []PageError `json:"page_errors,omitempty"`
}

// TextResult is the answer in format text (schema OCRResult without layout).
type TextResult struct {
	Text       string      `json:"text"`
	Confidence *float64    `json:"confidence,omitempty"`
	Lines      []Line      `json:"lines,omitempty"`
	Words      []Word      `json:"words,omitempty"`
	PageErrors []PageError `json:"page_errors,omitempty"`
}

// Page is one page of a Document.
type Page struct {
	Page       int      `json:"page"`
	Width      int      `json:"width"`
	Height     int      `json:"height"`
	DPI        int      `json:"dpi,omitempty"`
	Source     string   `json:"source"` // ocr, or pdf_text for the PDF's own text
	Text       string   `json:"text"`
	Confidence *float64 `json:"confidence,omitempty"`
	Lines      []Line   `json:"lines"`
	Words      []Word   `json:"words"`
}

// Line is a recognised line.
type Line struct {
	Text       string  `json:"text"`
	Confidence float64 `json:"confidence"`
	BBox       BBox    `json:"bbox"`
	Page       int     `json:"page,omitempty"`
	Block      int     `json:"block"`
	Paragraph  int     `json:"paragraph"`
	Line       int     `json:"line"`
}

// Word is a recognised word.
type Word struct {
	Text       string  `json:"text"`
	Confidence float64 `json:"confidence"`
	BBox       BBox    `json:"bbox"`
	Page       int     `json:"page,omitempty"`
	Block      int     `json:"block"`
	Paragraph  int     `json:"paragraph"`
	Line       int     `json:"line"`
	Word       int     `json:"word"`
}

// BBox is in pixels, top-left origin; X1 and Y1 are exclusive.
type BBox struct {
	X0 int `json:"x0"`
	Y0 int `json:"y0"`
	X1 int `json:"x1"`
	Y1 int `json:"y1"`
}

// errorBody is every error the service answers (schema Error); Error carries it.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// Result is an answer of /read_ocr or a job's result: its bytes in the format asked for.
type Result struct {
	ContentType string
	Body        []byte
}

// Document decodes a format json answer.
func (r *Result) Document() (*Document, error) {
	var d Document
	if err := json.Unmarshal(r.Body, &d); err != nil {
		return nil, fmt.Errorf("not a JSON document: %w", err)
	}
	return &d, nil
}

// Text decodes a format text (or json) answer's text.
func (r *Result) Text() (string, error) {
	var t TextResult
	if err := json.Unmarshal(r.Body, &t); err != nil {
		return "", fmt.Errorf("not a JSON answer: %w", err)
	}
	return t.Text, nil
}
