package ocrcmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/readocr/readocr/client"
)

// Outcomes of one input.
const (
	statusRead        = "read"
	statusSkipped     = "skipped" // its outputs were there, newer than it
	statusFailed      = "failed"
	statusInterrupted = "interrupted" // Ctrl-C: its jobs go on, the next run takes them up
)

// outcome is what became of one input.
type outcome struct {
	in      input
	status  string
	err     error
	pages   int
	outputs []string
	jobs    []string // the IDs of the jobs that read it
	resumed bool     // taken up from an earlier run's jobs
	took    time.Duration
}

// progressFunc is told a file's pages done and total (0: not known yet).
type progressFunc func(done, total int)

// worker reads inputs with one client and one set of options.
type worker struct {
	c        *client.Client
	opts     client.Options // everything but the format
	formats  []client.Format
	requests []client.Format // what is asked of the service: json gives text too
	jobs     bool            // every input as a job (several files); else only documents
	force    bool
}

func newWorker(c *client.Client, cfg config, jobs bool) *worker {
	w := &worker{c: c, opts: client.Options{Lang: cfg.lang, Pages: cfg.pages, Config: cfg.tessConfig},
		formats: cfg.formats, jobs: jobs, force: cfg.force}
	for _, f := range cfg.formats {
		if f == client.Text {
			f = client.JSON
		}
		if !contains(w.requests, f) {
			w.requests = append(w.requests, f)
		}
	}
	return w
}

func contains(fs []client.Format, f client.Format) bool {
	for _, g := range fs {
		if g == f {
			return true
		}
	}
	return false
}

// read reads one input and writes its outputs.
func (w *worker) read(ctx context.Context, in input, progress progressFunc) (o outcome) {
	start := time.Now()
	o.in = in
	defer func() { o.took = time.Since(start) }()
	if in.missing != nil {
		o.status, o.err = statusFailed, in.missing
		return o
	}
	if !w.force && done(in, w.formats) {
		o.status = statusSkipped
		return o
	}
	doc, err := sniff(in.path)
	if err != nil {
		o.status, o.err = statusFailed, err
		return o
	}
	var results map[client.Format]*client.Result
	if w.jobs || doc {
		results, err = w.viaJobs(ctx, in, &o, progress)
	} else {
		results, err = w.viaRead(ctx, in, progress)
	}
	switch {
	case ctx.Err() != nil:
		o.status, o.err = statusInterrupted, context.Cause(ctx)
	case err != nil:
		o.status, o.err = statusFailed, err
	default:
		o.status, o.err = statusRead, w.write(in, results, &o)
		if o.err != nil {
			o.status = statusFailed
		}
	}
	return o
}

// viaRead asks /read_ocr for each format, at once.
func (w *worker) viaRead(ctx context.Context, in input, progress progressFunc) (map[client.Format]*client.Result, error) {
	out := map[client.Format]*client.Result{}
	for i, f := range w.requests {
		progress(i, len(w.requests))
		opts := w.opts
		opts.Format = f
		res, err := w.c.Read(ctx, client.FromPath(in.path), opts)
		if err != nil {
			return nil, err
		}
		out[f] = res
	}
	progress(len(w.requests), len(w.requests))
	return out, nil
}

// viaJobs queues a job for each format (or takes up an earlier run's), follows them and
// fetches their results. The jobs and the journal are removed once the input is done.
func (w *worker) viaJobs(ctx context.Context, in input, o *outcome, progress progressFunc) (map[client.Format]*client.Result, error) {
	j := openJournal(in, fmt.Sprintf("%+v %v", w.opts, w.requests), w.force)
	finished := false
	defer func() {
		if !finished {
			return // interrupted: the journal stays for the next run
		}
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, r := range j.Jobs {
			if r.ID != "" {
				w.c.DeleteJob(cleanup, r.ID)
			}
		}
		j.remove()
	}()
	pages := make([]client.Progress, len(w.requests))
	report := func() {
		done, total := 0, 0
		for _, p := range pages {
			done, total = done+p.PagesDone, max(total, p.PagesTotal)
		}
		progress(done, total*len(w.requests))
	}
	out := map[client.Format]*client.Result{}
	for i, f := range w.requests {
		res, err := w.job(ctx, in, j, f, o, func(p client.Progress) { pages[i] = p; report() })
		if err != nil {
			finished = ctx.Err() == nil
			return nil, err
		}
		out[f] = res
		o.pages = max(o.pages, pages[i].PagesTotal)
	}
	finished = true
	return out, nil
}

// job runs format f of in as a job: the journal's, or a new one.
func (w *worker) job(ctx context.Context, in input, j *journal, f client.Format, o *outcome, progress func(client.Progress)) (*client.Result, error) {
	for attempt := 0; ; attempt++ {
		ref, err := j.ref(f)
		if err != nil {
			return nil, err
		}
		if ref.ID == "" {
			opts := w.opts
			opts.Format = f
			job, err := w.c.Submit(ctx, client.FromPath(in.path), opts, client.JobOptions{IdempotencyKey: ref.Key})
			if err != nil {
				return nil, err
			}
			ref.ID = job.ID
			if err := j.save(); err != nil {
				return nil, err
			}
		} else if attempt == 0 {
			o.resumed = true
		}
		o.jobs = append(o.jobs, ref.ID)
		final, err := w.c.Wait(ctx, ref.ID, func(job *client.Job) { progress(job.Progress) })
		if e, ok := client.AsError(err); ok && e.Status == http.StatusNotFound && attempt == 0 {
			delete(j.Jobs, f) // the earlier run's job expired: a new one
			continue
		}
		if err != nil {
			return nil, err
		}
		progress(final.Progress)
		// A failed job's result is the error /read_ocr would have answered, with its status.
		return w.c.JobResult(ctx, ref.ID)
	}
}

// write writes the outputs of in from the results.
func (w *worker) write(in input, results map[client.Format]*client.Result, o *outcome) error {
	var doc *client.Document
	if r := results[client.JSON]; r != nil {
		var err error
		if doc, err = r.Document(); err != nil {
			return err
		}
		o.pages = len(doc.Pages)
	}
	for _, f := range w.formats {
		var body []byte
		switch f {
		case client.Text:
			body = []byte(doc.Text)
		default:
			body = results[f].Body
		}
		path := in.outBase + extension[f]
		if err := writeFile(path, body); err != nil {
			return err
		}
		o.outputs = append(o.outputs, path)
	}
	return nil
}

// errorText is an outcome's error for people.
func errorText(err error) string {
	if e, ok := client.AsError(err); ok {
		return e.Error()
	}
	if errors.Is(err, os.ErrNotExist) {
		return "no such file"
	}
	return err.Error()
}
