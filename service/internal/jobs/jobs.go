package jobs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/telemetry"
)

// Status is where a job is.
type Status string

// The statuses, in the order a job goes through them.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Canceled  Status = "canceled"
)

// Done reports whether s is final.
func (s Status) Done() bool {
	return s == Succeeded || s == SucceededWithErrors || s == Failed || s == Canceled
}

// Job is a job's record, as GET /jobs/{id} shows it.
type Job struct {
	ID         string     `json:"id"`
	Status     Status     `json:"status"`
	Progress   Progress   `json:"progress"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"` // finished jobs: when the record and result go
	Attempts   int        `json:"attempts"`             // deliveries to a worker so far
	Error      *Error     `json:"error,omitempty"`
	Callback   *Callback  `json:"callback,omitempty"` // with a callback URL: its delivery (the URL stays in the request)
	// PageErrors are a document job's pages that could not be read (status
	// succeeded_with_errors), as they fail.
	PageErrors []output.PageError `json:"page_errors,omitempty"`

	ContentType string `json:"-"` // the result's
}

// Progress counts pages.
type Progress struct {
	PagesDone  int `json:"pages_done"`
	PagesTotal int `json:"pages_total"` // 0 until the worker has opened the input
}

// Error is a failed job's error: the code and message /read_ocr would have answered.
type Error struct {
	Code    failure.Code `json:"code"`
	Message string       `json:"message"`
}

// record is what the key-value bucket keeps: the job and what is not shown.
type record struct {
	Job
	ContentType  string `json:"content_type,omitempty"`
	ResultObject bool   `json:"result_object,omitempty"` // the result is in the object store, not the bucket
	Owner        string `json:"owner,omitempty"`         // the API key's id that made it ("" with keys off)
	// A document read as page tasks (pages.go): Done has a bit per page of its plan, set when
	// the page is read or has failed.
	Split bool   `json:"split,omitempty"`
	Done  bitset `json:"done,omitempty"`
}

// request is the message on the stream: the input without its bytes (in the object store).
type request struct {
	ID     string `json:"id"`
	URL    string `json:"url,omitempty"`
	Source string `json:"source"`
	pipeline.Options
	CallbackURL   string `json:"callback_url,omitempty"`
	CallbackPages bool   `json:"callback_pages,omitempty"`
	Owner         string `json:"owner,omitempty"`
	// PagePeriod is the owner's page quota period: its pages are counted when the job ends
	// (0: the owner has no quota).
	PagePeriod time.Duration `json:"page_period,omitempty"`
	// The input: in the message when small (no other round trip), else in the object store.
	Image       []byte `json:"image,omitempty"`
	InputObject bool   `json:"input_object,omitempty"`
}

// SubmitOptions are a job's own options, besides those of the input (pipeline.Options); the
// JSON body and the multipart form of POST /jobs carry them by these names.
type SubmitOptions struct {
	CallbackURL    string `json:"callback_url,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// CallbackPages: the callback gets page events too (page.done, page.failed), not only the
	// job's end.
	CallbackPages bool `json:"callback_pages,omitempty"`
}

// Submission is what POST /jobs takes: the input of /read_ocr and the job's own options, and
// who sends it.
type Submission struct {
	Input pipeline.Input
	SubmitOptions
	Owner      string        // the API key's id ("" with keys off): its jobs, its idempotency keys
	PagePeriod time.Duration // the owner's page quota period (0: none)
	// Header goes on the job's message and, from there, on each of its page tasks (trace
	// context, say); the service's own headers (the message id, the drain count) win.
	Header map[string][]string
}

// Caller is who asks about a job: a key sees the jobs it made; an admin key, or any client
// when keys are off, sees every job. Another key's job is "not found", not "forbidden": its
// existence is none of the caller's business.
type Caller struct {
	Key   string
	Admin bool
}

// Anyone is the caller when API keys are off.
var Anyone = Caller{Admin: true}

func (c Caller) owns(r record) bool { return c.Admin || c.Key == r.Owner }

// Jobs queues jobs and answers about them. It is safe for concurrent use.
type Jobs struct {
	b     *Broker
	pipe  *pipeline.Pipeline
	check func(pipeline.Input) error // pipe.Check
	plans planCache
}

// New returns the API side of jobs over b. The pipeline checks a request's options before a
// job is queued (a bad option is a 400, not a failed job) and encodes the pages a partial
// result asks for.
func New(b *Broker, pipe *pipeline.Pipeline) *Jobs {
	return &Jobs{b: b, pipe: pipe, check: pipe.Check}
}

// Errors of the jobs API.
var (
	ErrNotFound = failure.New(failure.NotFound, "no such job (it may have expired)")
	ErrBacklog  = failure.New(failure.TooManyJobs, "the jobs' backlog is full: retry later")
	ErrNotDone  = failure.New(failure.JobNotDone, "the job has not finished")
	ErrCanceled = failure.New(failure.JobCanceled, "the job was canceled")
	errNoSecret = failure.New(failure.BadRequest, "callback_url needs the service to have a webhook secret (--webhook-secret)")
)

// Submit queues a job, or returns the job an earlier submission with the same idempotency key
// made (while that job's record lasts): see idempotency.go.
func (j *Jobs) Submit(ctx context.Context, s Submission) (Job, error) {
	if err := j.check(s.Input); err != nil {
		return Job{}, err
	}
	if s.CallbackURL != "" {
		if j.b.signer == nil {
			return Job{}, errNoSecret
		}
		if _, err := fetch.ParseURL(s.CallbackURL); err != nil {
			return Job{}, failure.Wrap(failure.CodeOf(err), err, "callback_url: %s", failure.MessageOf(err))
		}
	}
	if s.IdempotencyKey != "" {
		return j.submitOnce(ctx, s)
	}
	return j.enqueue(ctx, rand.Text(), s)
}

func (j *Jobs) enqueue(ctx context.Context, id string, s Submission) (Job, error) {
	in := s.Input
	req := request{ID: id, URL: in.URL.String(), Source: in.Source, Options: in.Options, CallbackURL: s.CallbackURL,
		CallbackPages: s.CallbackPages, Owner: s.Owner, PagePeriod: s.PagePeriod}
	bg := context.WithoutCancel(ctx)
	if !in.URL.Valid() {
		if len(in.Image) <= j.b.cfg.MaxInline {
			req.Image = in.Image
		} else {
			if _, err := j.b.data.PutBytes(ctx, inputName(id), in.Image); err != nil {
				return Job{}, j.unavailable(err)
			}
			req.InputObject = true
		}
	}
	rec := record{Job: Job{ID: id, Status: Queued, CreatedAt: time.Now().UTC()}, Owner: s.Owner}
	if s.CallbackURL != "" {
		rec.Callback = &Callback{State: CallbackPending}
	}
	if err := j.create(ctx, rec); err != nil {
		if req.InputObject {
			j.b.data.Delete(bg, inputName(id))
		}
		return Job{}, err
	}
	m := nats.NewMsg(subject)
	m.Data, _ = json.Marshal(req)
	for k, v := range s.Header {
		m.Header[k] = v
	}
	m.Header.Set(nats.MsgIdHdr, id)
	// The job's message carries the trace: the worker's "job run" span is this one's child.
	_, span := telemetry.Produce(ctx, "job submit", m, trace.WithAttributes(attribute.String(telemetry.JobID, id)))
	// The stream's bound (DiscardNew) refuses a job over --max-queued-jobs.
	_, err := j.b.js.PublishMsg(ctx, m)
	telemetry.End(span, err)
	if err != nil {
		if req.InputObject {
			j.b.data.Delete(bg, inputName(id))
		}
		j.b.records.Delete(bg, id)
		if strings.Contains(err.Error(), "maximum messages exceeded") {
			return Job{}, failure.Detail(ErrBacklog, "the jobs' backlog is full (%d jobs): retry later", j.b.cfg.MaxQueued)
		}
		return Job{}, j.unavailable(err)
	}
	return rec.view(), nil
}

// Get returns a job's record.
func (j *Jobs) Get(ctx context.Context, id string, c Caller) (Job, error) {
	rec, _, err := j.get(ctx, id, c)
	return rec.view(), err
}

// Result returns a succeeded job's output and its media type. A failed job's result is its
// error, as /read_ocr would have answered it.
func (j *Jobs) Result(ctx context.Context, id string, c Caller) ([]byte, string, error) {
	rec, _, err := j.get(ctx, id, c)
	if err != nil {
		return nil, "", err
	}
	switch rec.Status {
	case Succeeded, SucceededWithErrors:
	case Failed:
		return nil, "", failure.New(rec.Error.Code, "%s", rec.Error.Message)
	case Canceled:
		return nil, "", ErrCanceled
	default:
		return nil, "", failure.Detail(ErrNotDone, "the job is %s (%d of %d pages done)", rec.Status, rec.Progress.PagesDone, rec.Progress.PagesTotal)
	}
	body, err := j.b.getResult(ctx, id, rec.ResultObject)
	if err != nil {
		return nil, "", err
	}
	return body, rec.ContentType, nil
}

// Cancel cancels a job that has not finished (a running page stops between words; its input
// is deleted) and returns it; a finished job is deleted with its result (deleted is true).
func (j *Jobs) Cancel(ctx context.Context, id string, c Caller) (job Job, deleted bool, err error) {
	for {
		rec, rev, err := j.get(ctx, id, c)
		if err != nil {
			return Job{}, false, err
		}
		if rec.Status.Done() {
			j.b.deleteResult(ctx, id, rec.ResultObject)
			if rec.Split {
				j.b.deletePages(ctx, id, rec.Progress.PagesTotal)
			}
			if err := j.b.records.Delete(ctx, id, jetstream.LastRevision(rev)); err != nil {
				if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
					continue // changed meanwhile
				}
				return Job{}, false, j.unavailable(err)
			}
			return rec.view(), true, nil
		}
		now := time.Now().UTC()
		rec.Status, rec.FinishedAt = Canceled, &now
		exp := now.Add(j.b.cfg.TTL)
		rec.ExpiresAt = &exp
		if _, err := j.update(ctx, rec, rev); errors.Is(err, errChanged) {
			continue
		} else if err != nil {
			return Job{}, false, err
		}
		j.b.data.Delete(ctx, inputName(id)) // if it was there
		j.b.emit(ctx, request{ID: id}, Event{Type: EventJobDone, Job: rec.view()}, jobDoneDedup)
		// Tell the runner that has it, if one does (it also finds out when it next writes).
		j.b.nc.Publish(cancelSubject+id, nil)
		return rec.view(), false, nil
	}
}

func (r record) view() Job {
	j := r.Job
	j.ContentType = r.ContentType
	return j
}

func inputName(id string) string  { return id + "/input" }
func resultName(id string) string { return id + "/result" }
func resultKey(id string) string  { return "result." + id }

// cancelSubject+id tells the runners that a job was canceled (core NATS, not stored: a runner
// that misses it finds out at its next write to the record).
const cancelSubject = "readocr.cancel."

// putResult stores a job's result: in the bucket when small, else in the object store
// (object is true).
func (b *Broker) putResult(ctx context.Context, id string, body []byte) (object bool, err error) {
	if len(body) <= 2*b.cfg.MaxInline {
		_, err = b.records.Put(ctx, resultKey(id), body)
	} else {
		object = true
		_, err = b.data.PutBytes(ctx, resultName(id), body)
	}
	if err != nil {
		return object, unavailable(err)
	}
	return object, nil
}

func (b *Broker) getResult(ctx context.Context, id string, object bool) ([]byte, error) {
	var body []byte
	var err error
	if object {
		body, err = b.data.GetBytes(ctx, resultName(id))
	} else {
		var e jetstream.KeyValueEntry
		if e, err = b.records.Get(ctx, resultKey(id)); err == nil {
			body = e.Value()
		}
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return body, nil
}

func (b *Broker) deleteResult(ctx context.Context, id string, object bool) {
	if object {
		b.data.Delete(ctx, resultName(id))
	} else {
		b.records.Purge(ctx, resultKey(id))
	}
}

// validID keeps user input out of subjects and keys: rand.Text's alphabet only.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// get returns a job's record if c may see it.
func (j *Jobs) get(ctx context.Context, id string, c Caller) (record, uint64, error) {
	rec, rev, err := getRecord(ctx, j.b, id)
	if err == nil && !c.owns(rec) {
		return record{}, 0, ErrNotFound
	}
	return rec, rev, err
}

func getRecord(ctx context.Context, b *Broker, id string) (record, uint64, error) {
	if !validID(id) {
		return record{}, 0, ErrNotFound
	}
	e, err := b.records.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, ErrNotFound
	}
	if err != nil {
		return record{}, 0, unavailable(err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return record{}, 0, failure.Wrap(failure.Internal, err, "job record %s", id)
	}
	return rec, e.Revision(), nil
}

func (j *Jobs) create(ctx context.Context, rec record) error {
	v, _ := json.Marshal(rec)
	if _, err := j.b.records.Create(ctx, rec.ID, v); err != nil {
		return j.unavailable(err)
	}
	return nil
}

// errChanged: the record changed since it was read.
var errChanged = errors.New("job record changed")

func (j *Jobs) update(ctx context.Context, rec record, rev uint64) (uint64, error) {
	return updateRecord(ctx, j.b, rec, rev)
}

func updateRecord(ctx context.Context, b *Broker, rec record, rev uint64) (uint64, error) {
	v, _ := json.Marshal(rec)
	n, err := b.records.Update(ctx, rec.ID, v, rev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, errChanged
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, ErrNotFound
		}
		return 0, unavailable(err)
	}
	return n, nil
}

func (j *Jobs) unavailable(err error) error { return unavailable(err) }

// unavailable is the error for a broker that does not answer: 503, retry.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return failure.Wrap(failure.ServerBusy, err, "the jobs broker did not answer in time: retry shortly")
	}
	return failure.Wrap(failure.ServerBusy, err, "the jobs broker is not available: retry shortly")
}

// String is for logs.
func (j Job) String() string { return fmt.Sprintf("job %s %s", j.ID, j.Status) }
