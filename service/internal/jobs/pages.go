package jobs

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/telemetry"
)

// Pages as tasks. A document of cfg.SplitPages pages or more is not read by the process that
// takes its job: that process lists its pages (pipeline.Plan), stores the input and the plan in
// the object store, and publishes page tasks on the stream, cfg.PageWindow at a time (the
// per-job in-flight bound: another job's tasks queue behind at most that many of this one's).
// Any worker process takes any task and reads its one page (pipeline.ReadPage). A page read
// is a checkpoint: its result goes to the object store, then its bit is set in the job's
// record by compare-and-set (so each page counts once, whatever the redeliveries), then the
// next task of the window is published, then the task is acknowledged. The worker whose bit
// completes the record assembles the answer (pipeline.Assemble) from the stored pages, in
// order. A redelivered task whose bit is set redoes nothing but the steps after it.
//
// Why the object store for page results and the key-value bucket for their bits: a page's
// result can be large (a searchable PDF page, a JPEG kept as it is) and the object store
// chunks any size, while the bucket's revisions give the compare-and-set that makes the
// fan-in exactly once; the bits stay small (a bit a page: 3,000 pages in 375 bytes).

// pagesSubject+id is a job's page tasks.
const pagesSubject = "readocr.pages."

// drainsHeader counts the times a task was given back by a process that was stopped (SIGTERM):
// such a give-back publishes the task anew, so that JetStream's delivery count, the failure
// budget (MaxDeliver), counts only the workers that died with it.
const drainsHeader = "Readocr-Drains"

// pageTask is one page's message: the job's request without its input (in the object store).
type pageTask struct {
	request
	Index int               `json:"index"` // in the plan, from 0
	Total int               `json:"total"`
	Page  pipeline.PlanPage `json:"page"`
}

// bitset is a set of page indexes (JSON: base64).
type bitset []byte

func newBitset(n int) bitset           { return make(bitset, (n+7)/8) }
func (b bitset) has(i int) bool        { return i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }
func (b bitset) set(i int)             { b[i/8] |= 1 << (i % 8) }
func planName(id string) string        { return id + "/plan" }
func requestName(id string) string     { return id + "/request" }
func pageName(id string, i int) string { return id + "/page/" + strconv.Itoa(i) }

// split turns a job into page tasks (see above); rec is the running job's record at rev.
func (r *Runner) split(ctx context.Context, req request, data []byte, plan pipeline.Plan, header nats.Header, rec record, rev uint64) error {
	if !req.InputObject {
		if _, err := r.b.data.PutBytes(ctx, inputName(req.ID), data); err != nil {
			return unavailable(err)
		}
	}
	req.Image, req.InputObject, req.URL = nil, true, ""
	p, _ := json.Marshal(plan)
	q, _ := json.Marshal(req)
	if _, err := r.b.data.PutBytes(ctx, planName(req.ID), p); err != nil {
		return unavailable(err)
	}
	if _, err := r.b.data.PutBytes(ctx, requestName(req.ID), q); err != nil { // for partial results
		return unavailable(err)
	}
	rec.Split, rec.Done = true, newBitset(len(plan.Pages))
	rec.Progress = Progress{PagesTotal: len(plan.Pages)}
	if _, err := updateRecord(ctx, r.b, rec, rev); err != nil {
		return err
	}
	for i := range min(r.window(), len(plan.Pages)) {
		if err := r.publishTask(ctx, req, plan, i, header, 0); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) window() int { return max(r.b.cfg.PageWindow, 1) }

// publishTask publishes task i of plan; its message id makes a second publication within the
// stream's duplicate window a no-op (drains: a give-back, with its own id).
func (r *Runner) publishTask(ctx context.Context, req request, plan pipeline.Plan, i int, header nats.Header, drains int) error {
	t := pageTask{request: req, Index: i, Total: len(plan.Pages), Page: plan.Pages[i]}
	m := nats.NewMsg(pagesSubject + req.ID)
	m.Data, _ = json.Marshal(t)
	// The headers pass through from the job's message to its tasks (trace context, say).
	for k, v := range header {
		if k != nats.MsgIdHdr && k != drainsHeader {
			m.Header[k] = v
		}
	}
	id := req.ID + "/" + strconv.Itoa(i)
	if drains > 0 {
		m.Header.Set(drainsHeader, strconv.Itoa(drains))
		id += "/drain" + strconv.Itoa(drains)
	}
	m.Header.Set(nats.MsgIdHdr, id)
	telemetry.InjectNATS(ctx, m) // the span that publishes it (the job's, or the page's before) is the task's parent
	if _, err := r.b.js.PublishMsg(ctx, m); err != nil {
		return unavailable(err)
	}
	return nil
}

// drains is how many times msg was given back by a stopped process.
func drains(msg interface{ Headers() nats.Header }) int {
	n, _ := strconv.Atoi(msg.Headers().Get(drainsHeader))
	return n
}

// giveBack returns a message to the stream for another worker without counting a delivery:
// the same data and headers, published anew (the stream's duplicate window is not in the
// way: the new message has its own id), then the old one acknowledged.
func (r *Runner) giveBack(ctx context.Context, msg jetstream.Msg) error {
	m := nats.NewMsg(msg.Subject())
	m.Data = msg.Data()
	for k, v := range msg.Headers() {
		m.Header[k] = v
	}
	n := drains(msg) + 1
	m.Header.Set(drainsHeader, strconv.Itoa(n))
	m.Header.Set(nats.MsgIdHdr, msg.Headers().Get(nats.MsgIdHdr)+"/drain"+strconv.Itoa(n))
	if _, err := r.b.js.PublishMsg(ctx, m); err != nil {
		msg.NakWithDelay(time.Second) // counted, but not lost
		return err
	}
	return msg.Ack()
}

// runPage runs one delivery of a page task.
func (r *Runner) runPage(msg jetstream.Msg) {
	var t pageTask
	if err := json.Unmarshal(msg.Data(), &t); err != nil || !validID(t.ID) || t.Index < 0 || t.Index >= t.Total {
		r.b.log.Error("not a page task: dropped", "err", err)
		msg.Term()
		return
	}
	log := r.b.log.With("job", t.ID, "page", t.Page.Number)
	// The page's span is the child of the job's span that published its task.
	ctx, span := telemetry.Consume(context.Background(), "page run", msg.Headers(), trace.WithAttributes(
		attribute.String(telemetry.JobID, t.ID), attribute.Int(telemetry.PageAttr, t.Page.Number)))
	defer span.End()
	rec, _, err := getRecord(ctx, r.b, t.ID)
	switch {
	case errors.Is(err, ErrNotFound) || err == nil && rec.Status.Done():
		msg.Ack() // canceled, deleted or finished
		return
	case err != nil:
		log.Warn("job record unavailable: page given back", "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	if !rec.Done.has(t.Index) {
		if !r.readTask(ctx, msg, t, log) {
			return
		}
	}
	if err := r.afterPage(ctx, t, msg.Headers()); err != nil {
		log.Warn("page read, job not updated: given back", "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	msg.DoubleAck(ctx)
}

// readTask reads t's page and checkpoints it; false when the task was given back or dropped.
func (r *Runner) readTask(ctx context.Context, msg jetstream.Msg, t pageTask, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) bool {
	span := trace.SpanFromContext(ctx)
	jobCtx, cancel := context.WithCancelCause(trace.ContextWithSpan(r.jobsCtx, span))
	defer cancel(nil)
	jobCtx, cancelTimeout := context.WithTimeoutCause(jobCtx, r.b.cfg.Timeout, failure.ErrDeadline)
	defer cancelTimeout()
	defer r.track(t.ID, t.Index, cancel)()
	defer r.heartbeat(msg)()
	meta, _ := msg.Metadata()
	attempt := drains(msg) + 1
	if meta != nil {
		attempt += int(meta.NumDelivered) - 1
	}
	start := time.Now()
	page, err := r.readPage(jobCtx, t)
	switch cause := context.Cause(jobCtx); {
	case errors.Is(cause, errCanceled):
		msg.Ack()
		return false
	case errors.Is(cause, failure.ErrShutdown), retryable(err):
		log.Info("page given back", "err", err)
		if errors.Is(cause, failure.ErrShutdown) {
			r.giveBack(ctx, msg)
		} else {
			msg.NakWithDelay(2 * time.Second)
		}
		return false
	}
	if err != nil {
		telemetry.Fail(span, err)
		page = output.Page{Number: t.Page.Number, Error: &output.PageError{Page: t.Page.Number, Code: string(failure.CodeOf(err)), Message: failure.MessageOf(err)}}
		if failure.CodeOf(err) == failure.Internal {
			log.Warn("page failed: internal error", "err", err)
			page.Error.Message = "internal error"
		}
	} else if err := r.putPage(ctx, t.ID, t.Index, page); err != nil {
		log.Warn("storing a page: given back", "err", err)
		msg.NakWithDelay(time.Second)
		return false
	}
	if err := r.checkpoint(ctx, t, page.Error); err != nil {
		log.Warn("checkpointing a page: given back", "err", err)
		msg.NakWithDelay(time.Second)
		return false
	}
	log.Info("page read", "index", t.Index, "attempt", attempt, "error", page.Error != nil, "took_ms", time.Since(start).Milliseconds())
	return true
}

// readPage reads a task's page, with the job's document kept between its pages.
func (r *Runner) readPage(ctx context.Context, t pageTask) (output.Page, error) {
	doc, err := r.docs.get(ctx, r.b, t.ID)
	if err != nil {
		return output.Page{}, err
	}
	mem, err := r.budget.Reserve(ctx, int64(len(doc.Data())))
	defer mem.Release()
	if err != nil {
		return output.Page{}, err
	}
	var facts pipeline.Facts
	in := pipeline.Input{Source: t.Source, Options: t.Options, Background: true}
	page, err := r.pipe.ReadPage(ctx, in, doc, t.Page, mem, &facts)
	if err == nil {
		r.record.Page(ctx, t.Source, facts) // the document counts once, at fan-in
	}
	return page, err
}

func (r *Runner) putPage(ctx context.Context, id string, i int, page output.Page) error {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(page); err != nil {
		return failure.Wrap(failure.Internal, err, "encoding a page")
	}
	if _, err := r.b.data.PutBytes(ctx, pageName(id, i), b.Bytes()); err != nil {
		return unavailable(err)
	}
	return nil
}

func getPage(ctx context.Context, br *Broker, id string, i int) (output.Page, error) {
	b, err := br.data.GetBytes(ctx, pageName(id, i))
	if err != nil {
		return output.Page{}, unavailable(err)
	}
	var page output.Page
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&page); err != nil {
		return output.Page{}, failure.Wrap(failure.Internal, err, "decoding a page")
	}
	return page, nil
}

// checkpoint sets t's bit in the record (its error with it), once: a bit already set is left.
func (r *Runner) checkpoint(ctx context.Context, t pageTask, pageErr *output.PageError) error {
	for {
		rec, rev, err := getRecord(ctx, r.b, t.ID)
		if errors.Is(err, ErrNotFound) || err == nil && (rec.Status.Done() || rec.Done.has(t.Index)) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(rec.Done) == 0 {
			rec.Done = newBitset(t.Total)
		}
		rec.Done.set(t.Index)
		rec.Progress.PagesDone++
		if pageErr != nil {
			rec.PageErrors = append(rec.PageErrors, *pageErr)
		}
		if _, err := updateRecord(ctx, r.b, rec, rev); errors.Is(err, errChanged) {
			continue
		} else if err != nil {
			return err
		}
		r.b.emit(ctx, t.request, pageEvent(t, pageErr, rec), pageDedup(t.Index))
		return nil
	}
}

// afterPage are the steps after a page's checkpoint, each safe to redo: the next task of the
// window, and the answer when every page is done.
func (r *Runner) afterPage(ctx context.Context, t pageTask, header nats.Header) error {
	if next := t.Index + r.window(); next < t.Total {
		plan, err := r.plans.get(ctx, r.b, t.ID)
		if err != nil {
			return err
		}
		if err := r.publishTask(ctx, t.request, plan, next, header, 0); err != nil {
			return err
		}
	}
	rec, rev, err := getRecord(ctx, r.b, t.ID)
	if errors.Is(err, ErrNotFound) || err == nil && (rec.Status.Done() || rec.Progress.PagesDone < t.Total) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.fanIn(ctx, t.request, rec, rev)
}
