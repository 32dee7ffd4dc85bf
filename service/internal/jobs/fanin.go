package jobs

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/metrics"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// SucceededWithErrors is a document job whose pages were read but some: the answer has the
// others, and marks those (a page error each, in the record and in JSON answers).
const SucceededWithErrors Status = "succeeded_with_errors"

// fanIn makes a split job's answer from its pages, in order, once every page is done (rec at
// rev says so), and finishes the job as run does a whole one. Another worker may be doing the
// same (a redelivered last task): the record's compare-and-set keeps one outcome.
func (r *Runner) fanIn(ctx context.Context, req request, rec record, rev uint64) error {
	pages, err := r.pagesOf(ctx, req.ID, rec, nil)
	if err != nil {
		return err
	}
	failed := len(rec.PageErrors)
	now := time.Now().UTC()
	exp := now.Add(r.b.cfg.TTL)
	rec.FinishedAt, rec.ExpiresAt = &now, &exp
	switch {
	case failed == len(pages):
		first := rec.PageErrors[0]
		rec.Status, rec.Error = Failed, &Error{Code: failure.Code(first.Code), Message: "no page could be read; page " +
			strconv.Itoa(first.Page) + ": " + first.Message}
	default:
		body, contentType, err := r.assemble(ctx, req, pages)
		if err != nil {
			if retryable(err) {
				return err
			}
			rec.Status, rec.Error = Failed, &Error{Code: failure.CodeOf(err), Message: failure.MessageOf(err)}
			break
		}
		object, err := r.b.putResult(ctx, req.ID, body)
		if err != nil {
			return err
		}
		rec.Status, rec.ContentType, rec.ResultObject = Succeeded, contentType, object
		if failed > 0 {
			rec.Status = SucceededWithErrors
		}
	}
	if _, err := updateRecord(ctx, r.b, rec, rev); err != nil {
		if err == errChanged {
			return nil // finished (or canceled) by another
		}
		return err
	}
	var docErr error // the document, counted once (its pages were, as they were read)
	if rec.Error != nil {
		docErr = failure.New(rec.Error.Code, "%s", rec.Error.Message)
	}
	r.record.Read(ctx, metrics.Job, "", pipeline.Facts{}, docErr)
	r.b.data.Delete(ctx, inputName(req.ID)) // the pages and the plan stay for ?pages= until the job goes
	r.b.emit(ctx, req, Event{Type: EventJobDone, Job: rec.view()}, jobDoneDedup)
	if req.CallbackURL != "" {
		if err := r.b.enqueueCallback(ctx, req.CallbackURL, rec.Job); err != nil {
			return err
		}
	}
	if r.pages != nil && req.PagePeriod > 0 {
		r.pages.AddPages(ctx, req.Owner, req.PagePeriod, len(pages)-failed)
	}
	started := now
	if rec.StartedAt != nil {
		started = *rec.StartedAt
	}
	r.b.log.Info("job finished", "job", req.ID, "status", rec.Status, "pages", len(pages), "page_errors", failed,
		"took_ms", now.Sub(started).Milliseconds())
	return nil
}

// assemble encodes pages as the job asked.
func (r *Runner) assemble(ctx context.Context, req request, pages []output.Page) ([]byte, string, error) {
	in := pipeline.Input{Source: req.Source, Options: req.Options, Background: true}
	doc, err := r.docs.get(ctx, r.b, req.ID)
	if err != nil {
		return nil, "", err
	}
	mem, err := r.budget.Reserve(ctx, int64(len(doc.Data())))
	defer mem.Release()
	if err != nil {
		return nil, "", err
	}
	res, err := r.pipe.Assemble(ctx, in, doc.Data(), pages, mem)
	if err != nil {
		return nil, "", err
	}
	return res.Body, res.ContentType, nil
}

// pagesOf are a split job's pages done, in order (a failed page with its error), those in
// want only when want is not nil.
func (r *Runner) pagesOf(ctx context.Context, id string, rec record, want func(number int) bool) ([]output.Page, error) {
	return pagesOf(ctx, &r.plans, r.b, id, rec, want)
}

func pagesOf(ctx context.Context, plans *planCache, b *Broker, id string, rec record, want func(number int) bool) ([]output.Page, error) {
	plan, err := plans.get(ctx, b, id)
	if err != nil {
		return nil, err
	}
	errs := map[int]output.PageError{}
	for _, e := range rec.PageErrors {
		errs[e.Page] = e
	}
	var pages []output.Page
	for i, p := range plan.Pages {
		if !rec.Done.has(i) || want != nil && !want(p.Number) {
			continue
		}
		if e, ok := errs[p.Number]; ok {
			pages = append(pages, output.Page{Number: p.Number, Error: &e})
			continue
		}
		page, err := getPage(ctx, b, id, i)
		if err != nil {
			return nil, err
		}
		pages = append(pages, page)
	}
	return pages, nil
}

// deletePages deletes a split job's stored pages, plan and request (DELETE of a finished job;
// otherwise they expire with the object store's TTL, as the record does).
func (b *Broker) deletePages(ctx context.Context, id string, total int) {
	for i := range total {
		b.data.Delete(ctx, pageName(id, i))
	}
	b.data.Delete(ctx, planName(id))
	b.data.Delete(ctx, requestName(id))
}

// cacheSize is how many jobs' documents (or plans) a process keeps: a worker usually reads
// pages of one or two jobs at a time; the PDF stays loaded in the OCR workers between the
// pages of a document kept so (imageinput.Document's id).
const cacheSize = 4

// docCache keeps the documents of the jobs whose pages this process reads last.
type docCache struct {
	mu   sync.Mutex
	ids  []string
	docs map[string]imageinput.Document
}

func (c *docCache) get(ctx context.Context, b *Broker, id string) (imageinput.Document, error) {
	c.mu.Lock()
	doc, ok := c.docs[id]
	c.mu.Unlock()
	if ok {
		return doc, nil
	}
	data, err := b.data.GetBytes(ctx, inputName(id))
	if err != nil {
		return imageinput.Document{}, unavailable(err)
	}
	if doc, err = imageinput.Open(data, 1<<62); err != nil { // the pages are checked one by one
		return imageinput.Document{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docs == nil {
		c.docs = map[string]imageinput.Document{}
	}
	if len(c.ids) == cacheSize {
		delete(c.docs, c.ids[0])
		c.ids = c.ids[1:]
	}
	c.ids, c.docs[id] = append(c.ids, id), doc
	return doc, nil
}

// planCache keeps the plans of the jobs whose pages this process reads last.
type planCache struct {
	mu    sync.Mutex
	ids   []string
	plans map[string]pipeline.Plan
}

func (c *planCache) get(ctx context.Context, b *Broker, id string) (pipeline.Plan, error) {
	c.mu.Lock()
	plan, ok := c.plans[id]
	c.mu.Unlock()
	if ok {
		return plan, nil
	}
	data, err := b.data.GetBytes(ctx, planName(id))
	if err != nil {
		return pipeline.Plan{}, unavailable(err)
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		return pipeline.Plan{}, failure.Wrap(failure.Internal, err, "job plan %s", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plans == nil {
		c.plans = map[string]pipeline.Plan{}
	}
	if len(c.ids) == cacheSize {
		delete(c.plans, c.ids[0])
		c.ids = c.ids[1:]
	}
	c.ids, c.plans[id] = append(c.ids, id), plan
	return plan, nil
}
