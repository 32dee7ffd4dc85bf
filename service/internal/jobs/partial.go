package jobs

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// errPartialPDF: a searchable PDF is one document, made when every page is done.
var errPartialPDF = failure.New(failure.InvalidFormat, "pages=: a job asked for as a searchable PDF has no partial result; the pages come in its result when it is done")

// PartialResult is GET /jobs/{id}/result?pages=...: the pages of spec done so far (a failed
// page marked as in a finished result), encoded in the job's format, whatever the job's status.
// A job read in one process (fewer than --job-split-pages pages) has its pages all at once: its
// result when it is done, 409 job_not_done before. done and total count the pages of spec.
func (j *Jobs) PartialResult(ctx context.Context, id string, c Caller, spec string) (body []byte, contentType string, done, total int, err error) {
	sel, err := imageinput.ParsePages(spec)
	if err != nil {
		return nil, "", 0, 0, err
	}
	rec, _, err := j.get(ctx, id, c)
	if err != nil {
		return nil, "", 0, 0, err
	}
	if !rec.Split {
		body, contentType, err := j.Result(ctx, id, c)
		return body, contentType, rec.Progress.PagesDone, rec.Progress.PagesTotal, err
	}
	req, err := j.request(ctx, id)
	if err != nil {
		return nil, "", 0, 0, err
	}
	in := pipeline.Input{Source: req.Source, Options: req.Options, Background: true}
	if format, _ := output.ParseFormat(in.Format); format == output.PDF {
		return nil, "", 0, 0, errPartialPDF
	}
	plan, err := j.plans.get(ctx, j.b, id)
	if err != nil {
		return nil, "", 0, 0, err
	}
	numbers := make([]int, len(plan.Pages))
	for i, p := range plan.Pages {
		numbers[i] = p.Number
	}
	// The selection against the document's pages: pages= names pages of the document, and
	// those the job did not select are simply not there.
	wanted, err := sel.Resolve(slices.Max(numbers), 0)
	if err != nil {
		return nil, "", 0, 0, err
	}
	want := func(n int) bool { _, ok := slices.BinarySearch(wanted, n); return ok }
	for _, n := range numbers {
		if want(n) {
			total++
		}
	}
	pages, err := pagesOf(ctx, &j.plans, j.b, id, rec, want)
	if err != nil {
		return nil, "", 0, 0, err
	}
	res, err := j.pipe.Assemble(ctx, in, nil, pages, nil) // not a PDF: no memory beyond the pages
	if err != nil {
		return nil, "", 0, 0, err
	}
	return res.Body, res.ContentType, len(pages), total, nil
}

// request is a split job's request, as its first page task carries it: the options to encode
// its pages with.
func (j *Jobs) request(ctx context.Context, id string) (request, error) {
	var req request
	b, err := j.b.data.GetBytes(ctx, requestName(id))
	if err != nil {
		return req, unavailable(err)
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return req, failure.Wrap(failure.Internal, err, "job request %s", id)
	}
	return req, nil
}
