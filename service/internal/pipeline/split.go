package pipeline

import (
	"bytes"
	"context"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/output"
)

// A document read as page tasks (a job's pages spread over every worker process) takes the
// steps of Run one by one: Plan lists its pages once, ReadPage reads any one of them in any
// process, and Assemble encodes the pages read, in order, as Run would have. The checks, the
// page limits and the encoders are Run's own: a page read so is the page Run reads.

// Plan is a document's selected pages, in order, with what a page task needs to read its page
// without inspecting the document again.
type Plan struct {
	Format string     `json:"format"` // the input's (imageinput's name)
	Pages  []PlanPage `json:"pages"`
}

// PlanPage is one page of a Plan.
type PlanPage struct {
	Number int        `json:"n"`               // in its document, from 1
	Size   [2]float64 `json:"size,omitzero"`   // a PDF page's width and height in points
	Colour bool       `json:"colour,omitzero"` // a PDF page holding colour (its memory cost)
}

// Plan checks in's options, fetches it if it is a URL, opens it and lists its selected pages;
// it returns the input's bytes with the plan. A PDF is inspected by a worker (its page count
// and sizes), as Run does.
func (p *Pipeline) Plan(ctx context.Context, in Input, mem *membudget.Reservation) ([]byte, Plan, error) {
	opts, err := p.check(in)
	if err != nil {
		return nil, Plan{}, err
	}
	data := in.Image
	if in.URL.Valid() {
		if data, err = p.fetcher.Get(ctx, in.URL, mem.Grow); err != nil {
			return nil, Plan{}, err
		}
	}
	doc, err := imageinput.Open(data, p.cfg.MaxPixels)
	if err != nil {
		return nil, Plan{}, err
	}
	plan := Plan{Format: doc.Format()}
	if err := checkPDFOptions(opts, doc.Format()); err != nil {
		return nil, Plan{}, err
	}
	if doc.Format() != imageinput.PDF {
		numbers, err := opts.pages.Resolve(doc.PageCount(), p.cfg.MaxPages)
		if err != nil {
			return nil, Plan{}, err
		}
		for _, n := range numbers {
			plan.Pages = append(plan.Pages, PlanPage{Number: n})
		}
		return data, plan, nil
	}
	info, err := p.engine.InspectPDF(ctx, doc, opts.spec, p.cfg.MaxPages, false)
	if err != nil {
		return nil, Plan{}, err
	}
	if info.Encrypted && opts.format == output.PDF {
		return nil, Plan{}, errEncrypted
	}
	for i, n := range info.Selected {
		plan.Pages = append(plan.Pages, PlanPage{Number: n, Size: info.Sizes[i], Colour: i < len(info.Colour) && info.Colour[i]})
	}
	return data, plan, nil
}

var errEncrypted = failure.New(failure.EncryptedPDF, "the PDF is encrypted (an owner password): a text layer cannot be added to it; decrypt it first (e.g. qpdf --decrypt) or ask for text or json")

// ReadPage reads one page of a plan from doc (imageinput.Open of the bytes Plan returned; a
// caller that keeps it between pages keeps the PDF loaded in the workers), as a batch page.
// facts are this page's.
func (p *Pipeline) ReadPage(ctx context.Context, in Input, doc imageinput.Document, page PlanPage, mem *membudget.Reservation, facts *Facts) (output.Page, error) {
	opts, err := p.check(in)
	if err != nil {
		return output.Page{}, err
	}
	facts.Lang, facts.Output, facts.Format = opts.lang.String(), opts.format, doc.Format()
	release, err := p.engine.Admit()
	if err != nil {
		return output.Page{}, err
	}
	defer release()
	var pg imageinput.Page
	if doc.Format() == imageinput.PDF {
		pg, err = doc.PDFPage(page.Number, page.Size[0], page.Size[1], opts.tess.DPI, p.pdfMaxPixels(doc, page.Colour), pdfColour)
	} else {
		pg, err = doc.Page(page.Number, p.cfg.MaxPixels)
	}
	if err != nil {
		return output.Page{}, err
	}
	facts.Pages, facts.Width, facts.Height = 1, pg.Width(), pg.Height()
	start := time.Now()
	out, err := p.readPage(ctx, pg, opts, mem, true)
	facts.OCR = time.Since(start)
	return out, err
}

// Assemble is the answer made of pages read one by one (ReadPage), in order: data is the
// input (a searchable PDF of a PDF is the document with the pages' text layers).
func (p *Pipeline) Assemble(ctx context.Context, in Input, data []byte, pages []output.Page, mem *membudget.Reservation) (Result, error) {
	opts, err := p.check(in)
	if err != nil {
		return Result{}, err
	}
	if f, _ := imageinput.Sniff(data); opts.format == output.PDF && f == imageinput.PDF {
		doc, err := imageinput.Open(data, p.cfg.MaxPixels)
		if err != nil {
			return Result{}, err
		}
		body, err := p.addTextLayers(ctx, doc, pages, opts, mem, true)
		if err != nil {
			return Result{}, err
		}
		return Result{Body: body, ContentType: opts.format.ContentType(), Pages: pages}, nil
	}
	var body bytes.Buffer
	if err := output.Encode(&body, opts.format, pages, p.version); err != nil {
		return Result{}, failure.Wrap(failure.Internal, err, "encoding the answer")
	}
	return Result{Body: body.Bytes(), ContentType: opts.format.ContentType(), Pages: pages}, nil
}
