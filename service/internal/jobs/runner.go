package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/metrics"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/telemetry"
)

// Runner takes queued jobs and reads them through the pipeline, Concurrency at a time: the
// same engine, limits and cancellation as /read_ocr. Each job's pages queue behind single
// pages sent synchronously (they are batch pages, as a document's are), so a burst of jobs
// delays a synchronous page by one page at most; a synchronous document's pages and a job's
// share the workers in the order they arrive.
type Runner struct {
	b       *Broker
	pipe    *pipeline.Pipeline
	budget  *membudget.Budget
	fetcher *fetch.Fetcher
	pages   PageCounter // nil: no page quotas
	record  Recorder    // the work's metrics (noRecorder until Record is called)

	stopTaking context.CancelFunc
	stopJobs   context.CancelCauseFunc
	jobsCtx    context.Context
	taking     sync.WaitGroup // the goroutines taking jobs and callbacks
	advisories *nats.Subscription
	cancels    *nats.Subscription

	mu   sync.Mutex
	jobs map[string]map[int]context.CancelCauseFunc // the jobs (whole: -1, or page tasks) this runner runs, to cancel them

	docs  docCache  // of the jobs whose pages it reads
	plans planCache // of the same
}

// errCanceled is a job's context's cause when DELETE /jobs/{id} cancels it.
var errCanceled = errors.New("the job was canceled")

// PageCounter counts the pages a key's jobs read against its quota (ratelimit.Limiter).
type PageCounter interface {
	AddPages(ctx context.Context, key string, period time.Duration, n int)
}

// Recorder is where the runner records its work: the metrics /read_ocr records (metrics.Work),
// so that a job's documents, pages, OCR time and webhook deliveries count alike.
type Recorder interface {
	Read(ctx context.Context, path, source string, f pipeline.Facts, err error) // a document
	Page(ctx context.Context, source string, f pipeline.Facts)                  // a split job's page
	Delivery(outcome string)
}

type noRecorder struct{}

func (noRecorder) Read(context.Context, string, string, pipeline.Facts, error) {}
func (noRecorder) Page(context.Context, string, pipeline.Facts)                {}
func (noRecorder) Delivery(string)                                             {}

// NewRunner returns a runner; Start starts it.
func NewRunner(b *Broker, pipe *pipeline.Pipeline, budget *membudget.Budget, fetcher *fetch.Fetcher) *Runner {
	return &Runner{b: b, pipe: pipe, budget: budget, fetcher: fetcher, record: noRecorder{},
		jobs: map[string]map[int]context.CancelCauseFunc{}}
}

// CountPages makes the runner count each finished job's pages against its owner's quota.
func (r *Runner) CountPages(c PageCounter) { r.pages = c }

// Record makes the runner record its work in rec (httpapi.Server.Work()).
func (r *Runner) Record(rec Recorder) { r.record = rec }

// Start starts taking jobs, and listening for jobs that ran out of deliveries.
func (r *Runner) Start() error {
	cons, err := r.b.js.Consumer(context.Background(), streamName, consumerName)
	if err != nil {
		return unavailable(err)
	}
	pages, err := r.b.js.Consumer(context.Background(), streamName, pagesConsumer)
	if err != nil {
		return unavailable(err)
	}
	outbox, err := r.b.js.Consumer(context.Background(), outboxStream, outboxConsumer)
	if err != nil {
		return unavailable(err)
	}
	// A queue group: one process handles each advisory.
	r.advisories, err = r.b.nc.QueueSubscribe(maxDeliveriesSubject, "readocr", r.onMaxDeliveries)
	if err != nil {
		return unavailable(err)
	}
	r.cancels, err = r.b.nc.Subscribe(cancelSubject+"*", func(m *nats.Msg) {
		r.cancelJob(strings.TrimPrefix(m.Subject, cancelSubject))
	})
	if err != nil {
		return unavailable(err)
	}
	takeCtx, stopTaking := context.WithCancel(context.Background())
	r.jobsCtx, r.stopJobs = context.WithCancelCause(context.Background())
	r.stopTaking = stopTaking
	for range max(r.b.cfg.Concurrency, 1) {
		r.taking.Go(func() { r.take(takeCtx, cons, pages) })
	}
	if r.b.signer != nil {
		for range deliverers {
			r.taking.Go(func() { r.deliverLoop(takeCtx, outbox) })
		}
	}
	return nil
}

// Stop stops taking jobs and waits for the running ones until ctx ends; then they are stopped
// and given back to the queue, for another worker or this one after its restart.
func (r *Runner) Stop(ctx context.Context) {
	if r.stopTaking == nil {
		return
	}
	r.stopTaking()
	// The goroutines that take jobs also run them: waiting for them is waiting for the jobs.
	done := make(chan struct{})
	go func() { r.taking.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.stopJobs(failure.ErrShutdown)
		<-done
	}
	r.advisories.Unsubscribe()
	r.cancels.Unsubscribe()
}

// run runs one delivery of a job.
func (r *Runner) run(msg jetstream.Msg) {
	var req request
	if err := json.Unmarshal(msg.Data(), &req); err != nil || !validID(req.ID) {
		r.b.log.Error("not a job message: dropped", "err", err)
		msg.Term()
		return
	}
	log := r.b.log.With("job", req.ID)
	if req.Owner != "" {
		log = log.With("key", req.Owner) // the API key's id, never the key
	}
	// The job's span joins the trace of the request that submitted it (its message's headers).
	ctx, span := telemetry.Consume(context.Background(), "job run", msg.Headers(),
		trace.WithAttributes(attribute.String(telemetry.JobID, req.ID)))
	defer span.End()
	rec, rev, err := getRecord(ctx, r.b, req.ID)
	if notYetVisible(err, msg) {
		log.Warn("job record not found yet: job given back", "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	if errors.Is(err, ErrNotFound) || err == nil && rec.Status.Done() {
		r.alreadyDone(ctx, msg, log, req, rec, err == nil)
		return
	}
	if err != nil {
		log.Warn("job record unavailable: job given back", "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		msg.Nak()
		return
	}
	if rec.Split {
		// Split by a process that stopped before it acknowledged the job: its tasks again
		// (a task whose page is done redoes nothing).
		r.resumeSplit(ctx, req, msg)
		return
	}
	started := time.Now().UTC()
	// Attempts counts deliveries, given-back ones too (drains: see giveBack).
	rec.Status, rec.StartedAt, rec.Attempts, rec.Progress.PagesDone = Running, &started, int(meta.NumDelivered)+drains(msg), 0
	if rev, err = updateRecord(ctx, r.b, rec, rev); err != nil {
		msg.Nak() // changed (canceled?) meanwhile: the next delivery sees it
		return
	}
	log.Info("job started", "attempt", meta.NumDelivered)

	jobCtx, cancel := context.WithCancelCause(trace.ContextWithSpan(r.jobsCtx, span))
	defer cancel(nil)
	jobCtx, cancelTimeout := context.WithTimeoutCause(jobCtx, r.b.cfg.Timeout, failure.ErrDeadline)
	defer cancelTimeout()
	defer r.track(req.ID, -1, cancel)()
	stopBeats := r.heartbeat(msg)
	defer stopBeats()

	p := &progress{b: r.b, rec: rec, rev: rev, cancel: cancel}
	body, contentType, pages, split, err := r.read(jobCtx, req, p.update, func(data []byte, plan pipeline.Plan) error {
		rec, rev := p.latest()
		return r.split(ctx, req, data, plan, msg.Headers(), rec, rev)
	})
	if split {
		if err != nil { // the next delivery splits it again, or finds it canceled
			log.Warn("job not split: given back", "err", err)
			msg.NakWithDelay(time.Second)
			return
		}
		log.Info("job split into page tasks", "pages", pages, "window", r.window())
		msg.Ack()
		return
	}
	rec, rev = p.latest()
	switch cause := context.Cause(jobCtx); {
	case errors.Is(cause, errCanceled):
		log.Info("job canceled")
		msg.Ack()
		return
	case errors.Is(cause, failure.ErrShutdown), retryable(err):
		// Not the job's fault: another worker (or this one, later) takes it again.
		rec.Status, rec.StartedAt = Queued, nil
		updateRecord(ctx, r.b, rec, rev)
		log.Info("job given back", "err", err)
		if errors.Is(cause, failure.ErrShutdown) {
			r.giveBack(ctx, msg) // not counted as a delivery: the worker did not die
		} else {
			msg.NakWithDelay(2 * time.Second)
		}
		return
	}
	r.finish(ctx, msg, span, log, req, rec, rev, started, jobOutput{body, contentType, pages}, err)
}

// alreadyDone settles a delivery of a job that is no longer to run: canceled, deleted or expired
// while queued (found is false for the last two); or finished by a process that stopped before
// it acknowledged the job, and maybe before its callback was in the outbox.
func (r *Runner) alreadyDone(ctx context.Context, msg jetstream.Msg, log *slog.Logger, req request, rec record, found bool) {
	if found && rec.Status != Canceled && req.CallbackURL != "" && rec.Callback != nil && rec.Callback.Attempts == 0 {
		if err := r.b.enqueueCallback(ctx, req.CallbackURL, rec.Job); err != nil {
			log.Warn("callback not queued: job given back", "err", err)
			msg.NakWithDelay(time.Second)
			return
		}
	}
	msg.Ack()
	if req.InputObject {
		r.b.data.Delete(ctx, inputName(req.ID))
	}
}

// jobOutput is what reading a job gave: its output, the output's media type, the pages read.
type jobOutput struct {
	body        []byte
	contentType string
	pages       int
}

// finish records the end of a job that ran (err: why it failed), queues its callback and then
// acknowledges it; any step that fails gives the job back for another delivery.
func (r *Runner) finish(ctx context.Context, msg jetstream.Msg, span trace.Span, log *slog.Logger, req request, rec record, rev uint64,
	started time.Time, out jobOutput, err error) {
	now := time.Now().UTC()
	exp := now.Add(r.b.cfg.TTL)
	rec.FinishedAt, rec.ExpiresAt = &now, &exp
	if err == nil {
		object, perr := r.b.putResult(ctx, req.ID, out.body)
		if perr != nil {
			log.Warn("storing the result: job given back", "err", perr)
			msg.NakWithDelay(time.Second)
			return
		}
		rec.Status, rec.ContentType, rec.ResultObject = Succeeded, out.contentType, object
	} else {
		rec.Status, rec.Error = Failed, &Error{Code: failure.CodeOf(err), Message: failure.MessageOf(err)}
		telemetry.Fail(span, err)
		if rec.Error.Code == failure.Internal {
			log.Error("job failed: internal error", "err", err)
			rec.Error.Message = "internal error"
		}
	}
	if _, err := updateRecord(ctx, r.b, rec, rev); err != nil {
		// Canceled as it finished: the cancel wins.
		r.b.deleteResult(ctx, req.ID, rec.ResultObject)
		msg.Ack()
		return
	}
	r.b.emit(ctx, req, Event{Type: EventJobDone, Job: rec.view()}, jobDoneDedup)
	// The callback is in the outbox before the job is acknowledged: see webhook.go.
	if req.CallbackURL != "" {
		if err := r.b.enqueueCallback(ctx, req.CallbackURL, rec.Job); err != nil {
			log.Warn("callback not queued: job given back", "err", err)
			msg.NakWithDelay(time.Second)
			return
		}
	}
	if req.InputObject {
		r.b.data.Delete(ctx, inputName(req.ID))
	}
	msg.DoubleAck(ctx)
	if r.pages != nil && req.PagePeriod > 0 {
		r.pages.AddPages(ctx, req.Owner, req.PagePeriod, out.pages)
	}
	log.Info("job finished", "status", rec.Status, "pages", rec.Progress.PagesTotal,
		"took_ms", now.Sub(started).Milliseconds())
}

// read runs the pipeline on the job's input, holding its memory as a request does; it returns
// the output, its media type and the pages read. A document of cfg.SplitPages pages or more
// is given to split instead (split is true, pages its page count).
func (r *Runner) read(ctx context.Context, req request, onPage func(done, total int), split func([]byte, pipeline.Plan) error) (body []byte, contentType string, pages int, isSplit bool, err error) {
	in := pipeline.Input{Source: req.Source, Options: req.Options, Background: true, Progress: onPage, Image: req.Image}
	size := int64(len(req.Image))
	switch {
	case req.URL != "":
		u, err := fetch.ParseURL(req.URL)
		if err != nil {
			return nil, "", 0, false, err
		}
		in.URL = u
	case req.InputObject:
		info, err := r.b.data.GetInfo(ctx, inputName(req.ID))
		if err != nil {
			return nil, "", 0, false, unavailable(err)
		}
		size = int64(info.Size)
	}
	mem, err := r.budget.Reserve(ctx, size)
	defer mem.Release()
	if err != nil {
		return nil, "", 0, false, err
	}
	if req.InputObject {
		if in.Image, err = r.b.data.GetBytes(ctx, inputName(req.ID)); err != nil {
			return nil, "", 0, false, unavailable(err)
		}
	}
	if r.b.cfg.SplitPages > 0 {
		data, plan, err := r.pipe.Plan(ctx, in, mem)
		if err != nil {
			return nil, "", 0, false, err
		}
		if len(plan.Pages) >= r.b.cfg.SplitPages {
			return nil, "", len(plan.Pages), true, split(data, plan)
		}
		in.Image, in.URL = data, fetch.URL{} // fetched once
	}
	var facts pipeline.Facts
	res, err := r.pipe.Run(ctx, in, mem, &facts)
	if cause := context.Cause(ctx); !retryable(err) && !errors.Is(cause, errCanceled) && !errors.Is(cause, failure.ErrShutdown) {
		r.record.Read(ctx, metrics.Job, req.Source, facts, err) // not a job given back (read again) or canceled
	}
	if err != nil {
		return nil, "", 0, false, err
	}
	return res.Body, res.ContentType, facts.Pages, false, nil
}

// retryable errors are the service's, not the job's: a full queue, memory in use, a broker
// that did not answer. The job waits and runs again.
func retryable(err error) bool {
	switch failure.CodeOf(err) {
	case failure.QueueFull, failure.QueueTimeout, failure.ServerBusy, failure.NotReady:
		return true
	}
	return false
}

// cancelJob stops a job this runner is running (DELETE /jobs/{id}).
func (r *Runner) cancelJob(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cancel := range r.jobs[id] {
		cancel(errCanceled)
	}
}

// heartbeat tells JetStream the job is still running, three times per ack wait, so that a
// long job is not redelivered while its worker lives.
func (r *Runner) heartbeat(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(r.b.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// progress writes the pages done into the job's record as they finish (a single page's
// record is written when it ends). A write that finds the record changed finds a cancel.
type progress struct {
	mu     sync.Mutex
	b      *Broker
	rec    record
	rev    uint64
	cancel context.CancelCauseFunc
}

func (p *progress) update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec.Progress = Progress{PagesDone: done, PagesTotal: total}
	if total <= 1 {
		return
	}
	rev, err := updateRecord(context.Background(), p.b, p.rec, p.rev)
	switch {
	case err == nil:
		p.rev = rev
	case errors.Is(err, errChanged), errors.Is(err, ErrNotFound):
		p.cancel(errCanceled)
	}
}

func (p *progress) latest() (record, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec, p.rev
}

// maxDeliveriesSubject is JetStream's advisory for a job delivered MaxDeliver times without
// being acknowledged: every worker that took it died (or hung) while running it.
const maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + streamName + ".*"

// onMaxDeliveries marks such a job failed, with the reason, and removes it from the stream
// (a work queue keeps a message nobody acknowledged).
func (r *Runner) onMaxDeliveries(m *nats.Msg) {
	var adv struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := r.b.stream.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		return
	}
	defer r.b.stream.DeleteMsg(ctx, adv.StreamSeq)
	if strings.HasPrefix(raw.Subject, pagesSubject) {
		r.pageLost(ctx, raw.Data, raw.Header, adv.Deliveries)
		return
	}
	var req request
	if json.Unmarshal(raw.Data, &req) != nil {
		return
	}
	rec, rev, err := getRecord(ctx, r.b, req.ID)
	if err != nil || rec.Status.Done() {
		return
	}
	now := time.Now().UTC()
	exp := now.Add(r.b.cfg.TTL)
	rec.Status, rec.FinishedAt, rec.ExpiresAt = Failed, &now, &exp
	rec.Error = &Error{Code: failure.WorkerLost, Message: "the job was given to a worker " +
		strconv.FormatUint(adv.Deliveries, 10) + " times and each stopped before finishing it (killed or out of memory?): not retried"}
	if _, err := updateRecord(ctx, r.b, rec, rev); err != nil {
		return
	}
	if req.InputObject {
		r.b.data.Delete(ctx, inputName(req.ID))
	}
	r.b.log.Warn("job failed: its workers died", "job", req.ID, "deliveries", adv.Deliveries)
	r.b.emit(ctx, req, Event{Type: EventJobDone, Job: rec.view()}, jobDoneDedup)
	if req.CallbackURL != "" {
		// The job's message is gone: this is the callback's one chance to reach the outbox.
		for try := 0; ; try++ {
			err := r.b.enqueueCallback(ctx, req.CallbackURL, rec.Job)
			if err == nil || try == 5 {
				if err != nil {
					r.b.log.Error("callback of a lost job not queued", "job", req.ID, "err", err.Error())
				}
				break
			}
			time.Sleep(time.Second)
		}
	}
}

// pageLost fails a page task that every worker it was given to died with: a page error (the
// others are read), and the steps after its checkpoint.
func (r *Runner) pageLost(ctx context.Context, data []byte, header nats.Header, deliveries uint64) {
	var t pageTask
	if json.Unmarshal(data, &t) != nil || !validID(t.ID) || t.Index < 0 || t.Index >= t.Total {
		return
	}
	e := &output.PageError{Page: t.Page.Number, Code: string(failure.WorkerLost), Message: "the page was given to a worker " +
		strconv.FormatUint(deliveries, 10) + " times and each stopped before finishing it (killed or out of memory?): not retried"}
	if err := r.checkpoint(ctx, t, e); err != nil {
		r.b.log.Error("lost page not recorded", "job", t.ID, "page", t.Page.Number, "err", err)
		return
	}
	r.b.log.Warn("page failed: its workers died", "job", t.ID, "page", t.Page.Number, "deliveries", deliveries)
	if err := r.afterPage(ctx, t, header); err != nil {
		r.b.log.Error("after a lost page", "job", t.ID, "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// recordGrace is how long after its message was stored a job whose record is not found is
// given back rather than dropped. The record is written before the message, but a key-value
// read may be answered by a replica that has not applied it yet (seen with 3 NATS servers, one
// just restarted: 3 of 201 jobs were acknowledged unread and stayed queued forever). Later, a
// missing record means deleted or expired.
const recordGrace = 30 * time.Second

// notYetVisible tells whether err (from getRecord) is a missing record of a message younger
// than recordGrace.
func notYetVisible(err error, msg jetstream.Msg) bool {
	if !errors.Is(err, ErrNotFound) {
		return false
	}
	meta, merr := msg.Metadata()
	return merr == nil && time.Since(meta.Timestamp) < recordGrace
}
