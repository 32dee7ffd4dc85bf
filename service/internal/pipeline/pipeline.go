// Package pipeline is the one path a request to read an image takes, whoever asks (the HTTP
// handler today, a job worker next): check the options and the language, fetch the image if
// it is a URL, check the image, recognise it. Every step that can fail returns an error that
// carries its code (package failure); the caller has one error exit.
package pipeline

import (
	"context"
	"time"

	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// Config holds the limits the pipeline applies.
type Config struct {
	MaxPixels int64 // largest page, width x height, checked from its header
}

// DefaultConfig is the pipeline's configuration unless flags say otherwise.
func DefaultConfig() Config { return Config{MaxPixels: 40_000_000} }

// Input is one image to read, as the client gave it.
type Input struct {
	Image  []byte    // the image, for base64, data: URIs and uploads; or
	URL    fetch.URL // where to fetch it
	Source string    // url, base64, data_uri or multipart: for logs and metrics
	Lang   string    // "" for the default
	Config string    // Tesseract CLI options, see tessconfig
	Layout bool      // also words and lines with boxes
}

// Facts are what the pipeline learned about a request, for its log line and metrics. Run
// fills them as it goes, so they are there when it fails too.
type Facts struct {
	Lang          string
	Format        string
	Width, Height int
	OCR           time.Duration // waiting for a worker and recognising
}

// Pipeline reads images. It is safe for concurrent use.
type Pipeline struct {
	cfg     Config
	engine  *ocr.Engine
	fetcher *fetch.Fetcher
}

// New returns a pipeline over an engine and a fetcher.
func New(cfg Config, engine *ocr.Engine, fetcher *fetch.Fetcher) *Pipeline {
	return &Pipeline{cfg: cfg, engine: engine, fetcher: fetcher}
}

// Run reads one image. The cheap checks come first, so that a bad option or language costs no
// download. A fetched image is accounted to mem (the request's reservation) before it is read.
func (p *Pipeline) Run(ctx context.Context, in Input, mem *membudget.Reservation, facts *Facts) (ocr.Result, error) {
	opts, err := tessconfig.Parse(in.Config)
	if err != nil {
		return ocr.Result{}, err
	}
	lang, err := p.engine.Lang(in.Lang)
	if err != nil {
		return ocr.Result{}, err
	}
	facts.Lang = lang.String()
	image := in.Image
	if in.URL.Valid() {
		image, err = p.fetcher.Get(ctx, in.URL, mem.Grow)
		if err != nil {
			return ocr.Result{}, err
		}
	}
	page, err := imageinput.Check(image, p.cfg.MaxPixels)
	if err != nil {
		return ocr.Result{}, err
	}
	facts.Format, facts.Width, facts.Height = page.Format(), page.Width(), page.Height()
	start := time.Now()
	res, err := p.engine.Recognize(ctx, ocr.Request{Page: page, Lang: lang, Options: opts, Layout: in.Layout})
	facts.OCR = time.Since(start)
	return res, err
}
